import { type Failure, fail, indexIn, isLws, skipQuoted } from "./text.ts";

/**
 * Most values one header line may carry. Deployed stacks put a handful on a
 * line (a few Vias or Routes, a dozen option tags); the cap bounds the work
 * and memory one line can cost before anything of it is judged, and holds for
 * every list header, including those with no cap per message (Supported,
 * Require, Proxy-Require).
 */
export const MAX_VALUES_PER_HEADER = 32;

/**
 * Most Via, Route, Record-Route, Path or Contact values (each kind counted on
 * its own) in one message. Every proxy adds one Via (RFC 3261 §16.6 step 8)
 * and at most one Record-Route or Path value per hop, and a request a UA
 * starts with the recommended Max-Forwards of 70 (§8.1.1.6) is refused after
 * 70 hops (483, §16.3 step 3): no routed request needs more values than that.
 * A REGISTER binds a few Contacts. Each value is decoded, and a request's
 * Vias are copied into any answer to it (§8.2.6.2), so the cap bounds what
 * one message can make a worker do.
 */
export const MAX_VALUES_PER_MESSAGE = 70;

/**
 * Where splitList leaves the spans it found: element k is s[SPANS[2k],
 * SPANS[2k + 1]). One per thread, overwritten by the next split: read it
 * before splitting again. (Arrays of pairs, one a header line, were a
 * twentieth of what a call allocated: bench:call-path.)
 */
export const SPANS = new Int32Array(2 * MAX_VALUES_PER_HEADER);

/**
 * Splits s[from, end), a header value, at the commas that separate values (RFC 3261 §7.3.1),
 * ignoring commas inside quoted strings and <...> URIs, into SPANS; returns
 * how many. Spans are trimmed of LWS. An empty element (",,") is an error:
 * RFC 4475 §3.1.2.1. Nothing at or past `end` is read. More than `max`
 * elements (at most MAX_VALUES_PER_HEADER) fail with ERR_SIP_TOO_MANY_VALUES,
 * as soon as the one too many is found.
 */
export function splitList(s: string, from = 0, end = s.length, max = MAX_VALUES_PER_HEADER): number | Failure {
  max = Math.min(max, MAX_VALUES_PER_HEADER);
  let count = 0;
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
      const close = indexIn(s, 0x3e, i + 1, end);
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
      if (count === max) return fail(a, `more than ${max} values`, "ERR_SIP_TOO_MANY_VALUES");
      SPANS[2 * count] = a;
      SPANS[2 * count + 1] = b;
      count++;
      start = i + 1;
    }
    i++;
  }
  return count;
}
