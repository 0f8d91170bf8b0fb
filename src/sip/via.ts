import { HOSTNAME, TOKEN } from "./chars.ts";
import { findParam, type Param, parseParams } from "./params.ts";
import type { Result } from "./result.ts";
import { fail, type GrammarError, skipLws } from "./text.ts";

/** One Via value (RFC 3261 §20.42), with the parameters a proxy reads lifted out. */
export interface Via {
  /** "SIP/2.0", as written without LWS. */
  readonly protocol: string;
  /** Upper-cased transport: UDP, TCP, TLS, SCTP, WS, WSS or an extension. */
  readonly transport: string;
  readonly host: string;
  readonly port: number | undefined;
  readonly params: readonly Param[];
  readonly branch: string | undefined;
  readonly received: string | undefined;
  /** RFC 3581: true when `rport` is present without a value. */
  readonly rport: number | true | undefined;
  readonly maddr: string | undefined;
  readonly ttl: number | undefined;
  /** Absolute byte range of this value in the message. */
  readonly start: number;
  readonly end: number;
}

/** RFC 3261 §8.1.1.7: branches that start with this are globally unique. */
export const MAGIC_COOKIE = "z9hG4bK";

/**
 * Parses one via-parm from s[start, end). `base` converts offsets to the
 * message's byte offsets. sent-protocol allows LWS around "/" (RFC 4475 §3.1.1.1).
 */
export function parseVia(s: string, start: number, end: number, base: number): Result<Via, GrammarError> {
  let p = start;
  const parts: string[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) {
      p = skipLws(s, p, end);
      if (s.charCodeAt(p) !== 0x2f) return fail(p, "expected '/' in sent-protocol");
      p = skipLws(s, p + 1, end);
    }
    const tokenStart = p;
    while (p < end && TOKEN[s.charCodeAt(p)] === 1) p++;
    if (p === tokenStart) return fail(p, "empty sent-protocol element");
    parts.push(s.slice(tokenStart, p));
  }
  const afterProtocol = p;
  p = skipLws(s, p, end);
  if (p === afterProtocol) return fail(p, "expected LWS before sent-by");
  const hostStart = p;
  if (s.charCodeAt(p) === 0x5b) {
    const close = s.indexOf("]", p);
    if (close < 0 || close >= end) return fail(p, "unterminated IPv6 reference");
    p = close + 1;
  } else {
    while (p < end && HOSTNAME[s.charCodeAt(p)] === 1) p++;
  }
  if (p === hostStart) return fail(p, "missing sent-by host");
  const host = s.slice(hostStart, p);
  p = skipLws(s, p, end);
  let port: number | undefined;
  if (p < end && s.charCodeAt(p) === 0x3a) {
    p = skipLws(s, p + 1, end);
    const portStart = p;
    while (p < end && s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) p++;
    port = Number(s.slice(portStart, p));
    if (p === portStart || p - portStart > 5 || port > 65535) return fail(portStart, "bad sent-by port");
  }
  const parsed = parseParams(s, p, end);
  if (!parsed.ok) return parsed;
  const params = parsed.value;
  const rportParam = findParam(params, "rport");
  let rport: number | true | undefined;
  if (rportParam !== undefined) {
    rport = rportParam.value === undefined ? true : Number(rportParam.value);
    if (rport !== true && !(Number.isInteger(rport) && rport >= 0 && rport <= 65535)) {
      return fail(start, "bad rport");
    }
  }
  const ttlValue = findParam(params, "ttl")?.value;
  const ttl = ttlValue === undefined ? undefined : Number(ttlValue);
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 0 && ttl <= 255)) return fail(start, "bad ttl");
  return {
    ok: true,
    value: {
      protocol: `${parts[0]}/${parts[1]}`,
      transport: (parts[2] as string).toUpperCase(),
      host,
      port,
      params,
      branch: findParam(params, "branch")?.value,
      received: findParam(params, "received")?.value,
      rport,
      maddr: findParam(params, "maddr")?.value,
      ttl,
      start: base + start,
      end: base + end,
    },
  };
}

