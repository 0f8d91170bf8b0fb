import { isDigits, isToken } from "./chars.ts";
import { SPANS, splitList } from "./list.ts";
import { METHODS } from "./methods.ts";
import type { Result } from "./result.ts";
import { fail, type GrammarError, isLws, skipLws, sliceKnown, trimEnd } from "./text.ts";

const MAX_UINT32 = 0xffffffff;

/** 1*DIGIT no larger than 2**32-1 (RFC 3261 §8.1.1.5 CSeq; RFC 4475 §3.1.2.4). */
function parseUint32(s: string, start: number, end: number): Result<number, GrammarError> {
  if (start === end) return fail(start, "expected digits");
  // Leading zeros are legal (RFC 4475 §3.1.1.1: "0009"), so bound the value, not the length.
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return fail(i, "expected digits");
    n = n * 10 + d;
    if (n > MAX_UINT32) return fail(start, "value exceeds 2**32-1");
  }
  return { ok: true, value: n };
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16). */
export function parseCSeq(s: string, start: number, end: number): Result<CSeq, GrammarError> {
  let p = skipLws(s, start, end);
  const numStart = p;
  while (p < end && !isLws(s.charCodeAt(p))) p++;
  const seq = parseUint32(s, numStart, p);
  if (!seq.ok) return seq;
  const methodStart = skipLws(s, p, end);
  if (methodStart === p) return fail(p, "expected LWS between sequence number and method");
  const method = sliceKnown(s, methodStart, trimEnd(s, methodStart, end), METHODS);
  if (!isToken(method)) return fail(methodStart, "method is not a token");
  return { ok: true, value: { seq: seq.value, method } };
}

/** Max-Forwards = 1*DIGIT (RFC 3261 §20.22). */
export function parseMaxForwards(s: string, start: number, end: number): Result<number, GrammarError> {
  start = skipLws(s, start, end);
  return parseUint32(s, start, trimEnd(s, start, end));
}

/**
 * Expires = delta-seconds. RFC 3261 §20.19 / RFC 4475 §3.1.2.4: an overlarge
 * value is read as the largest one, not rejected.
 */
export function parseDeltaSeconds(s: string, start: number, end: number): Result<number, GrammarError> {
  start = skipLws(s, start, end);
  const t = s.slice(start, trimEnd(s, start, end));
  if (!isDigits(t)) return fail(start, "expected delta-seconds");
  return { ok: true, value: Math.min(Number(t), MAX_UINT32) };
}

/** Call-ID = word [ "@" word ]: no LWS inside (RFC 3261 §20.8). */
export function parseCallId(s: string, start: number, end: number): Result<string, GrammarError> {
  start = skipLws(s, start, end);
  end = trimEnd(s, start, end);
  if (start === end) return fail(start, "empty Call-ID");
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return fail(i, "Call-ID contains whitespace or a non-ASCII byte");
  }
  return { ok: true, value: s.slice(start, end) };
}

/** Supported / Require / Proxy-Require = option-tag *(COMMA option-tag). */
export function parseOptionTags(s: string, start: number, end: number): Result<string[], GrammarError> {
  if (skipLws(s, start, end) === end) return { ok: true, value: [] };
  const count = splitList(s, start, end);
  if (typeof count !== "number") return count;
  const tags: string[] = [];
  for (let k = 0; k < count; k++) {
    const a = SPANS[2 * k] as number;
    const tag = s.slice(a, SPANS[2 * k + 1]);
    if (!isToken(tag)) return fail(a, "option-tag is not a token");
    tags.push(tag);
  }
  return { ok: true, value: tags };
}

const RFC1123 =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** SIP-date = rfc1123-date, always in GMT (RFC 3261 §20.17, RFC 4475 §3.1.2.12). */
export function checkDate(s: string, start: number, end: number): Result<string, GrammarError> {
  start = skipLws(s, start, end);
  const t = s.slice(start, trimEnd(s, start, end));
  return RFC1123.test(t) ? { ok: true, value: t } : fail(start, "Date is not an RFC 1123 date in GMT");
}
