import { describe, expect, it } from "vitest";
import { parseAddress } from "../../../src/sip/address.ts";
import { NO_PARAMS, Params, parseParams } from "../../../src/sip/params.ts";
import { isSipUri, parseUri } from "../../../src/sip/uri.ts";
import { parseVia } from "../../../src/sip/via.ts";
import { unwrap } from "../../helpers/sip.ts";

function params(s: string): Params {
  const r = parseParams(s, 0, s.length);
  if (!(r instanceof Params)) throw new Error(r.error.detail);
  return r;
}

describe("parameters decoded on demand", () => {
  it("finds a parameter whatever its case (RFC 3261 §7.3.1) and keeps the name and value as written", () => {
    const p = params(' ; Tag = a1 ;EXPIRES=60; lr ;q="0.5"');
    expect(p.length).toBe(4);
    expect(p.find("tag")).toEqual({ name: "Tag", value: "a1" });
    expect(p.find("expires")).toEqual({ name: "EXPIRES", value: "60" });
    expect(p.find("lr")).toEqual({ name: "lr", value: undefined });
    expect(p.find("q")?.value).toBe('"0.5"');
    expect(p.find("ta")).toBeUndefined();
    expect(p.find("tags")).toBeUndefined();
    expect(p.toArray().map((x) => x.name)).toEqual(["Tag", "EXPIRES", "lr", "q"]);
  });

  it("reads only its own range of the text: a header's parameters stop at its end", () => {
    const text = "<sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2";
    const a = unwrap(parseAddress(text, 0, text.indexOf("\r")));
    expect(a.params.toArray()).toEqual([{ name: "tag", value: "1" }]);
  });

  it("shares one empty set, and still refuses what is no parameter", () => {
    expect(params("  ")).toBe(NO_PARAMS);
    for (const bad of [";", ";=x", ";a=", ';a="open', "a", ";a;;b"]) {
      expect(parseParams(bad, 0, bad.length) instanceof Params, bad).toBe(false);
    }
  });

  it("stops a SIP URI's parameters at its headers, and finds them case-insensitively", () => {
    const u = unwrap(parseUri("sip:edge.example.com;LR;Transport=tcp?Route=%3Csip:x%3E"));
    expect(isSipUri(u) && [u.params.find("lr"), u.params.find("transport")?.value, u.headers.length]).toEqual([
      { name: "LR", value: undefined },
      "tcp",
      1,
    ]);
  });

  it("lifts a Via's branch, received, rport and maddr whatever their case", () => {
    const s = "SIP/2.0/udp 192.0.2.1:5060 ; BRANCH=z9hG4bK1;RPort=5070;Received=198.51.100.1;MADDR=x;foo";
    const v = unwrap(parseVia(s, 0, s.length, 0));
    expect([v.transport, v.branch, v.rport, v.received, v.maddr, v.params.length]).toEqual([
      "UDP",
      "z9hG4bK1",
      5070,
      "198.51.100.1",
      "x",
      5,
    ]);
    expect(v.params.find("foo")).toEqual({ name: "foo", value: undefined });
  });

  it("rewrites itself for a Via's source: one dropped, one given a value, the rest as written without LWS", () => {
    const p = params(';branch=z9hG4bK1 ; RPORT;received=10.0.0.1; x = "q;r"');
    expect(p.rewritten("received", "rport", "5070")).toBe(';branch=z9hG4bK1;RPORT=5070;x="q;r"');
    expect(p.rewritten("received")).toBe(';branch=z9hG4bK1;RPORT;x="q;r"');
  });
});
