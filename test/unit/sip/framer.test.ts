import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyDatagram, type Frame, parseMessage, type SipError, StreamFramer } from "../../../src/sip/index.ts";
import { validMessages } from "../../helpers/corpus.ts";

const MAX = 64 * 1024;

type Out = { kind: "message"; text: string } | { kind: "ping" } | { kind: "pong" } | { kind: "error"; code: string };

/** Feeds chunks and collects every frame (messages as text) and a final error, if any. */
function run(chunks: readonly Buffer[], max = MAX): Out[] {
  const framer = new StreamFramer({ maxMessageSize: max });
  const out: Out[] = [];
  for (const chunk of chunks) {
    framer.push(chunk);
    for (;;) {
      const r = framer.next();
      if (!r.ok) {
        out.push({ kind: "error", code: (r.error as SipError).code });
        return out;
      }
      if (r.value === null) break;
      out.push(toOut(r.value));
    }
  }
  return out;
}

function toOut(f: Frame): Out {
  return f.kind === "message" ? { kind: "message", text: f.bytes.toString("latin1") } : { kind: f.kind };
}

/** Stream-framable messages: valid samples with a Content-Length and no bytes after the body. */
const streamable = validMessages()
  .map((m) => m.bytes)
  .filter((b) => {
    const r = parseMessage(b);
    return r.ok && r.value.contentLength !== undefined && r.value.bytes.length === b.length;
  });

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

describe("StreamFramer", () => {
  const stream = Buffer.concat([
    Buffer.from("\r\n\r\n"),
    ...streamable.slice(0, 6),
    Buffer.from("\r\n\r\n"),
    ...streamable.slice(6),
  ]);
  const whole = run([stream]);

  it("frames a stream of real messages and keep-alives in one chunk", () => {
    expect(whole.filter((o) => o.kind === "message").length).toBe(streamable.length);
    expect(whole.filter((o) => o.kind === "ping").length).toBe(2);
    expect(whole.some((o) => o.kind === "error")).toBe(false);
  });

  it("gives identical frames when a message is split at every byte boundary", () => {
    for (const msg of streamable.slice(0, 8)) {
      const expected = run([msg]);
      for (let i = 1; i < msg.length; i++) {
        expect(run([msg.subarray(0, i), msg.subarray(i)])).toEqual(expected);
      }
    }
  });

  it("gives identical frames one byte at a time", () => {
    const bytes = Array.from(stream, (b) => Buffer.from([b]));
    expect(run(bytes)).toEqual(whole);
  });

  it("gives identical frames under arbitrary chunking (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        expect(run(splitAt(stream, cuts))).toEqual(whole);
      }),
      { numRuns: 20_000 },
    );
  });

  it("returns views of the caller's chunk when it holds whole messages", () => {
    const chunk = Buffer.concat(streamable.slice(0, 2));
    const framer = new StreamFramer({ maxMessageSize: MAX });
    framer.push(chunk);
    const r = framer.next();
    expect(r.ok && r.value?.kind === "message" && r.value.bytes.buffer).toBe(chunk.buffer);
  });

  it("tells a ping (CRLFCRLF) from a pong (CRLF) per RFC 5626 §3.5.1", () => {
    const msg = streamable[0] as Buffer;
    expect(run([Buffer.from("\r\n"), msg]).map((o) => o.kind)).toEqual(["pong", "message"]);
    expect(run([Buffer.from("\r\n\r\n\r\n"), msg]).map((o) => o.kind)).toEqual(["ping", "pong", "message"]);
    const framer = new StreamFramer({ maxMessageSize: MAX });
    framer.push(Buffer.from("\r\n"));
    expect(framer.next()).toEqual({ ok: true, value: null });
    expect(framer.takeLonePong()).toBe(true);
    expect(framer.pending).toBe(0);
  });

  it("rejects a message over the size limit, by Content-Length or by endless headers", () => {
    const big = Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n${"x".repeat(5000)}`);
    expect(run([big], 1024).at(-1)).toEqual({ kind: "error", code: "ERR_SIP_MESSAGE_TOO_LARGE" });
    const endless = Array.from({ length: 200 }, () => Buffer.from("X-Filler: yyyyyyyyyyyyyyyyyyyy\r\n"));
    expect(run([Buffer.from("OPTIONS sip:a@b SIP/2.0\r\n"), ...endless], 1024).at(-1)).toEqual({
      kind: "error",
      code: "ERR_SIP_MESSAGE_TOO_LARGE",
    });
  });

  it("treats a missing, negative or conflicting Content-Length as fatal for the stream", () => {
    const head = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n";
    expect(run([Buffer.from(`${head}\r\n`)])).toEqual([{ kind: "error", code: "ERR_SIP_MISSING_CONTENT_LENGTH" }]);
    expect(run([Buffer.from(`${head}Content-Length: -999\r\n\r\n`)])).toEqual([
      { kind: "error", code: "ERR_SIP_BAD_CONTENT_LENGTH" },
    ]);
    expect(run([Buffer.from(`${head}l: 1\r\nContent-Length: 2\r\n\r\nab`)])).toEqual([
      { kind: "error", code: "ERR_SIP_BAD_CONTENT_LENGTH" },
    ]);
  });

  it("refuses a bare CR or LF in the header section: a peer reading it as a line end would frame otherwise", () => {
    const head = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n";
    for (const [smuggled, expected] of [
      [`${head}Subject:\rl : 0\r\nContent-Length: 4\r\n\r\nabcd`, "ERR_SIP_BAD_HEADER"],
      [`${head}Subject:\r\tl: 0\r\nContent-Length: 4\r\n\r\nabcd`, "ERR_SIP_BAD_HEADER"],
      [`${head}Subject: x\nl: 0\r\nContent-Length: 4\r\n\r\nabcd`, "ERR_SIP_BAD_HEADER"],
      [`OPTIONS sip:a@b SIP/2.0\rl: 0\r\nContent-Length: 4\r\n\r\nabcd`, "ERR_SIP_BAD_START_LINE"],
    ]) {
      expect(run([Buffer.from(smuggled as string, "latin1")]), JSON.stringify(smuggled)).toEqual([
        { kind: "error", code: expected },
      ]);
    }
  });

  it("agrees with the parser: a frame it yields has only CRLF line ends and is the message the parser reads", () => {
    const breaks = fc.constantFrom("\r", "\n", "\rl : 0", "\r\tl: 0", "\nl: 0", "\r\n l: 0", "\r\nl: 0");
    fc.assert(
      fc.property(fc.constantFrom(...streamable), fc.nat(), breaks, (msg, at, inserted) => {
        const headerEnd = msg.indexOf("\r\n\r\n");
        const cut = at % (headerEnd + 2);
        const bytes = Buffer.concat([msg.subarray(0, cut), Buffer.from(inserted, "latin1"), msg.subarray(cut)]);
        const framer = new StreamFramer({ maxMessageSize: MAX });
        framer.push(bytes);
        const r = framer.next();
        if (!r.ok || r.value?.kind !== "message") return;
        const frame = r.value.bytes;
        expect(bareLineBreakIn(frame, 0, frame.indexOf("\r\n\r\n") + 2)).toBe(-1);
        const parsed = parseMessage(frame);
        if (parsed.ok) expect(parsed.value.bodyEnd).toBe(frame.length);
      }),
      { numRuns: 5_000 },
    );
  });

  it("reads a folded, compact Content-Length", () => {
    const msg = Buffer.from("OPTIONS sip:a@b SIP/2.0\r\nL:\r\n 3\r\n\r\nabc");
    expect(run([msg])).toEqual([{ kind: "message", text: msg.toString("latin1") }]);
  });

  it("keeps earlier frames intact after later chunks arrive", () => {
    const [a, b] = streamable as [Buffer, Buffer];
    const framer = new StreamFramer({ maxMessageSize: MAX });
    framer.push(a.subarray(0, 10));
    framer.push(a.subarray(10));
    const first = framer.next();
    framer.push(b);
    framer.next();
    expect(first.ok && first.value?.kind === "message" && first.value.bytes.equals(a)).toBe(true);
  });
});

/** Offset of the first CR not followed by LF or LF not preceded by CR in buf[start, end), or -1. */
function bareLineBreakIn(buf: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    if (buf[i] === 0x0d && buf[i + 1] !== 0x0a) return i;
    if (buf[i] === 0x0a && buf[i - 1] !== 0x0d) return i;
  }
  return -1;
}

describe("classifyDatagram", () => {
  it("recognises SIP, CRLF keep-alives and STUN binding requests", () => {
    expect(classifyDatagram(streamable[0] as Buffer)).toBe("sip");
    expect(classifyDatagram(Buffer.from("\r\n\r\n"))).toBe("keepalive");
    const stun = Buffer.alloc(20);
    stun.writeUInt16BE(0x0001, 0);
    stun.writeUInt32BE(0x2112a442, 4);
    expect(classifyDatagram(stun)).toBe("stun");
  });
});
