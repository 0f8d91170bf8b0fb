import { describe, expect, it } from "vitest";
import { checkMessage, HeaderId, parseMessage, type SipErrorCode } from "../../../src/sip/index.ts";
import { request, response, unwrap } from "../../helpers/sip.ts";

const HEADERS =
  "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n";

function code(text: string): SipErrorCode | undefined {
  const r = parseMessage(Buffer.from(text, "latin1"));
  return r.ok ? undefined : r.error.code;
}

describe("parseMessage", () => {
  it("skips CRLFs before the start line (RFC 3261 §7.5)", () => {
    const msg = request(`\r\n\r\nOPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}\r\n`);
    expect(msg.method).toBe("OPTIONS");
    expect(msg.buf[msg.start]).toBe(0x4f);
  });

  it("rejects a bare LF or bare CR inside a header line, which a peer could read as a line end", () => {
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}X-A: one\nVia: SIP/2.0/UDP evil\r\n\r\n`)).toBe(
      "ERR_SIP_BAD_HEADER",
    );
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}X-A: one\rtwo\r\n\r\n`)).toBe("ERR_SIP_BAD_HEADER");
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\n${HEADERS}\r\n`)).toBe("ERR_SIP_BAD_START_LINE");
  });

  it("never reads a bare CR or LF after the colon as folding (RFC 3261 §7.3.1: folding is CRLF then SP/HTAB)", () => {
    // A peer that takes the bare CR for a line end would see `l : 0`, a Content-Length we never saw.
    const start = "OPTIONS sip:b@example.com SIP/2.0\r\n";
    expect(code(`${start}${HEADERS}Subject:\rl : 0\r\nContent-Length: 4\r\n\r\nabcd`)).toBe("ERR_SIP_BAD_HEADER");
    expect(code(`${start}${HEADERS}Subject:\r\tl: 0\r\nContent-Length: 4\r\n\r\nabcd`)).toBe("ERR_SIP_BAD_HEADER");
    expect(code(`${start}${HEADERS}Subject:\n l: 0\r\nContent-Length: 4\r\n\r\nabcd`)).toBe("ERR_SIP_BAD_HEADER");
    // A real fold right after the colon still continues the value.
    const folded = request(`${start}${HEADERS}Subject:\r\n l: 0\r\nContent-Length: 4\r\n\r\nabcd`);
    expect([folded.values("subject"), folded.countOf(HeaderId.ContentLength), folded.contentLength]).toEqual([
      ["l: 0"],
      1,
      4,
    ]);
  });

  it("rejects header lines without a name or a colon", () => {
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}: novalue\r\n\r\n`)).toBe("ERR_SIP_BAD_HEADER");
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}NoColon value\r\n\r\n`)).toBe("ERR_SIP_BAD_HEADER");
  });

  it("bounds the number of header lines", () => {
    const many = "X-H: v\r\n".repeat(300);
    expect(code(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}${many}\r\n`)).toBe("ERR_SIP_TOO_MANY_HEADERS");
    const few = parseMessage(Buffer.from(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}\r\n`), 0, undefined, {
      maxHeaders: 3,
    });
    expect(few.ok ? undefined : few.error.code).toBe("ERR_SIP_TOO_MANY_HEADERS");
  });

  it("reads status lines, with or without a reason phrase", () => {
    expect(response(`SIP/2.0 180 Ringing\r\n${HEADERS.replace("OPTIONS", "INVITE")}\r\n`).status).toBe(180);
    expect(response(`SIP/2.0 200\r\n${HEADERS}\r\n`).reason).toBe("");
    expect(code(`SIP/2.0 099 Low\r\n${HEADERS}\r\n`)).toBe("ERR_SIP_BAD_STATUS");
    expect(code(`SIP/3.0 200 OK\r\n${HEADERS}\r\n`)).toBe("ERR_SIP_BAD_VERSION");
  });

  it("keeps a large body out of the decoded text and still frames it by Content-Length", () => {
    const body = "a=x\r\n".repeat(2000);
    const msg = request(
      `MESSAGE sip:b@example.com SIP/2.0\r\n${HEADERS.replace("1 OPTIONS", "1 MESSAGE")}Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(msg.body.toString()).toBe(body);
    expect(msg.text.length).toBeLessThan(400);
    expect(unwrap(msg.callId())).toBe("c1");
  });

  it("frames by repeated identical Content-Lengths, then refuses them as duplicates", () => {
    const msg = unwrap(
      parseMessage(Buffer.from(`OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}Content-Length: 2\r\nl: 2\r\n\r\nab`)),
    );
    expect(msg.contentLength).toBe(2);
    expect(msg.countOf(HeaderId.ContentLength)).toBe(2);
    const checked = checkMessage(msg);
    expect(checked.ok ? undefined : checked.error.code).toBe("ERR_SIP_DUPLICATE_HEADER");
  });

  it("points errors at the byte where the problem is", () => {
    const text = `OPTIONS sip:b@example.com SIP/2.0\r\n${HEADERS}\r\n`.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
    const msg = unwrap(parseMessage(Buffer.from(text)));
    const r = msg.cseq();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(text.slice(r.error.offset, r.error.offset + 9)).toBe("x OPTIONS");
  });
});
