import { describe, expect, it } from "vitest";
import {
  checkMessage,
  dispositionOf,
  findParam,
  HeaderId,
  isSipUri,
  parseMessage,
  parseUri,
  type SipErrorCode,
  unquote,
} from "../../../src/sip/index.ts";
import { asset, rfc4475 } from "../../helpers/corpus.ts";
import { parseValid, request, response, unwrap } from "../../helpers/sip.ts";

const corpus = rfc4475();

describe("RFC 4475 torture messages", () => {
  it("has the whole corpus", () => {
    expect(corpus.filter((e) => e.valid).length).toBeGreaterThanOrEqual(27);
    expect(corpus.filter((e) => !e.valid).length).toBeGreaterThanOrEqual(22);
  });

  for (const entry of corpus.filter((e) => e.valid)) {
    it(`accepts ${entry.file} (§${entry.section})`, () => {
      parseValid(entry.bytes);
    });
  }

  // What the RFC says a proxy does with each invalid message, as our error code.
  const rejected: Record<string, SipErrorCode> = {
    "invalid/badinv01.sip": "ERR_SIP_BAD_VIA",
    "invalid/clerr.sip": "ERR_SIP_BODY_TRUNCATED",
    "invalid/ncl.sip": "ERR_SIP_BAD_CONTENT_LENGTH",
    "invalid/scalar02.sip": "ERR_SIP_BAD_CSEQ",
    "invalid/scalarlg.sip": "ERR_SIP_BAD_CSEQ",
    "invalid/quotbal.sip": "ERR_SIP_BAD_ADDRESS",
    "invalid/ltgtruri.sip": "ERR_SIP_BAD_URI",
    "invalid/lwsruri.sip": "ERR_SIP_BAD_START_LINE",
    "invalid/lwsstart.sip": "ERR_SIP_BAD_START_LINE",
    "invalid/trws.sip": "ERR_SIP_BAD_START_LINE",
    "invalid/escruri.sip": "ERR_SIP_BAD_URI",
    "invalid/baddate.sip": "ERR_SIP_BAD_DATE",
    "invalid/regbadct.sip": "ERR_SIP_BAD_ADDRESS",
    "invalid/badaspec.sip": "ERR_SIP_BAD_ADDRESS",
    "invalid/baddn.sip": "ERR_SIP_INCOMPLETE",
    "invalid/badvers.sip": "ERR_SIP_BAD_VERSION",
    "invalid/mismatch01.sip": "ERR_SIP_CSEQ_METHOD_MISMATCH",
    "invalid/mismatch02.sip": "ERR_SIP_CSEQ_METHOD_MISMATCH",
    "invalid/bigcode.sip": "ERR_SIP_BAD_STATUS",
    "invalid/insuf.sip": "ERR_SIP_MISSING_HEADER",
    "invalid/multi01.sip": "ERR_SIP_DUPLICATE_HEADER",
    "invalid/mcl01.sip": "ERR_SIP_BAD_CONTENT_LENGTH",
  };

  for (const entry of corpus.filter((e) => !e.valid)) {
    it(`rejects ${entry.file} (§${entry.section}) with ${rejected[entry.file]}`, () => {
      const parsed = parseMessage(entry.bytes);
      const error = parsed.ok ? (checkMessage(parsed.value) as { error?: { code: string } }).error : parsed.error;
      expect(error?.code).toBe(rejected[entry.file]);
    });
  }

  it("answers, drops or closes as each section says", () => {
    // §3.1.2.16: 505 for an unsupported version.
    expect(dispositionOf("ERR_SIP_BAD_VERSION", "request", "datagram")).toMatchObject({ status: 505 });
    // §3.1.2.2: a bad Content-Length is a 400 over UDP, a closed connection over TCP.
    expect(dispositionOf("ERR_SIP_BODY_TRUNCATED", "request", "datagram")).toMatchObject({ status: 400 });
    expect(dispositionOf("ERR_SIP_BAD_CONTENT_LENGTH", "request", "stream")).toEqual({ action: "close" });
    // §3.1.2.5 / §3.1.2.19: a malformed response is discarded.
    expect(dispositionOf("ERR_SIP_BAD_STATUS", "response", "datagram")).toEqual({ action: "drop" });
    expect(dispositionOf("ERR_SIP_BAD_CSEQ", "response", "datagram")).toEqual({ action: "drop" });
    expect(dispositionOf("ERR_SIP_DUPLICATE_HEADER", "request", "stream")).toMatchObject({ status: 400 });
  });
});

describe("RFC 4475 fields the sections call out", () => {
  it("§3.1.1.1 wsinv: folding, odd case, LWS inside sent-protocol, compact forms", () => {
    const msg = request(asset("rfc4475/valid/wsinv.sip"));
    expect(msg.method).toBe("INVITE");
    expect(findParam(unwrap(msg.to()).params, "tag")?.value).toBe("1918181833n");
    const from = unwrap(msg.from());
    expect(from.displayName).toBe('"J Rosenberg \\\\\\""');
    expect(findParam(from.params, "tag")?.value).toBe("98asjd8");
    expect(unwrap(msg.maxForwards())).toBe(68);
    expect(unwrap(msg.cseq())).toEqual({ seq: 9, method: "INVITE" });
    const vias = unwrap(msg.via());
    expect(vias.map((v) => [v.transport, v.host, v.branch])).toEqual([
      ["UDP", "192.0.2.2", "390skdjuw"],
      ["TCP", "spindle.example.com", "z9hG4bK9ikj8"],
      ["UDP", "192.168.255.111", "z9hG4bK30239"],
    ]);
    const contacts = unwrap(msg.contacts());
    if (contacts === undefined || contacts.star) throw new Error("expected a contact list");
    const [contact] = contacts.list;
    expect(contact?.displayName).toBe('"Quoted string \\"\\""');
    expect(contact?.params.toArray()).toEqual([
      { name: "newparam", value: "newvalue" },
      { name: "secondparam", value: undefined },
      { name: "q", value: "0.33" },
    ]);
    expect(msg.body.length).toBe(150);
    expect(msg.values("newfangledheader")[0]).toBe("newfangled value   continued newfangled value");
  });

  it("§3.1.1.2 intmeth: unusual token characters in the method and CSeq", () => {
    const msg = request(asset("rfc4475/valid/intmeth.sip"));
    expect(msg.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    expect(unwrap(msg.cseq()).method).toBe(msg.method);
    const uri = unwrap(msg.uri());
    expect(isSipUri(uri) && uri.host).toBe("example.com");
    expect(isSipUri(uri) && uri.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  });

  it("§3.1.1.3 esc01: escapes are kept, not decoded, in user parts", () => {
    const uri = unwrap(request(asset("rfc4475/valid/esc01.sip")).uri());
    expect(isSipUri(uri) && [uri.user, uri.host]).toEqual(["sips%3Auser%40example.com", "example.net"]);
  });

  it("§3.1.1.4 escnull: %00 does not truncate; two distinct contacts", () => {
    const contacts = unwrap(parseValid(asset("rfc4475/valid/escnull.sip")).contacts());
    expect(contacts?.star === false && contacts.list.map((c) => c.uri)).toEqual([
      "sip:%00@host5.example.com",
      "sip:%00%00@host5.example.com",
    ]);
  });

  it("§3.1.1.5 esc02: RE%47IST%45R is not REGISTER", () => {
    expect(request(asset("rfc4475/valid/esc02.sip")).method).toBe("RE%47IST%45R");
  });

  it("§3.1.1.6 lwsdisp: a token display name directly before <", () => {
    expect(unwrap(parseValid(asset("rfc4475/valid/lwsdisp.sip")).from()).displayName).toBe("caller");
  });

  it("§3.1.1.7 longreq: long values and many Via values", () => {
    const msg = parseValid(asset("rfc4475/valid/longreq.sip"));
    expect(unwrap(msg.via()).length).toBeGreaterThanOrEqual(30);
    expect(findParam(unwrap(msg.from()).params, "tag")?.value?.length).toBeGreaterThan(100);
  });

  it("§3.1.1.8 dblreq: octets after Content-Length are not part of the message", () => {
    const bytes = asset("rfc4475/valid/dblreq.sip");
    const msg = request(bytes);
    expect(msg.method).toBe("REGISTER");
    expect(msg.body.length).toBe(0);
    expect(msg.bytes.length).toBeLessThan(bytes.length - 400);
  });

  it("§3.1.1.9 semiuri: ';' in the user part", () => {
    const uri = unwrap(request(asset("rfc4475/valid/semiuri.sip")).uri());
    expect(isSipUri(uri) && [uri.user, uri.host, uri.params.toArray()]).toEqual([
      "user;par=u%40example.net",
      "example.com",
      [],
    ]);
  });

  it("§3.1.1.10 transports: every transport token is kept", () => {
    const vias = unwrap(parseValid(asset("rfc4475/valid/transports.sip")).via());
    expect(vias.map((v) => v.transport)).toEqual(["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
  });

  it("§3.1.1.11 mpart01: a binary body framed by Content-Length", () => {
    const msg = parseValid(asset("rfc4475/valid/mpart01.sip"));
    expect(msg.body.length).toBe(msg.contentLength);
    expect(msg.body.includes(0)).toBe(true);
  });

  it("§3.1.1.12/13 unreason, noreason: UTF-8 and empty reason phrases", () => {
    expect(response(asset("rfc4475/valid/unreason.sip")).reason).toContain("простое");
    const msg = response(asset("rfc4475/valid/noreason.sip"));
    expect([msg.status, msg.reason]).toEqual([100, ""]);
  });

  it("§3.2.1 badbranch: a bare magic cookie is still a branch", () => {
    expect(unwrap(parseValid(asset("rfc4475/valid/badbranch.sip")).via())[0]?.branch).toBe("z9hG4bK");
  });

  it("§3.3.2/3 unkscm, novelsc: unknown schemes parse as opaque URIs", () => {
    expect(unwrap(request(asset("rfc4475/valid/unkscm.sip")).uri()).scheme).toBe("nobodyknowsthisscheme");
    expect(unwrap(request(asset("rfc4475/valid/novelsc.sip")).uri()).scheme).toBe("soap.beep");
  });

  it("§3.3.5 bext01: Require and Proxy-Require tags are readable", () => {
    const msg = parseValid(asset("rfc4475/valid/bext01.sip"));
    expect(unwrap(msg.optionTags(HeaderId.Require)).length).toBeGreaterThan(0);
    expect(unwrap(msg.optionTags(HeaderId.ProxyRequire)).length).toBeGreaterThan(0);
  });

  it("§3.3.11 zeromf: Max-Forwards 0", () => {
    expect(unwrap(parseValid(asset("rfc4475/valid/zeromf.sip")).maxForwards())).toBe(0);
  });

  it("§3.3.12/13 cparam01/02: a parameter after an addr-spec is a header parameter", () => {
    const c1 = unwrap(parseValid(asset("rfc4475/valid/cparam01.sip")).contacts());
    const c2 = unwrap(parseValid(asset("rfc4475/valid/cparam02.sip")).contacts());
    const first1 = c1?.star === false ? c1.list[0] : undefined;
    const first2 = c2?.star === false ? c2.list[0] : undefined;
    expect(first1?.params.toArray().map((p) => p.name)).toEqual(["unknownparam"]);
    expect(first1?.uri).toBe("sip:+19725552222@gw1.example.net");
    expect(first2?.params.toArray()).toEqual([]);
    const uri2 = unwrap(parseUri(first2?.uri ?? ""));
    expect(isSipUri(uri2) && uri2.params.toArray().map((p) => p.name)).toEqual(["unknownparam"]);
  });

  it("§3.3.14 regescrt: an escaped Route header stays in the bracketed Contact URI", () => {
    const contacts = unwrap(parseValid(asset("rfc4475/valid/regescrt.sip")).contacts());
    const uri = unwrap(parseUri(contacts?.star === false ? (contacts.list[0]?.uri ?? "") : ""));
    expect(isSipUri(uri) && uri.headers).toEqual([{ name: "Route", value: "%3Csip:sip.example.com%3E" }]);
  });

  it("§3.4.1 inv2543: no branch, From tag, Max-Forwards or Content-Length", () => {
    const msg = request(asset("rfc4475/valid/inv2543.sip"));
    expect(unwrap(msg.via())[0]?.branch).toBeUndefined();
    expect(findParam(unwrap(msg.from()).params, "tag")).toBeUndefined();
    expect(unwrap(msg.maxForwards())).toBeUndefined();
    expect(msg.contentLength).toBeUndefined();
    expect(msg.body.toString()).toMatch(/^v=0\r\n[\s\S]*m=audio 49217 RTP\/AVP 0\r\n$/);
  });

  it("unquotes quoted-pairs in display names", () => {
    expect(unquote('"J Rosenberg \\\\\\""')).toBe('J Rosenberg \\"');
  });
});
