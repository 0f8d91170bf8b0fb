import { COLON, CR, HT, LF, lower, SP, TOKEN } from "./chars.ts";
import { type SipError, type SipErrorCode, sipError } from "./errors.ts";
import type { Result } from "./result.ts";
import { contentLengthAt, crlfAt, findHeaderEnd } from "./scan.ts";

/**
 * What a stream yields: a whole SIP message, or an RFC 5626 §3.5.1 keep-alive
 * (a CRLFCRLF "ping" or a CRLF "pong").
 */
export type Frame =
  | { readonly kind: "message"; readonly bytes: Buffer }
  | { readonly kind: "ping" }
  | { readonly kind: "pong" };

const PING: Frame = { kind: "ping" };
const PONG: Frame = { kind: "pong" };
const MIN_BUFFER = 4096;

export interface FramerOptions {
  /** Largest message accepted, header section and body together. */
  readonly maxMessageSize: number;
}

/**
 * Splits a TCP/TLS/WebSocket byte stream into SIP messages by Content-Length
 * (RFC 3261 §18.3). Chunks that hold whole messages are returned as views of
 * the caller's buffer; only a message that spans chunks is copied, into a
 * buffer bounded by maxMessageSize. Bytes already handed out are never
 * overwritten. After an error the stream cannot be resynchronised: the caller
 * closes the connection.
 */
export class StreamFramer {
  readonly #max: number;
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** Whether #buf is our own accumulation buffer (we may append into it). */
  #owned = false;
  /** Where to resume looking for CRLFCRLF in the pending bytes. */
  #scanFrom = 0;
  #failed: SipError | undefined;

  constructor(options: FramerOptions) {
    this.#max = options.maxMessageSize;
  }

  /** Bytes received but not yet returned as a frame. */
  get pending(): number {
    return this.#end - this.#start;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.#failed !== undefined) return;
    if (this.#start === this.#end) {
      this.#buf = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      this.#owned = false;
      this.#scanFrom = 0;
      return;
    }
    const pending = this.#end - this.#start;
    if (this.#owned && this.#end + chunk.length <= this.#buf.length) {
      chunk.copy(this.#buf, this.#end);
      this.#end += chunk.length;
      return;
    }
    // Grow geometrically so byte-at-a-time input stays linear; never past
    // what one message (plus the chunk that overflowed it) can need.
    const need = pending + chunk.length;
    const size = Math.max(MIN_BUFFER, Math.min(Math.max(need, pending * 2), this.#max + chunk.length));
    const next = Buffer.allocUnsafe(Math.max(size, need));
    this.#buf.copy(next, 0, this.#start, this.#end);
    chunk.copy(next, pending);
    this.#scanFrom -= this.#start;
    this.#buf = next;
    this.#start = 0;
    this.#end = need;
    this.#owned = true;
  }

  /**
   * The next complete frame, null when more bytes are needed, or the error
   * that ends this stream (returned again on every later call).
   */
  next(): Result<Frame | null, SipError> {
    if (this.#failed !== undefined) return { ok: false, error: this.#failed };
    const buf = this.#buf;
    const s = this.#start;
    const end = this.#end;
    if (s === end) return { ok: true, value: null };
    if (buf[s] === CR) {
      if (end - s < 2) return { ok: true, value: null };
      if (buf[s + 1] !== LF) return this.#fail("ERR_SIP_BAD_START_LINE", s, "stray CR between messages");
      if (end - s < 3) return { ok: true, value: null };
      if (buf[s + 2] === CR) {
        if (end - s < 4) return { ok: true, value: null };
        if (buf[s + 3] === LF) return this.#consume(4, PING);
      }
      return this.#consume(2, PONG);
    }
    const scanFrom = Math.max(s, this.#scanFrom);
    const headerEnd = findHeaderEnd(buf, scanFrom, end);
    if (headerEnd < 0) {
      if (end - s > this.#max)
        return this.#fail("ERR_SIP_MESSAGE_TOO_LARGE", s, "header section exceeds the maximum message size");
      // The terminator may straddle the next chunk: rescan the last 3 bytes.
      this.#scanFrom = Math.max(s, end - 3);
      return { ok: true, value: null };
    }
    const length = contentLengthOf(buf, s, headerEnd);
    if (length < 0) {
      const [code, detail] = UNFRAMABLE[length] as Unframable;
      return this.#fail(code, s, detail);
    }
    const total = headerEnd + 4 + length - s;
    if (total > this.#max)
      return this.#fail("ERR_SIP_MESSAGE_TOO_LARGE", s, `message of ${total} bytes exceeds the maximum`);
    if (end - s < total) {
      this.#scanFrom = headerEnd;
      return { ok: true, value: null };
    }
    return this.#consume(total, { kind: "message", bytes: buf.subarray(s, s + total) });
  }

  /**
   * A lone CRLF is a pong only once we know no second CRLF follows. A UA
   * that sent a ping calls this when it has drained next(): it reports (and
   * consumes) a pong that is the last thing received.
   */
  takeLonePong(): boolean {
    if (this.#end - this.#start === 2 && this.#buf[this.#start] === CR && this.#buf[this.#start + 1] === LF) {
      this.#consume(2, PONG);
      return true;
    }
    return false;
  }

  #consume(n: number, frame: Frame): Result<Frame, SipError> {
    this.#start += n;
    if (this.#start === this.#end) {
      // Drop our reference so the next chunk is taken without a copy.
      this.#buf = Buffer.alloc(0);
      this.#start = this.#end = this.#scanFrom = 0;
      this.#owned = false;
    }
    return { ok: true, value: frame };
  }

  #fail(code: SipError["code"], offset: number, detail: string): Result<never, SipError> {
    const r = sipError(code, offset, detail);
    this.#failed = r.error;
    return r;
  }
}

const NO_CONTENT_LENGTH = -1;
const BAD_CONTENT_LENGTH = -2;
const BARE_BREAK_IN_START_LINE = -3;
const BARE_BREAK_IN_HEADER = -4;

type Unframable = readonly [SipErrorCode, string];

/** Why a header section cannot be framed, by contentLengthOf's negative result. */
const UNFRAMABLE: Readonly<Record<number, Unframable>> = {
  [NO_CONTENT_LENGTH]: ["ERR_SIP_MISSING_CONTENT_LENGTH", "stream message without Content-Length (RFC 3261 §18.3)"],
  [BAD_CONTENT_LENGTH]: ["ERR_SIP_BAD_CONTENT_LENGTH", "bad or conflicting Content-Length"],
  [BARE_BREAK_IN_START_LINE]: ["ERR_SIP_BAD_START_LINE", "bare CR or LF in the start line"],
  [BARE_BREAK_IN_HEADER]: ["ERR_SIP_BAD_HEADER", "bare CR or LF in the header section (RFC 3261 §7.3.1)"],
};

/**
 * Content-Length of the header section buf[start, headerEnd), or a negative
 * code. Lines are split exactly as the parser splits them (CRLF only, folding
 * only at CRLF then SP/HTAB): a bare CR or LF ends the stream, since a peer
 * that reads one as a line end would frame this stream differently (request
 * smuggling), and no message with one is ever forwarded.
 */
function contentLengthOf(buf: Buffer, start: number, headerEnd: number): number {
  const startLineEnd = crlfAt(buf, start);
  if (startLineEnd < 0) return BARE_BREAK_IN_START_LINE;
  let found = NO_CONTENT_LENGTH;
  let p = startLineEnd + 2;
  while (p < headerEnd + 2) {
    const lineEnd = headerLineEnd(buf, p);
    if (lineEnd < 0) return BARE_BREAK_IN_HEADER;
    let nameEnd = p;
    while (TOKEN[buf[nameEnd] as number] === 1) nameEnd++;
    if (isContentLengthName(buf, p, nameEnd)) {
      let v = nameEnd;
      while (buf[v] === SP || buf[v] === HT) v++;
      if (buf[v] !== COLON) return BAD_CONTENT_LENGTH;
      const n = contentLengthAt(buf, v + 1, lineEnd);
      if (n < 0 || (found >= 0 && found !== n)) return BAD_CONTENT_LENGTH;
      found = n;
    }
    p = lineEnd + 2;
  }
  return found;
}

const CONTENT_LENGTH = Buffer.from("content-length");

/** "Content-Length" or its compact form "l" (RFC 3261 §7.3.3), any case. */
function isContentLengthName(buf: Buffer, start: number, end: number): boolean {
  if (end - start === 1) return lower(buf[start] as number) === 0x6c;
  if (end - start !== CONTENT_LENGTH.length) return false;
  for (let i = 0; i < CONTENT_LENGTH.length; i++) {
    if (lower(buf[start + i] as number) !== CONTENT_LENGTH[i]) return false;
  }
  return true;
}

/**
 * Offset of the CRLF ending the header line at p, its folded continuation
 * lines included (RFC 3261 §7.3.1: CRLF then SP or HTAB), or -1 at a bare
 * CR or LF. The header section's closing CRLFCRLF bounds the search.
 */
function headerLineEnd(buf: Buffer, p: number): number {
  for (;;) {
    const eol = crlfAt(buf, p);
    if (eol < 0) return -1;
    const next = buf[eol + 2];
    if (next !== SP && next !== HT) return eol;
    p = eol + 2;
  }
}

/**
 * RFC 5626 §3.5.1 / RFC 5389: what one UDP datagram carries. A STUN message
 * starts with two zero bits; SIP starts with a letter.
 */
export function classifyDatagram(buf: Buffer): "sip" | "keepalive" | "stun" {
  if (buf.length >= 20 && ((buf[0] as number) & 0xc0) === 0) return "stun";
  for (const c of buf) if (c !== CR && c !== LF) return "sip";
  return "keepalive";
}
