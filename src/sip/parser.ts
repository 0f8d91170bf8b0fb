import { COLON, CR, HT, LF, SP, TOKEN } from "./chars.ts";
import { type SipError, sipError } from "./errors.ts";
import { HeaderId, headerIdOf } from "./headers.ts";
import { type MessageLayout, type SipMessage, SipRequest, SipResponse } from "./message.ts";
import { METHODS } from "./methods.ts";
import type { Result } from "./result.ts";
import { contentLengthAt } from "./scan.ts";
import { sliceKnown } from "./text.ts";

export interface ParseOptions {
  /** Header lines beyond this make the message unacceptable. */
  readonly maxHeaders?: number;
}

const DEFAULT_MAX_HEADERS = 256;
const CRLFCRLF = Buffer.from("\r\n\r\n");
/**
 * Header offsets are gathered here and copied out at their exact size: a
 * growing JS array reallocated itself several times per message and held
 * 8-byte elements (bench:call-path: 1.2 KB a message, now 0.4 KB). The copy
 * is a plain array of small integers, not a typed-array slice: a slice over
 * 64 bytes gets its own malloc'd ArrayBuffer, which V8 frees in a sweep of
 * its own (72 offsets, one process: slice 430-1 270 ns, plain 100-130 ns,
 * GC threads included).
 */
let scratch = new Int32Array(DEFAULT_MAX_HEADERS * 6);

/**
 * Parses one SIP message from buf[start, end): the start line and the
 * boundaries of each header line become offsets; no header value is decoded.
 * A datagram may carry bytes past Content-Length; they are not part of the
 * message (RFC 3261 §18.3). Never throws on input.
 *
 * The header section is read once into a latin1 string (one native copy):
 * line ends are then found with the engine's string search instead of a
 * byte loop, and decoded values are O(1) slices of it.
 */
export function parseMessage(
  buf: Buffer,
  start = 0,
  end = buf.length,
  options: ParseOptions = {},
): Result<SipMessage, SipError> {
  let msgStart = start;
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  while (msgStart + 1 < end && buf[msgStart] === CR && buf[msgStart + 1] === LF) msgStart += 2;
  // One copy of the header section as text (not sliced: a sliced string
  // makes every later charCodeAt slower); the body is never copied.
  // Nothing past `end` is read: a caller's range may end inside a larger buffer.
  let blank = (end === buf.length ? buf : buf.subarray(0, end)).indexOf(CRLFCRLF, msgStart);
  if (blank + 4 > end) blank = -1;
  const s = blank < 0 ? "" : buf.toString("latin1", msgStart, blank + 4);
  if (blank < 0) return sipError("ERR_SIP_INCOMPLETE", end, "header section is not terminated by an empty line");
  const limit = blank + 2 - msgStart;
  const base = msgStart;
  const startLineEnd = lineEnd(s, 0);
  if (startLineEnd < 0) return sipError("ERR_SIP_BAD_START_LINE", base, "bare CR or LF in the start line");
  const maxHeaders = (options.maxHeaders ?? DEFAULT_MAX_HEADERS) * 6;
  if (scratch.length < maxHeaders) scratch = new Int32Array(maxHeaders);
  let n = 0;
  let contentLength: number | undefined;
  let present = 0;
  let repeated = 0;
  let p = startLineEnd + 2;
  while (p < limit) {
    const eol = headerLine(s, p, base);
    if (typeof eol !== "number") return eol;
    const valueStart = LINE[1] as number;
    const valueEnd = LINE[2] as number;
    const id = headerIdOf(s, p, LINE[0] as number);
    const bit = 1 << id;
    repeated |= present & bit;
    present |= bit;
    if (id === HeaderId.ContentLength) {
      const n = contentLengthAt(buf, base + valueStart, base + valueEnd);
      if (n < 0) return sipError("ERR_SIP_BAD_CONTENT_LENGTH", base + valueStart, "Content-Length is not a number");
      // RFC 4475 §3.3.9: disagreeing Content-Lengths are a framing error.
      if (contentLength !== undefined && contentLength !== n) {
        return sipError("ERR_SIP_BAD_CONTENT_LENGTH", base + valueStart, "conflicting Content-Length values");
      }
      contentLength = n;
    }
    if (n >= maxHeaders) return sipError("ERR_SIP_TOO_MANY_HEADERS", base + p, "too many header lines");
    scratch[n] = id;
    scratch[n + 1] = base + p;
    scratch[n + 2] = base + (LINE[0] as number);
    scratch[n + 3] = base + valueStart;
    scratch[n + 4] = base + valueEnd;
    scratch[n + 5] = LINE[3] as number;
    n += 6;
    p = eol + 2;
  }
  const bodyStart = blank + 4;
  let bodyEnd = end;
  if (contentLength !== undefined) {
    bodyEnd = bodyStart + contentLength;
    if (bodyEnd > end) {
      return sipError("ERR_SIP_BODY_TRUNCATED", end, `body has ${end - bodyStart} of ${contentLength} bytes`);
    }
  }
  const headers = new Array<number>(n);
  for (let i = 0; i < n; i++) headers[i] = scratch[i] as number;
  const layout: MessageLayout = {
    buf,
    text: s,
    start: msgStart,
    startLineEnd: base + startLineEnd,
    headers,
    present,
    repeated,
    headersEnd: blank + 2,
    bodyStart,
    bodyEnd,
    contentLength,
  };
  return isVersionAt(s, 0) ? statusLine(layout) : requestLine(layout);
}

/** Where headerLine found the parts of a line: name end, value start, value end, folded (0/1); read straight after. */
const LINE = new Int32Array(4);

/**
 * Reads the header line whose name starts at p into LINE; returns the
 * offset of the CRLF that ends it (folded continuation lines included), or
 * the error.
 */
function headerLine(s: string, p: number, base: number): number | { ok: false; error: SipError } {
  const nameStart = p;
  while (TOKEN[s.charCodeAt(p)] === 1) p++;
  if (p === nameStart) return sipError("ERR_SIP_BAD_HEADER", base + p, "header line does not start with a name");
  LINE[0] = p;
  let c = s.charCodeAt(p);
  while (c === SP || c === HT) c = s.charCodeAt(++p);
  if (c !== COLON) return sipError("ERR_SIP_BAD_HEADER", base + p, "expected ':' after header name");
  p++;
  let folded = 0;
  // Leading LWS, possibly a folded line break right after the colon.
  for (;;) {
    c = s.charCodeAt(p);
    if (c === SP || c === HT) p++;
    else if (isFold(s, p)) {
      folded = 1;
      p += 3;
    } else break;
  }
  const valueStart = p;
  let eol = lineEnd(s, p);
  // RFC 3261 §7.3.1: a line starting with whitespace continues the value.
  while (eol >= 0 && isWs(s.charCodeAt(eol + 2))) {
    folded = 1;
    eol = lineEnd(s, eol + 3);
  }
  if (eol < 0) return sipError("ERR_SIP_BAD_HEADER", base + p, "bare CR or LF in a header line");
  let valueEnd = eol;
  while (valueEnd > valueStart && isWs(s.charCodeAt(valueEnd - 1))) valueEnd--;
  LINE[1] = valueStart;
  LINE[2] = valueEnd;
  LINE[3] = folded;
  return eol;
}

function isWs(c: number): boolean {
  return c === SP || c === HT;
}

/**
 * RFC 3261 §7.3.1, §25.1 (LWS = [*WSP CRLF] 1*WSP): a header line folds only
 * at CRLF followed by SP or HTAB. A bare CR or LF is never folding: a peer
 * that reads it as a line end would see a header we never saw (a second
 * Content-Length, say); lineEnd then refuses it.
 */
function isFold(s: string, p: number): boolean {
  return s.charCodeAt(p) === CR && s.charCodeAt(p + 1) === LF && isWs(s.charCodeAt(p + 2));
}

/**
 * Offset of the CRLF that ends the line starting at p, or -1 when a bare
 * CR or LF comes first: those are no line ends in SIP, and forwarding them
 * would let a peer that reads them as one smuggle headers past us.
 */
function lineEnd(s: string, p: number): number {
  const lf = s.indexOf("\n", p);
  if (lf < 1 || s.charCodeAt(lf - 1) !== CR) return -1;
  const cr = s.indexOf("\r", p);
  return cr === lf - 1 ? cr : -1;
}

function isVersionAt(s: string, p: number): boolean {
  return (
    (s.charCodeAt(p) | 0x20) === 0x73 &&
    (s.charCodeAt(p + 1) | 0x20) === 0x69 &&
    (s.charCodeAt(p + 2) | 0x20) === 0x70 &&
    s.charCodeAt(p + 3) === 0x2f
  );
}

/** Length of a SIP-Version ("SIP/" 1*DIGIT "." 1*DIGIT) at p, or -1. */
function versionLength(s: string, p: number, end: number): number {
  if (!isVersionAt(s, p)) return -1;
  let i = p + 4;
  const major = i;
  while (i < end && isDigit(s.charCodeAt(i))) i++;
  if (i === major || s.charCodeAt(i) !== 0x2e) return -1;
  const minor = ++i;
  while (i < end && isDigit(s.charCodeAt(i))) i++;
  return i === minor ? -1 : i - p;
}

function isSip20(s: string, p: number, len: number): boolean {
  return len === 7 && s.charCodeAt(p + 4) === 0x32 && s.charCodeAt(p + 5) === 0x2e && s.charCodeAt(p + 6) === 0x30;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 3261 §7.1), exactly one SP each. */
function requestLine(layout: MessageLayout): Result<SipMessage, SipError> {
  const { text: s, start: base } = layout;
  const eol = layout.startLineEnd - base;
  let p = 0;
  while (p < eol && TOKEN[s.charCodeAt(p)] === 1) p++;
  if (p === 0 || s.charCodeAt(p) !== SP)
    return sipError("ERR_SIP_BAD_METHOD", base + p, "method is not a token followed by SP");
  const method = sliceKnown(s, 0, p, METHODS);
  const uriStart = ++p;
  while (p < eol && s.charCodeAt(p) !== SP && s.charCodeAt(p) !== HT) p++;
  const uriEnd = p;
  if (uriEnd === uriStart) return sipError("ERR_SIP_BAD_START_LINE", base + p, "empty Request-URI or extra SP");
  if (s.charCodeAt(p) !== SP) return sipError("ERR_SIP_BAD_START_LINE", base + p, "expected SP before SIP-Version");
  const versionStart = ++p;
  const vlen = versionLength(s, versionStart, eol);
  if (vlen < 0 || versionStart + vlen !== eol) {
    return sipError("ERR_SIP_BAD_START_LINE", base + versionStart, "expected SIP-Version then CRLF");
  }
  if (!isSip20(s, versionStart, vlen))
    return sipError("ERR_SIP_BAD_VERSION", base + versionStart, "only SIP/2.0 is supported");
  return { ok: true, value: new SipRequest(layout, method, base + uriStart, base + uriEnd) };
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (RFC 3261 §7.2). */
function statusLine(layout: MessageLayout): Result<SipMessage, SipError> {
  const { text: s, start: base } = layout;
  const eol = layout.startLineEnd - base;
  const vlen = versionLength(s, 0, eol);
  if (vlen < 0 || s.charCodeAt(vlen) !== SP) return sipError("ERR_SIP_BAD_START_LINE", base, "bad SIP-Version");
  if (!isSip20(s, 0, vlen)) return sipError("ERR_SIP_BAD_VERSION", base, "only SIP/2.0 is supported");
  const p = vlen + 1;
  const c0 = s.charCodeAt(p);
  const c1 = s.charCodeAt(p + 1);
  const c2 = s.charCodeAt(p + 2);
  if (!isDigit(c0) || !isDigit(c1) || !isDigit(c2) || (p + 3 < eol && s.charCodeAt(p + 3) !== SP)) {
    return sipError("ERR_SIP_BAD_STATUS", base + p, "Status-Code is not three digits");
  }
  const status = (c0 - 0x30) * 100 + (c1 - 0x30) * 10 + (c2 - 0x30);
  if (status < 100 || status > 699) return sipError("ERR_SIP_BAD_STATUS", base + p, "Status-Code out of range 100-699");
  return { ok: true, value: new SipResponse(layout, status, base + Math.min(p + 4, eol)) };
}
