import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HeaderId, MessageEditor, parseMessage, type SipMessage } from "../../../src/sip/index.ts";
import { asset, validMessages } from "../../helpers/corpus.ts";
import { parseValid, request, unwrap } from "../../helpers/sip.ts";

function reparse(editor: MessageEditor): SipMessage {
  return parseValid(editor.toBuffer());
}

const TWO_VIAS =
  "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP edge.example.com;branch=z9hG4bKedge, SIP/2.0/TLS ua.example.com;branch=z9hG4bKua\r\n" +
  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

describe("MessageEditor", () => {
  it("prepends our Via above every existing one", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    const out = reparse(new MessageEditor(msg).prependVia("SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKsipedge1"));
    const vias = unwrap(out.via());
    expect(vias.map((v) => v.branch)).toEqual(["z9hG4bKsipedge1", ...unwrap(msg.via()).map((v) => v.branch)]);
  });

  it("removes the top Via of a response, from a comma-joined line too", () => {
    const out = reparse(unwrap(new MessageEditor(parseValid(TWO_VIAS)).removeTopVia()));
    expect(unwrap(out.via()).map((v) => v.branch)).toEqual(["z9hG4bKua"]);
    expect(out.values("via")).toEqual(["SIP/2.0/TLS ua.example.com;branch=z9hG4bKua"]);
    const single = parseValid(asset("real/200ok-invite-two-via-record-route.sip"));
    const out2 = reparse(unwrap(new MessageEditor(single).removeTopVia()));
    expect(unwrap(out2.via()).length).toBe(unwrap(single.via()).length - 1);
  });

  it("pops the top Route entry, keeping the rest of a comma-joined Route", () => {
    const msg = request(asset("real/bye-asterisk-route.sip"));
    const routes = unwrap(msg.addresses(HeaderId.Route));
    const out = reparse(unwrap(new MessageEditor(msg).removeRoutes(1)));
    expect(unwrap(out.addresses(HeaderId.Route)).map((r) => r.value.uri)).toEqual([routes[1]?.value.uri]);
  });

  it("inserts Record-Route and Path above the existing ones", () => {
    const msg = parseValid(asset("real/200ok-invite-two-via-record-route.sip"));
    const before = unwrap(msg.addresses(HeaderId.RecordRoute)).map((r) => r.value.uri);
    const out = reparse(new MessageEditor(msg).insertRecordRoute("<sip:127.0.0.1:5060;lr>"));
    expect(unwrap(out.addresses(HeaderId.RecordRoute)).map((r) => r.value.uri)).toEqual([
      "sip:127.0.0.1:5060;lr",
      ...before,
    ]);
    const reg = request(asset("real/rfc3327-register-path-four-via.sip"));
    const paths = unwrap(reg.addresses(HeaderId.Path)).length;
    const withPath = reparse(new MessageEditor(reg).insertPath("<sip:edge@127.0.0.1;lr;ob>"));
    expect(unwrap(withPath.addresses(HeaderId.Path))[0]?.value.uri).toBe("sip:edge@127.0.0.1;lr;ob");
    expect(unwrap(withPath.addresses(HeaderId.Path)).length).toBe(paths + 1);
  });

  it("sets Max-Forwards, adding it when an RFC 2543 peer left it out", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    expect(unwrap(reparse(new MessageEditor(msg).setMaxForwards(67)).maxForwards())).toBe(67);
    const old = request(asset("rfc4475/valid/inv2543.sip"));
    expect(unwrap(reparse(new MessageEditor(old).setMaxForwards(70)).maxForwards())).toBe(70);
  });

  it("fills rport and adds received on the top Via (RFC 3581 §4)", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    const out = reparse(unwrap(new MessageEditor(msg).setTopViaSource("192.0.2.7", 40123)));
    const [top] = unwrap(out.via());
    expect([top?.received, top?.rport, top?.branch]).toEqual(["192.0.2.7", 40123, unwrap(msg.via())[0]?.branch]);
  });

  it("gives a message that came without Content-Length (UDP, WebSocket) one that frames its body on a stream", () => {
    const body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    const bare =
      "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKws\r\nMax-Forwards: 70\r\n" +
      `From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: ws1\r\nCSeq: 1 MESSAGE\r\n\r\n${body}`;
    const out = reparse(new MessageEditor(parseValid(bare)));
    expect(out.values("content-length")).toEqual([String(body.length)]);
    expect(out.body.toString()).toBe(body);
    const framed = parseValid(asset("real/invite-freeswitch-sdp.sip"));
    expect(reparse(new MessageEditor(framed)).values("content-length")).toEqual(framed.values("content-length"));
  });

  it("rewrites the Request-URI", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    const out = reparse(new MessageEditor(msg).setRequestUri("sip:pbx-a@127.0.0.1:5080"));
    expect(out.kind === "request" && out.uriText).toBe("sip:pbx-a@127.0.0.1:5080");
  });

  it("emits untouched ranges as views of the received buffer", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    const slices = new MessageEditor(msg)
      .prependVia("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx")
      .setMaxForwards(67)
      .slices();
    expect(slices.filter((s) => s.buffer === msg.buf.buffer).length).toBeGreaterThanOrEqual(2);
  });

  it("refuses overlapping edits as a programming error", () => {
    const msg = parseValid(TWO_VIAS);
    const editor = unwrap(unwrap(new MessageEditor(msg).removeTopVia()).setTopViaSource("192.0.2.1", undefined));
    expect(() => editor.slices()).toThrow(/overlapping/);
  });
});

/** Byte-exact header lines of a message, keyed by whether an edit may touch them. */
function lines(msg: SipMessage, touched: ReadonlySet<HeaderId>): string[] {
  const out: string[] = [];
  for (let i = 0; i < msg.headerCount; i++) {
    if (touched.has(msg.headerId(i))) continue;
    out.push(msg.buf.toString("latin1", msg.headerLineStart(i), msg.headerLineEnd(i)));
  }
  return out;
}

const requests = validMessages()
  .map((m) => parseValid(m.bytes))
  .filter((m): m is Extract<SipMessage, { kind: "request" }> => m.kind === "request");

describe("MessageEditor properties", () => {
  it("keeps every untouched header byte-identical and the body intact", () => {
    const edits = fc.record({
      via: fc.boolean(),
      rr: fc.boolean(),
      mf: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
      route: fc.boolean(),
      source: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.constantFrom(...requests), edits, (msg, e) => {
        const editor = new MessageEditor(msg);
        const touched = new Set<HeaderId>();
        if (msg.contentLength === undefined) touched.add(HeaderId.ContentLength);
        if (e.via || e.source) touched.add(HeaderId.Via);
        if (e.via) editor.prependVia("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKprop");
        if (e.source) unwrap(editor.setTopViaSource("198.51.100.1", 5062));
        if (e.rr) {
          touched.add(HeaderId.RecordRoute);
          editor.insertRecordRoute("<sip:127.0.0.1;lr>");
        }
        if (e.mf !== undefined) {
          touched.add(HeaderId.MaxForwards);
          editor.setMaxForwards(e.mf);
        }
        if (e.route) {
          touched.add(HeaderId.Route);
          unwrap(editor.removeRoutes(1));
        }
        const out = unwrap(parseMessage(editor.toBuffer()));
        expect(lines(out, touched)).toEqual(lines(msg, touched));
        expect(out.body.equals(msg.body)).toBe(true);
        if (e.mf !== undefined) expect(unwrap(out.maxForwards())).toBe(e.mf);
      }),
      { numRuns: 20_000 },
    );
  });
});
