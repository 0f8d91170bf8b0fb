import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { browserRefusal } from "../../../src/admin/guards.ts";

/** The status browserRefusal gives a request with these headers to an API on `listenHost`; 0: let through. */
function verdict(listenHost: string, headers: Record<string, string>): number {
  return browserRefusal({ headers } as IncomingMessage, listenHost)?.status ?? 0;
}

describe("admin API Host and Origin checks, by listen address", () => {
  it("on a given address beyond loopback: that address only, in any IPv6 spelling", () => {
    expect(verdict("10.20.0.5", { host: "10.20.0.5:9091" })).toBe(0);
    expect(verdict("2001:db8::5", { host: "[2001:DB8:0::5]:9091" })).toBe(0);
    for (const host of ["localhost:9091", "127.0.0.1:9091", "10.20.0.6:9091", "sipedge.example:9091"]) {
      expect(verdict("10.20.0.5", { host })).toBe(421);
    }
  });

  it("on a wildcard: any address literal and localhost, never another name", () => {
    for (const listen of ["0.0.0.0", "::"]) {
      for (const host of ["10.20.0.5:9091", "127.0.0.1:8080", "[::1]:9091", "localhost:9091"]) {
        expect(verdict(listen, { host })).toBe(0);
      }
      expect(verdict(listen, { host: "attacker.example:9091" })).toBe(421);
    }
  });

  it("on loopback: the address, localhost and loopback addresses", () => {
    for (const host of ["127.0.0.1:9091", "127.0.0.2", "localhost", "[::1]:9091"]) {
      expect(verdict("127.0.0.1", { host })).toBe(0);
    }
    expect(verdict("::1", { host: "localhost:9091" })).toBe(0);
    expect(verdict("127.0.0.1", { host: "10.20.0.5:9091" })).toBe(421);
  });

  it("takes an Origin only when it is http:// and the Host the request was sent to", () => {
    const host = "10.20.0.5:9091";
    expect(verdict("10.20.0.5", { host, origin: "http://10.20.0.5:9091" })).toBe(0);
    for (const origin of ["http://10.20.0.5", "https://10.20.0.5:9091", "http://evil.example", "null"]) {
      expect(verdict("10.20.0.5", { host, origin })).toBe(403);
    }
    // HTTP/1.0 without Host: nothing to compare an Origin with.
    expect(verdict("127.0.0.1", { origin: "http://127.0.0.1:9091" })).toBe(403);
    expect(verdict("127.0.0.1", {})).toBe(0);
  });
});
