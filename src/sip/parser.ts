import { CR, COLON, HT, LF, SP, TOKEN } from "./chars.ts";
import { type SipError, sipError } from "./errors.ts";
import { HeaderId, headerIdOf } from "./headers.ts";
import { type MessageLayout, type SipMessage, SipRequest, SipResponse } from "./message.ts";
import type { Result } from "./result.ts";
import { contentLengthAt } from "./scan.ts";

export interface ParseOptions {
  /** Header lines beyond this make the message unacceptable. */
  readonly maxHeaders?: number;
}

const DEFAULT_MAX_HEADERS = 256;

/**
 * Parses one SIP message from buf[start, end): the start line and the
 * boundaries of each header line become offsets; no header value is decoded.
 * A datagram may carry bytes past Content-Length; they are not part of the
 * message (RFC 3261 §18.3). Never throws on input.
 */
export function parseMessage(
  buf: Buffer,
  start = 0,
  end = buf.length,
  options: ParseOptions = {},
): Result<SipMessage, SipError> {
  let p = start;
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  while (p + 1 < end && buf[p] === CR && buf[p + 1] === LF) p += 2;
  const msgStart = p;
  while (p < end && buf[p] !== CR && buf[p] !== LF) p++;
  if (p + 1 >= end || buf[p] !== CR || buf[p + 1] !== LF) {
    return sipError("ERR_SIP_INCOMPLETE", p, "start line is not terminated by CRLF");
  }
  const startLineEnd = p;
  const maxHeaders = (options.maxHeaders ?? DEFAULT_MAX_HEADERS) * 6;
  const headers: number[] = [];
  let contentLength: number | undefined;
  p += 2;
  for (;;) {
    if (p + 1 < end && buf[p] === CR && buf[p + 1] === LF) break;
    if (p >= end) return sipError("ERR_SIP_INCOMPLETE", p, "header section is not terminated by an empty line");
    const nameStart = p;
    while (p < end && TOKEN[buf[p] as number] === 1) p++;
    const nameEnd = p;
    if (nameEnd === nameStart) return sipError("ERR_SIP_BAD_HEADER", p, "header line does not start with a name");
    while (p < end && (buf[p] === SP || buf[p] === HT)) p++;
    if (p >= end || buf[p] !== COLON) return sipError("ERR_SIP_BAD_HEADER", p, "expected ':' after header name");
    p++;
    let folded = 0;
    // Leading LWS, possibly a folded line break right after the colon.
    for (;;) {
      const c = p < end ? buf[p] : -1;
      if (c === SP || c === HT) p++;
      else if (c === CR && p + 2 < end && buf[p + 1] === LF && (buf[p + 2] === SP || buf[p + 2] === HT)) {
        folded = 1;
        p += 3;
      } else break;
    }
    const valueStart = p;
    let valueEnd: number;
    for (;;) {
      while (p < end && buf[p] !== CR && buf[p] !== LF) p++;
      if (p + 1 >= end) return sipError("ERR_SIP_INCOMPLETE", p, "header line is not terminated by CRLF");
      if (buf[p] !== CR || buf[p + 1] !== LF) return sipError("ERR_SIP_BAD_HEADER", p, "bare CR or LF in header");
      const next = p + 2 < end ? buf[p + 2] : -1;
      if (next === SP || next === HT) {
        // RFC 3261 §7.3.1: a line starting with whitespace continues the value.
        folded = 1;
        p += 3;
        continue;
      }
      valueEnd = p;
      break;
    }
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--;
    const id = headerIdOf(buf, nameStart, nameEnd);
    if (id === HeaderId.ContentLength) {
      const n = contentLengthAt(buf, valueStart, valueEnd);
      if (n < 0) return sipError("ERR_SIP_BAD_CONTENT_LENGTH", valueStart, "Content-Length is not a number");
      // RFC 4475 §3.3.9: disagreeing Content-Lengths are a framing error.
      if (contentLength !== undefined && contentLength !== n) {
        return sipError("ERR_SIP_BAD_CONTENT_LENGTH", valueStart, "conflicting Content-Length values");
      }
      contentLength = n;
    }
    if (headers.length >= maxHeaders) return sipError("ERR_SIP_TOO_MANY_HEADERS", nameStart, "too many header lines");
    headers.push(id, nameStart, nameEnd, valueStart, valueEnd, folded);
    p += 2;
  }
  const headersEnd = p;
  const bodyStart = p + 2;
  let bodyEnd = end;
  if (contentLength !== undefined) {
    bodyEnd = bodyStart + contentLength;
    if (bodyEnd > end) {
      return sipError("ERR_SIP_BODY_TRUNCATED", end, `body has ${end - bodyStart} of ${contentLength} bytes`);
    }
  }
  const layout: MessageLayout = {
    buf,
    start: msgStart,
    startLineEnd,
    headers,
    headersEnd,
    bodyStart,
    bodyEnd,
    contentLength,
  };
  return isResponseLine(buf, msgStart) ? statusLine(layout) : requestLine(layout);
}

function isResponseLine(buf: Buffer, p: number): boolean {
  return (
    (buf[p] === 0x53 || buf[p] === 0x73) &&
    (buf[p + 1] === 0x49 || buf[p + 1] === 0x69) &&
    (buf[p + 2] === 0x50 || buf[p + 2] === 0x70) &&
    buf[p + 3] === 0x2f
  );
}

/** Length of a SIP-Version ("SIP/" 1*DIGIT "." 1*DIGIT) at p, or -1. */
function versionLength(buf: Buffer, p: number, end: number): number {
  if (!isResponseLine(buf, p)) return -1;
  let i = p + 4;
  const major = i;
  while (i < end && isDigit(buf[i])) i++;
  if (i === major || buf[i] !== 0x2e) return -1;
  const minor = ++i;
  while (i < end && isDigit(buf[i])) i++;
  return i === minor ? -1 : i - p;
}

function isSip20(buf: Buffer, p: number, len: number): boolean {
  return len === 7 && buf[p + 4] === 0x32 && buf[p + 5] === 0x2e && buf[p + 6] === 0x30;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 3261 §7.1), exactly one SP each. */
function requestLine(layout: MessageLayout): Result<SipMessage, SipError> {
  const { buf, start, startLineEnd: eol } = layout;
  let p = start;
  while (p < eol && TOKEN[buf[p] as number] === 1) p++;
  if (p === start || buf[p] !== SP) return sipError("ERR_SIP_BAD_METHOD", p, "method is not a token followed by SP");
  const method = knownMethod(buf, start, p) ?? buf.toString("latin1", start, p);
  const uriStart = ++p;
  while (p < eol && buf[p] !== SP && buf[p] !== HT) p++;
  const uriEnd = p;
  if (uriEnd === uriStart) return sipError("ERR_SIP_BAD_START_LINE", p, "empty Request-URI or extra SP");
  if (buf[p] !== SP) return sipError("ERR_SIP_BAD_START_LINE", p, "expected SP before SIP-Version");
  const versionStart = ++p;
  const vlen = versionLength(buf, versionStart, eol);
  if (vlen < 0 || versionStart + vlen !== eol) {
    return sipError("ERR_SIP_BAD_START_LINE", versionStart, "expected SIP-Version then CRLF");
  }
  if (!isSip20(buf, versionStart, vlen)) return sipError("ERR_SIP_BAD_VERSION", versionStart, "only SIP/2.0 is supported");
  return { ok: true, value: new SipRequest(layout, method, uriStart, uriEnd) };
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (RFC 3261 §7.2). */
function statusLine(layout: MessageLayout): Result<SipMessage, SipError> {
  const { buf, start, startLineEnd: eol } = layout;
  const vlen = versionLength(buf, start, eol);
  if (vlen < 0 || buf[start + vlen] !== SP) return sipError("ERR_SIP_BAD_START_LINE", start, "bad SIP-Version");
  if (!isSip20(buf, start, vlen)) return sipError("ERR_SIP_BAD_VERSION", start, "only SIP/2.0 is supported");
  const p = start + vlen + 1;
  if (!isDigit(buf[p]) || !isDigit(buf[p + 1]) || !isDigit(buf[p + 2]) || (p + 3 < eol && buf[p + 3] !== SP)) {
    return sipError("ERR_SIP_BAD_STATUS", p, "Status-Code is not three digits");
  }
  const status = ((buf[p] as number) - 0x30) * 100 + ((buf[p + 1] as number) - 0x30) * 10 + (buf[p + 2] as number) - 0x30;
  if (status < 100 || status > 699) return sipError("ERR_SIP_BAD_STATUS", p, "Status-Code out of range 100-699");
  return { ok: true, value: new SipResponse(layout, status, Math.min(p + 4, eol)) };
}

const KNOWN_METHODS = [
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "OPTIONS",
  "REGISTER",
  "PRACK",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
  "INFO",
  "REFER",
  "MESSAGE",
  "UPDATE",
].map((m) => ({ name: m, bytes: Buffer.from(m, "latin1") }));

/** Interned method name, avoiding a string allocation for the common ones. Methods are case-sensitive. */
function knownMethod(buf: Buffer, start: number, end: number): string | undefined {
  const len = end - start;
  for (const m of KNOWN_METHODS) {
    if (m.bytes.length !== len) continue;
    let i = 0;
    while (i < len && m.bytes[i] === buf[start + i]) i++;
    if (i === len) return m.name;
  }
  return undefined;
}
