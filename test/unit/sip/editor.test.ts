import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkMessage, HeaderId, MessageEditor, parseMessage, type SipMessage } from "../../../src/sip/index.ts";
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

  it("copies untouched bytes as they came, body included, around the new text", () => {
    const msg = request(asset("real/invite-freeswitch-sdp.sip"));
    const via = "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx";
    const out = new MessageEditor(msg).prependVia(via).setMaxForwards(67).toBuffer();
    const firstVia = msg.headerLineStart(msg.indexOf(HeaderId.Via));
    const mf = msg.indexOf(HeaderId.MaxForwards);
    const expected = Buffer.concat([
      msg.buf.subarray(msg.start, firstVia),
      Buffer.from(`Via: ${via}\r\n`),
      msg.buf.subarray(firstVia, msg.headerValueStart(mf)),
      Buffer.from("67"),
      msg.buf.subarray(msg.headerValueEnd(mf), msg.bodyEnd),
    ]);
    expect(out.equals(expected)).toBe(true);
  });

  it("forwards an INVITE whose first header is a Route naming us, record-routed (proxy order of edits)", () => {
    const invite =
      "INVITE sip:b@example.com SIP/2.0\r\nRoute: <sip:edge.example.com;lr>\r\nRoute: <sip:next.example.com;lr>\r\n" +
      "Via: SIP/2.0/TCP ua.example.com;branch=z9hG4bKua\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\n" +
      "To: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    const editor = new MessageEditor(request(invite)).prependVia("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKedge");
    unwrap(editor.setTopViaSource("192.0.2.9", undefined));
    unwrap(editor.removeRoutes(1));
    editor.setMaxForwards(69).insertRecordRoute("<sip:10.0.0.1;lr>").insertRecordRoute("<sip:192.0.2.1;lr>");
    const out = reparse(editor);
    expect(out.buf.toString("latin1", out.headerLineStart(0), out.headerLineEnd(1))).toBe(
      "Record-Route: <sip:10.0.0.1;lr>\r\nRecord-Route: <sip:192.0.2.1;lr>\r\n",
    );
    expect(unwrap(out.addresses(HeaderId.Route)).map((r) => r.value.uri)).toEqual(["sip:next.example.com;lr"]);
    expect(unwrap(out.via()).map((v) => v.branch)).toEqual(["z9hG4bKedge", "z9hG4bKua"]);
    expect(unwrap(out.maxForwards())).toBe(69);
  });

  it("lets removing the top Via absorb an edit of that same Via, in either order", () => {
    const msg = parseValid(TWO_VIAS);
    const removeFirst = unwrap(unwrap(new MessageEditor(msg).removeTopVia()).setTopViaSource("192.0.2.1", undefined));
    const editFirst = unwrap(unwrap(new MessageEditor(msg).setTopViaSource("192.0.2.1", undefined)).removeTopVia());
    for (const editor of [removeFirst, editFirst]) {
      expect(reparse(editor).values("via")).toEqual(["SIP/2.0/TLS ua.example.com;branch=z9hG4bKua"]);
    }
  });

  it("keeps only the last value a setter was given", () => {
    const old = request(asset("rfc4475/valid/inv2543.sip"));
    const out = reparse(
      new MessageEditor(old).setMaxForwards(70).setMaxForwards(12).setRequestUri("sip:x@a").setRequestUri("sip:y@b"),
    );
    expect([out.values("max-forwards"), out.kind === "request" && out.uriText]).toEqual([["12"], "sip:y@b"]);
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

/** The parts of a valid message the editor's operations care about; their order is drawn separately. */
interface Shape {
  readonly kind: "request" | "response";
  readonly vias: "one" | "two-lines" | "two-joined";
  /** Values per Route header line. */
  readonly routes: readonly number[];
  readonly recordRoutes: number;
  readonly path: boolean;
  readonly contact: boolean;
  readonly maxForwards: boolean;
  readonly contentLength: boolean;
  readonly body: boolean;
  /** Comma-joined values continue on a folded line (RFC 3261 §7.3.1). */
  readonly fold: boolean;
}

const BODY = "v=0\r\n";

function headerLines(s: Shape): string[] {
  const join = s.fold ? ",\r\n\t" : ", ";
  const via = ["SIP/2.0/TCP ua.example.com;branch=z9hG4bKa", "SIP/2.0/UDP p.example.com:5070;branch=z9hG4bKb;rport=1"];
  const vias = s.vias === "one" ? [via[0]] : s.vias === "two-lines" ? via : [via.join(join)];
  let route = 0;
  const uris = (n: number) => Array.from({ length: n }, () => `<sip:r${route++}.example.com;lr>`).join(join);
  const lines = [
    ...vias.map((v) => `Via: ${v}`),
    ...s.routes.map((n) => `Route: ${uris(n)}`),
    ...Array.from({ length: s.recordRoutes }, (_, i) => `Record-Route: <sip:rr${i}.example.com;lr>`),
    "From: <sip:a@example.com>;tag=1",
    "To: <sip:b@example.com>",
    "Call-ID: prop1",
    "CSeq: 7 INVITE",
    "Subject: edits",
  ];
  if (s.path) lines.push("Path: <sip:path.example.com;lr>");
  if (s.contact) lines.push("Contact: <sip:a@192.0.2.1:5060>");
  if (s.maxForwards) lines.push("Max-Forwards: 70");
  if (s.contentLength) lines.push(`Content-Length: ${s.body ? BODY.length : 0}`);
  return lines;
}

function messageOf(s: Shape, lines: readonly string[]): SipMessage {
  const start = s.kind === "request" ? "INVITE sip:b@example.com SIP/2.0" : "SIP/2.0 200 OK";
  return parseValid(`${start}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n${s.body ? BODY : ""}`);
}

const shapes: fc.Arbitrary<Shape> = fc.record({
  kind: fc.constantFrom("request" as const, "response" as const),
  vias: fc.constantFrom("one" as const, "two-lines" as const, "two-joined" as const),
  routes: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
  recordRoutes: fc.integer({ min: 0, max: 2 }),
  path: fc.boolean(),
  contact: fc.boolean(),
  maxForwards: fc.boolean(),
  contentLength: fc.boolean(),
  body: fc.boolean(),
  fold: fc.boolean(),
});

/** A valid message whose header lines come in any order (a Route first, Via last, ...). */
const permutedMessages = shapes.chain((s) => {
  const lines = headerLines(s);
  return fc
    .shuffledSubarray(lines, { minLength: lines.length, maxLength: lines.length })
    .map((order) => messageOf(s, order));
});

type Edit =
  | { readonly op: "prependVia" | "insertRecordRoute" | "insertPath" | "removeTopVia" | "setRequestUri" | "addHeader" }
  | { readonly op: "removeRoutes" | "setMaxForwards"; readonly n: number }
  | { readonly op: "setTopViaSource"; readonly rport: number | undefined };

const edits: fc.Arbitrary<Edit[]> = fc.array(
  fc.oneof(
    fc.record({
      op: fc.constantFrom(
        "prependVia" as const,
        "insertRecordRoute" as const,
        "insertPath" as const,
        "removeTopVia" as const,
        "setRequestUri" as const,
        "addHeader" as const,
      ),
    }),
    fc.record({ op: fc.constantFrom("removeRoutes" as const), n: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ op: fc.constantFrom("setMaxForwards" as const), n: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      op: fc.constantFrom("setTopViaSource" as const),
      rport: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    }),
  ),
  { maxLength: 10 },
);

function applyEdit(editor: MessageEditor, e: Edit): void {
  switch (e.op) {
    case "prependVia":
      editor.prependVia("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKedge;rport");
      return;
    case "insertRecordRoute":
      editor.insertRecordRoute("<sip:127.0.0.1;lr>");
      return;
    case "insertPath":
      editor.insertPath("<sip:127.0.0.1;lr;ob>");
      return;
    case "removeTopVia":
      unwrap(editor.removeTopVia());
      return;
    case "setRequestUri":
      editor.setRequestUri("sip:pbx@127.0.0.1:5080");
      return;
    case "addHeader":
      editor.addHeader("Flow-Timer", "120");
      return;
    case "removeRoutes":
      unwrap(editor.removeRoutes(e.n));
      return;
    case "setMaxForwards":
      editor.setMaxForwards(e.n);
      return;
    case "setTopViaSource":
      unwrap(editor.setTopViaSource("198.51.100.7", e.rport));
  }
}

describe("MessageEditor composes any edits on any header order", () => {
  it("never throws, and the output re-parses with the Via, Route and Max-Forwards the edits imply", () => {
    fc.assert(
      fc.property(permutedMessages, edits, (msg, list) => {
        const editor = new MessageEditor(msg);
        for (const e of list) applyEdit(editor, e);
        const out = unwrap(parseMessage(editor.toBuffer()));
        const count = (op: Edit["op"]) => list.filter((e) => e.op === op).length;
        // Removing the top Via or the first n Routes again removes nothing more.
        const vias = unwrap(msg.via()).length + count("prependVia") - (count("removeTopVia") > 0 ? 1 : 0);
        expect(unwrap(out.via()).length).toBe(vias);
        const popped = Math.max(0, ...list.map((e) => (e.op === "removeRoutes" ? e.n : 0)));
        const routes = unwrap(msg.addresses(HeaderId.Route)).length;
        expect(unwrap(out.addresses(HeaderId.Route)).length).toBe(Math.max(0, routes - popped));
        const lastMaxForwards = list.findLast((e) => e.op === "setMaxForwards");
        expect(out.values("max-forwards")).toEqual(
          lastMaxForwards?.op === "setMaxForwards" ? [String(lastMaxForwards.n)] : msg.values("max-forwards"),
        );
        expect(out.body.equals(msg.body)).toBe(true);
        if (vias > 0) unwrap(checkMessage(out));
      }),
      { numRuns: 5_000 },
    );
  });
});
