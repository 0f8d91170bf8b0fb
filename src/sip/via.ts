import { HOSTNAME, TOKEN } from "./chars.ts";
import { VIA_TRANSPORTS } from "./methods.ts";
import { NO_PARAMS, nameIs, Params, SCANNED, scanHeaderParam } from "./params.ts";
import type { Result } from "./result.ts";
import { type Failure, fail, type GrammarError, portValue, skipDigits, skipLws, sliceKnown } from "./text.ts";

/** One Via value (RFC 3261 §20.42), with the parameters a proxy reads lifted out. */
export interface Via {
  /** "SIP/2.0", as written without LWS. */
  readonly protocol: string;
  /** Upper-cased transport: UDP, TCP, TLS, SCTP, WS, WSS or an extension. */
  readonly transport: string;
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
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
  // sent-protocol: three tokens separated by "/" with optional LWS around it.
  const name = token(s, start, end);
  let p = slash(s, name, end);
  if (p < 0) return fail(name, "expected '/' in sent-protocol");
  const versionStart = p;
  const version = token(s, p, end);
  p = slash(s, version, end);
  if (p < 0 || version === versionStart || name === start) return fail(version, "malformed sent-protocol");
  const transportStart = p;
  const transportEnd = token(s, p, end);
  if (transportEnd === transportStart) return fail(p, "empty transport");
  p = skipLws(s, transportEnd, end);
  if (p === transportEnd) return fail(p, "expected LWS before sent-by");
  const hostStart = p;
  if (p < end && s.charCodeAt(p) === 0x5b) {
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
    const portStart = skipLws(s, p + 1, end);
    p = skipDigits(s, portStart, end);
    port = portValue(s, portStart, p);
    if (port < 0) return fail(portStart, "bad sent-by port: not 1-65535");
  }
  const params = liftParams(s, skipLws(s, p, end), end, start);
  if (!(params instanceof Params)) return params;
  const protocol =
    version - start === 7 && s.startsWith("SIP/2.0", start)
      ? "SIP/2.0"
      : `${s.slice(start, name)}/${s.slice(versionStart, version)}`;
  const transport = sliceKnown(s, transportStart, transportEnd, VIA_TRANSPORTS);
  return {
    ok: true,
    value: {
      protocol,
      transport: isUpper(transport) ? transport : transport.toUpperCase(),
      host,
      port,
      params,
      branch: lifted.branch,
      received: lifted.received,
      rport: lifted.rport,
      maddr: lifted.maddr,
      ttl: lifted.ttl,
      start: base + start,
      end: base + end,
    },
  };
}

/** The parameters a proxy reads, as liftParams last found them (one per thread, read straight after). */
const lifted: {
  branch: string | undefined;
  received: string | undefined;
  rport: number | true | undefined;
  maddr: string | undefined;
  ttl: number | undefined;
} = { branch: undefined, received: undefined, rport: undefined, maddr: undefined, ttl: undefined };

/**
 * One pass over a Via's parameters, s[p, end): checks them all and lifts
 * the ones a proxy reads into `lifted`. `start` (the value's) is where a
 * bad rport or ttl is reported.
 */
function liftParams(s: string, p: number, end: number, start: number): Params | Failure {
  const paramsStart = p;
  let count = 0;
  lifted.branch = lifted.received = lifted.maddr = undefined;
  lifted.rport = lifted.ttl = undefined;
  for (; p < end; count++) {
    const next = scanHeaderParam(s, p, end);
    if (typeof next !== "number") return next;
    p = next;
    const value = SCANNED[2] as number;
    const valueEnd = SCANNED[3] as number;
    if (nameIs(s, "branch")) lifted.branch = scannedValue(s);
    else if (nameIs(s, "received")) lifted.received = scannedValue(s);
    else if (nameIs(s, "maddr")) lifted.maddr = scannedValue(s);
    else if (nameIs(s, "rport")) {
      // RFC 3581 §4: rport is empty in a request, the source port (never 0) once filled in.
      lifted.rport = value < 0 ? true : portValue(s, value, valueEnd);
      if (lifted.rport === -1) return fail(start, "bad rport: not 1-65535");
    } else if (nameIs(s, "ttl")) {
      const ttl = value < 0 ? Number.NaN : Number(s.slice(value, valueEnd));
      if (!(Number.isInteger(ttl) && ttl >= 0 && ttl <= 255)) return fail(start, "bad ttl");
      lifted.ttl = ttl;
    }
  }
  return count === 0 ? NO_PARAMS : new Params(s, paramsStart, end, count, false);
}

function scannedValue(s: string): string | undefined {
  return (SCANNED[2] as number) < 0 ? undefined : s.slice(SCANNED[2], SCANNED[3]);
}

function token(s: string, p: number, end: number): number {
  while (p < end && TOKEN[s.charCodeAt(p)] === 1) p++;
  return p;
}

/** Past `SWS "/" SWS` at p, or -1. */
function slash(s: string, p: number, end: number): number {
  p = skipLws(s, p, end);
  return p < end && s.charCodeAt(p) === 0x2f ? skipLws(s, p + 1, end) : -1;
}

function isUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return false;
  }
  return true;
}
