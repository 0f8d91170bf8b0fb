import { CR, HT, LF, SP } from "./chars.ts";

/** Offset of the first CRLFCRLF in buf[from, end), or -1 (RFC 3261 §7: end of headers). */
export function findHeaderEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 3 < end; i++) {
    if (buf[i + 3] === LF) {
      if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR) return i;
    } else if (buf[i + 3] !== CR) {
      // No CRLFCRLF can start at i+1, i+2 or i+3 either.
      i += 3;
    }
  }
  return -1;
}

/**
 * Offset of the CRLF that ends the line starting at p, or -1 when a bare CR
 * or LF comes first (RFC 3261 §7: lines end in CRLF, nothing else). The
 * parser's lineEnd applies the same rule to text.
 */
export function crlfAt(buf: Uint8Array, p: number): number {
  const lf = buf.indexOf(LF, p);
  if (lf < 1 || buf[lf - 1] !== CR) return -1;
  const cr = buf.indexOf(CR, p);
  return cr === lf - 1 ? cr : -1;
}

/**
 * Decimal value of a Content-Length in buf[start, end), skipping LWS and
 * folding; -1 when it is not 1*DIGIT or is absurdly long.
 */
export function contentLengthAt(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  let digits = 0;
  let seenGapAfterDigits = false;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c >= 0x30 && c <= 0x39) {
      if (seenGapAfterDigits || ++digits > 10) return -1;
      n = n * 10 + (c - 0x30);
    } else if (c === SP || c === HT || c === CR || c === LF) {
      if (digits > 0) seenGapAfterDigits = true;
    } else {
      return -1;
    }
  }
  return digits === 0 ? -1 : n;
}
