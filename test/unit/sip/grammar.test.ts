import { describe, expect, it } from "vitest";
import { type Address, parseAddress } from "../../../src/sip/address.ts";
import { isSipUri, parseUri, type Uri } from "../../../src/sip/index.ts";
import { MAX_VALUES_PER_HEADER, SPANS, splitList } from "../../../src/sip/list.ts";
import { parseCSeq, parseOptionTags } from "../../../src/sip/scalars.ts";
import type { GrammarError } from "../../../src/sip/text.ts";
import { parseVia } from "../../../src/sip/via.ts";
import { unwrap } from "../../helpers/sip.ts";

function via(s: string) {
  return parseVia(s, 0, s.length, 0);
}

function address(s: string) {
  return parseAddress(s, 0, s.length);
}

/** The values splitList finds in s[from, end) as text, or its error. */
function split(s: string, from?: number, end?: number, max?: number): string[] | GrammarError {
  const count = splitList(s, from, end, max);
  if (typeof count !== "number") return count.error;
  return Array.from({ length: count }, (_, k) => s.slice(SPANS[2 * k], SPANS[2 * k + 1]));
}

/** A parsed value with its parameters as a plain list, to compare whole. */
function listed(x: Uri | Address) {
  return "params" in x ? { ...x, params: x.params.toArray() } : x;
}

describe("URIs (RFC 3261 §19.1, RFC 3966)", () => {
  it("reads user, password, IPv6 host, port, params and headers of a SIP URI", () => {
    const u = unwrap(parseUri("sips:alice:secret@[2001:db8::10]:5061;transport=tls;lr?Subject=hi&Priority=urgent"));
    expect(listed(u)).toEqual({
      scheme: "sips",
      user: "alice",
      password: "secret",
      host: "[2001:db8::10]",
      port: 5061,
      params: [
        { name: "transport", value: "tls" },
        { name: "lr", value: undefined },
      ],
      headers: [
        { name: "Subject", value: "hi" },
        { name: "Priority", value: "urgent" },
      ],
    });
  });

  it("reads a tel URI and keeps other schemes opaque", () => {
    expect(listed(unwrap(parseUri("tel:+1-201-555-0123;phone-context=example.com")))).toEqual({
      scheme: "tel",
      number: "+1-201-555-0123",
      params: [{ name: "phone-context", value: "example.com" }],
    });
    expect(unwrap(parseUri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))).toEqual({
      scheme: "urn",
      opaque: "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    });
  });

  it("rejects what is no URI", () => {
    for (const bad of ["", "sip:", "sip:@host", "sip:host:99999", "sip:[::1", "sip:a b@host", "<sip:a@b>", "1sip:a"]) {
      expect(parseUri(bad).ok, bad).toBe(false);
    }
  });

  it("rejects port 0 (no datagram can be sent to it) and ports above 65535 (RFC 3261 §19.1.1)", () => {
    for (const bad of ["sip:1.2.3.4:0", "sip:a@host:00000", "sips:[::1]:0;lr", "sip:host:65536", "sip:host:123456"]) {
      expect(parseUri(bad).ok, bad).toBe(false);
    }
    for (const [good, port] of [
      ["sip:1.2.3.4:1", 1],
      ["sip:host:65535", 65535],
      ["sip:host:05060", 5060],
    ] as const) {
      const u = unwrap(parseUri(good));
      expect(isSipUri(u) && u.port, good).toBe(port);
    }
  });

  it("parses within a range of a larger text", () => {
    const text = "INVITE sip:bob@example.com:5070;transport=tcp SIP/2.0";
    const u = unwrap(parseUri(text, 7, 45));
    expect(isSipUri(u) && [u.user, u.host, u.port, u.params.toArray()[0]?.value]).toEqual([
      "bob",
      "example.com",
      5070,
      "tcp",
    ]);
  });
});

describe("Via (RFC 3261 §20.42, RFC 3581)", () => {
  it("reads sent-by with an IPv6 reference and the proxy's parameters", () => {
    const v = unwrap(
      via("SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKabc;rport=40000;received=192.0.2.1;maddr=239.0.0.1;ttl=16"),
    );
    expect(v).toMatchObject({
      protocol: "SIP/2.0",
      transport: "TLS",
      host: "[2001:db8::1]",
      port: 5061,
      branch: "z9hG4bKabc",
      rport: 40000,
      received: "192.0.2.1",
      maddr: "239.0.0.1",
      ttl: 16,
    });
  });

  it("lower-case transports and parameter names are read case-insensitively", () => {
    const v = unwrap(via("SIP/2.0/wss df7jal23ls0d.invalid;RPORT;Branch=z9hG4bK1"));
    expect([v.transport, v.rport, v.branch]).toEqual(["WSS", true, "z9hG4bK1"]);
  });

  it("rejects malformed values", () => {
    for (const bad of [
      "SIP/2.0 host",
      "SIP/2.0/UDP",
      "SIP/2.0/UDP host;;",
      "SIP/2.0/UDP host:70000",
      "SIP/2.0/UDP host;ttl=300",
      "SIP/2.0/UDP host;rport=x",
    ]) {
      expect(via(bad).ok, bad).toBe(false);
    }
  });

  it("rejects a sent-by port or an rport of 0, or above 65535 (RFC 3261 §20.42, RFC 3581 §4)", () => {
    for (const bad of [
      "SIP/2.0/UDP 1.2.3.4:0;branch=z9hG4bK1",
      "SIP/2.0/UDP 1.2.3.4 : 00000",
      "SIP/2.0/UDP 1.2.3.4:65536",
      "SIP/2.0/UDP 1.2.3.4;rport=0",
      "SIP/2.0/UDP 1.2.3.4;rport=000",
      "SIP/2.0/UDP 1.2.3.4;rport=65536",
      "SIP/2.0/UDP 1.2.3.4;rport=1e3",
      "SIP/2.0/UDP 1.2.3.4;rport=0x50",
    ]) {
      expect(via(bad).ok, bad).toBe(false);
    }
    const v = unwrap(via("SIP/2.0/UDP 1.2.3.4:65535;rport=1"));
    expect([v.port, v.rport]).toEqual([65535, 1]);
  });
});

describe("addresses (RFC 3261 §20.10, §25.1)", () => {
  it("reads a quoted display name with escaped quotes, the URI and header params", () => {
    expect(listed(unwrap(address('"A \\"quoted\\" name" <sip:a@example.com;transport=tcp>;tag=x;expires=60')))).toEqual(
      {
        displayName: '"A \\"quoted\\" name"',
        uri: "sip:a@example.com;transport=tcp",
        bracketed: true,
        params: [
          { name: "tag", value: "x" },
          { name: "expires", value: "60" },
        ],
      },
    );
  });

  it("keeps a quoted +sip.instance value with its angle brackets", () => {
    const a = unwrap(address('<sip:ua@192.0.2.2;ob>;reg-id=1;+sip.instance="<urn:uuid:0000>"'));
    expect(a.params.toArray()).toEqual([
      { name: "reg-id", value: "1" },
      { name: "+sip.instance", value: '"<urn:uuid:0000>"' },
    ]);
  });

  it("rejects unbalanced quotes and brackets, and unbracketed URIs with headers or commas", () => {
    for (const bad of [
      '"open <sip:a@b>',
      "<sip:a@b",
      "sip:a@b?x=y",
      "sip:a@b,sip:c@d",
      "<sip:a@b> junk",
      "Bell, Alexander <sip:a@b>",
    ]) {
      expect(address(bad).ok, bad).toBe(false);
    }
  });
});

describe("lists and scalars", () => {
  it("splits at commas outside quotes and brackets", () => {
    const s = '"a, b" <sip:x@y>, <sip:p@q;x=1,2>, sip:z@w';
    expect(split(s)).toEqual(['"a, b" <sip:x@y>', "<sip:p@q;x=1,2>", "sip:z@w"]);
    expect(split("a,,b")).toMatchObject({ detail: "empty list element" });
  });

  it("never looks past the end of the value for a closing '>' (it may be in the next header)", () => {
    const s = "<sip:a@example.com>, <sip:b@example.com;lr\r\nX-Next: >";
    const end = s.indexOf("\r\n");
    expect(split(s, 0, end)).toMatchObject({ detail: "unterminated <" });
    expect(split(s, 0, s.indexOf(","))).toEqual(["<sip:a@example.com>"]);
  });

  it("refuses more values than its cap, with a code of its own", () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `<sip:p${i}@example.com>`).join(", ");
    expect(splitList(list(MAX_VALUES_PER_HEADER))).toBe(MAX_VALUES_PER_HEADER);
    expect(split(list(MAX_VALUES_PER_HEADER + 1))).toMatchObject({ code: "ERR_SIP_TOO_MANY_VALUES" });
    expect(split(list(5), 0, undefined, 4)).toMatchObject({ code: "ERR_SIP_TOO_MANY_VALUES" });
  });

  it("reads CSeq up to 2**32-1 with leading zeros, and option tags", () => {
    expect(unwrap(parseCSeq("0009 INVITE", 0, 11))).toEqual({ seq: 9, method: "INVITE" });
    expect(unwrap(parseCSeq("4294967295 ACK", 0, 14)).seq).toBe(4294967295);
    expect(parseCSeq("4294967296 ACK", 0, 14).ok).toBe(false);
    expect(parseCSeq("1INVITE", 0, 7).ok).toBe(false);
    expect(unwrap(parseOptionTags(" path, outbound ,gruu", 0, 21))).toEqual(["path", "outbound", "gruu"]);
  });
});
