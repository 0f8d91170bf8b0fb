import type { Result } from "./result.ts";
import { fail, type GrammarError, isLws, skipQuoted } from "./text.ts";

/** [start, end) of one element of a comma-separated header value. */
export type Span = readonly [start: number, end: number];

/**
 * Splits s[from, end), a header value, at the commas that separate values (RFC 3261 §7.3.1),
 * ignoring commas inside quoted strings and <...> URIs. Spans are trimmed of
 * LWS. An empty element (",,") is an error: RFC 4475 §3.1.2.1.
 */
export function splitList(s: string, from = 0, end = s.length): Result<Span[], GrammarError> {
  const spans: Span[] = [];
  let start = from;
  let i = from;
  while (i <= end) {
    const c = i < end ? s.charCodeAt(i) : 0x2c;
    if (c === 0x22) {
      const q = skipQuoted(s, i, end);
      if (q < 0) return fail(i, "unterminated quoted string");
      i = q;
      continue;
    }
    if (c === 0x3c) {
      const close = s.indexOf(">", i + 1);
      if (close < 0) return fail(i, "unterminated <");
      i = close + 1;
      continue;
    }
    if (c === 0x2c) {
      let a = start;
      let b = i;
      while (a < b && isLws(s.charCodeAt(a))) a++;
      while (b > a && isLws(s.charCodeAt(b - 1))) b--;
      if (a === b) return fail(a, "empty list element");
      spans.push([a, b]);
      start = i + 1;
    }
    i++;
  }
  return { ok: true, value: spans };
}
