/** Byte classes from the RFC 3261 §25.1 ABNF, as lookup tables. */

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HT = 0x09;
export const COLON = 0x3a;

const TOKEN_EXTRA = "-.!%*_+`'~";

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table((c) => isAlnum(c) || TOKEN_EXTRA.includes(String.fromCharCode(c)));

/** Characters of a hostname or IPv4 address (RFC 3261 §25.1 hostport). */
export const HOSTNAME = table((c) => isAlnum(c) || c === 0x2d || c === 0x2e);

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN[s.charCodeAt(i)] !== 1) return false;
  return true;
}

export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

export function isWs(c: number): boolean {
  return c === SP || c === HT;
}

/** ASCII lower-casing of one byte, for case-insensitive header names. */
export function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}
