/**
 * Scanning helpers over a decoded header value. Values are latin1 strings
 * (one char per byte, so offsets match the buffer) in which a folded line
 * break has already been blanked to spaces (RFC 3261 §7.3.1: folding is LWS).
 */

/** A grammar failure at a char offset of the value being decoded. */
export interface GrammarError {
  readonly at: number;
  readonly detail: string;
}

export function fail(at: number, detail: string): { ok: false; error: GrammarError } {
  return { ok: false, error: { at, detail } };
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
