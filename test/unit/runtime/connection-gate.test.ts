import { describe, expect, it } from "vitest";
import type { Trunk } from "../../../src/config/schema.ts";
import { prefix64, SharedConnectionGate } from "../../../src/runtime/connection-gate.ts";
import { CONNECTION_KEY_BYTES, connectionCounts, resetConnectionCounts } from "../../../src/runtime/shared-memory.ts";

const trustedCarrier: Trunk = {
  name: "carrier",
  sources: [{ address: "198.51.100.0", prefix: 24, family: "ipv4" }],
  certNames: [],
  trusted: true,
  requireCert: false,
};

describe("the shared connection gate", () => {
  it("holds limits.maxConnections across every worker, and lets one in again when one leaves", () => {
    const counts = connectionCounts(2);
    const limits = { total: 3, perAddress: 100 };
    const w0 = new SharedConnectionGate(counts, 0, 2, limits, []);
    const w1 = new SharedConnectionGate(counts, 1, 2, limits, []);
    expect([w0.enter("192.0.2.1"), w1.enter("192.0.2.2"), w1.enter("192.0.2.3")]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(w0.enter("192.0.2.4")).toBe("limit");
    w1.leave("192.0.2.2");
    expect(w0.enter("192.0.2.4")).toBeUndefined();
  });

  it("holds limits.maxConnectionsPerIp for one address over every worker, except a trusted trunk's", () => {
    const counts = connectionCounts(2);
    const limits = { total: 1000, perAddress: 2 };
    const w0 = new SharedConnectionGate(counts, 0, 2, limits, [trustedCarrier]);
    const w1 = new SharedConnectionGate(counts, 1, 2, limits, [trustedCarrier]);
    expect(w0.enter("203.0.113.9")).toBeUndefined();
    expect(w1.enter("203.0.113.9")).toBeUndefined();
    expect(w0.enter("203.0.113.9")).toBe("per_ip");
    expect(w1.enter("::ffff:203.0.113.9")).toBe("per_ip"); // the dual-stack spelling of the same address
    for (let i = 0; i < 10; i++) expect(w0.enter("198.51.100.7")).toBeUndefined();
  });

  it("forgets a dead worker's connections when it is replaced", () => {
    const counts = connectionCounts(2);
    const limits = { total: 2, perAddress: 2 };
    const w1 = new SharedConnectionGate(counts, 1, 2, limits, []);
    w1.enter("192.0.2.1");
    w1.enter("192.0.2.1");
    const w0 = new SharedConnectionGate(counts, 0, 2, limits, []);
    expect(w0.enter("192.0.2.5")).toBe("limit");
    resetConnectionCounts(counts, 1);
    expect(w0.enter("192.0.2.1")).toBeUndefined();
  });

  it("takes new limits on reload for the connections that come next", () => {
    const counts = connectionCounts(1);
    const gate = new SharedConnectionGate(counts, 0, 1, { total: 1, perAddress: 1 }, []);
    gate.enter("192.0.2.1");
    expect(gate.enter("192.0.2.2")).toBe("limit");
    gate.reconfigure({ total: 5, perAddress: 5 }, []);
    expect(gate.enter("192.0.2.2")).toBeUndefined();
  });

  it("counts an IPv6 peer by its /64, whatever its spelling: a host has 2^64 addresses to pick from", () => {
    const gate = new SharedConnectionGate(connectionCounts(1), 0, 1, { total: 1000, perAddress: 2 }, []);
    expect(gate.enter("2001:db8:1:2::1")).toBeUndefined();
    expect(gate.enter("2001:DB8:1:2:ffff:0:0:9")).toBeUndefined();
    expect(gate.enter("2001:0db8:0001:0002:1234::")).toBe("per_ip");
    expect(gate.enter("2001:db8:1:3::1")).toBeUndefined(); // the next /64 is another site
    expect(prefix64("::ffff:192.0.2.1")).toBe("0:0:0:0");
    expect(prefix64("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0");
  });

  it("counts each address apart: 500 sources at their limit are all let in, whatever their hash", () => {
    // One bucket per address, as before, put two of 50 sources in one bucket one run in four (they then shared
    // a limit: bench:connections had 990 connections from one source refused so); of 500, always some.
    const counts = connectionCounts(2);
    new Uint8Array(counts, 0, CONNECTION_KEY_BYTES).fill(7); // one key, so the run is the same every time
    const limits = { total: 100_000, perAddress: 2 };
    const gates = [
      new SharedConnectionGate(counts, 0, 2, limits, []),
      new SharedConnectionGate(counts, 1, 2, limits, []),
    ];
    const addresses = Array.from({ length: 500 }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
    const refused = addresses.flatMap((a, i) => [gates[0]?.enter(a), gates[i % 2]?.enter(a)]).filter(Boolean);
    expect(refused).toEqual([]);
    expect(addresses.map((a) => gates[1]?.enter(a)).filter((r) => r !== "per_ip")).toEqual([]);
    // Leaving frees exactly one place, on any worker.
    gates[0]?.leave("198.51.0.7");
    expect(gates[1]?.enter("198.51.0.7")).toBeUndefined();
    expect(gates[0]?.enter("198.51.0.7")).toBe("per_ip");
  });

  it("keys its hash per process: which addresses share cells cannot be known from outside", () => {
    // Two processes (two sets of shared counts) count the same 20 000 addresses in different cells.
    const refused = (counts: SharedArrayBuffer) => {
      const gate = new SharedConnectionGate(counts, 0, 1, { total: 100_000, perAddress: 1 }, []);
      return Array.from({ length: 20_000 }, (_, i) => gate.enter(`198.51.${i >> 8}.${i & 255}`) === "per_ip");
    };
    // At a limit of one, some of that many addresses find every cell of theirs taken within one process...
    const a = refused(connectionCounts(1));
    const b = refused(connectionCounts(1));
    expect(a.some(Boolean) && b.some(Boolean)).toBe(true);
    // ...but not the same ones in another.
    expect(a).not.toEqual(b);
  });
});
