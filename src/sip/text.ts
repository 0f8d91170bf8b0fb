/**
 * Scanning helpers over a decoded header value. Values are latin1 strings
 * (one char per byte, so offsets match the buffer) in which a folded line
 * break has already been blanked to spaces (RFC 3261 §7.3.1: folding is LWS).
 */

import type { SipErrorCode } from "./errors.ts";

/** A grammar failure at a char offset of the value being decoded. */
export interface GrammarError {
  readonly at: number;
  readonly detail: string;
  /** A code more specific than the one for a bad value of the header. */
  readonly code?: SipErrorCode;
}

/** A grammar failure as the failed half of a Result. */
export type Failure = { ok: false; error: GrammarError };

export function fail(at: number, detail: string, code?: SipErrorCode): Failure {
  return { ok: false, error: code === undefined ? { at, detail } : { at, detail, code } };
}

/**
 * s[a, b) as the string of `known` it spells, when it spells one, else a
 * slice: methods and transports recur in every message, and a slice of a
 * few chars is a new string each time.
 */
export function sliceKnown(s: string, a: number, b: number, known: readonly string[]): string {
  const n = b - a;
  for (let i = 0; i < known.length; i++) {
    const k = known[i] as string;
    if (k.length === n && s.startsWith(k, a)) return k;
  }
  return s.slice(a, b);
}

export function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

export function skipLws(s: string, p: number, end: number): number {
  while (p < end && isLws(s.charCodeAt(p))) p++;
  return p;
}

export function trimEnd(s: string, start: number, end: number): number {
  while (end > start && isLws(s.charCodeAt(end - 1))) end--;
  return end;
}

/**
 * Index of the first `c` in s[from, end), or -1: a search that stops at the
 * end of the value, never reading on into the next header.
 */
export function indexIn(s: string, c: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (s.charCodeAt(i) === c) return i;
  return -1;
}

/** Index past the decimal digits at s[p]. */
export function skipDigits(s: string, p: number, end: number): number {
  while (p < end && s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) p++;
  return p;
}

/**
 * The port s[start, end) names, or -1. RFC 3261 §25.1 port = 1*DIGIT; a
 * socket port is 1-65535 (RFC 768 and RFC 9293 reserve 0: nothing can be
 * sent to it), so 0 and anything wider than 16 bits are errors.
 */
export function portValue(s: string, start: number, end: number): number {
  if (start === end || end - start > 5) return -1;
  let port = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    port = port * 10 + d;
  }
  return port >= 1 && port <= 65535 ? port : -1;
}

/**
 * Given s[p] === '"', returns the index just past the closing quote, or -1
 * when the quoted string is not terminated (RFC 3261 §25.1 quoted-pair).
 */
export function skipQuoted(s: string, p: number, end: number): number {
  for (let i = p + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return -1;
}

/** Removes the quotes and quoted-pair backslashes of a quoted-string. */
export function unquote(v: string): string {
  if (v.length < 2 || v.charCodeAt(0) !== 0x22) return v;
  return v.slice(1, -1).replace(/\\(.)/gs, "$1");
}

/**
 * `s` as a string of its own. V8 makes a slice of 13 chars or more a view
 * of the string it was cut from, and a concatenation a tree of its parts:
 * a key or value kept while a transaction lingers (32 s) would keep its
 * whole message text alive, and a key built from parts a tree of them
 * (bench:call-path's heap snapshot: 35 concatenated strings and a message
 * text kept a call). Prefixing makes a tree that slicing flattens: one copy
 * of the chars, which the slice views. 0.06 µs; Buffer's round trip, 0.18.
 */
export function detached(s: string): string {
  return s.length < 13 ? s : ` ${s}`.slice(1);
}
