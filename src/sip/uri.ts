import { HOSTNAME } from "./chars.ts";
import { NO_PARAMS, type Param, Params, scanUriParam } from "./params.ts";
import type { Result } from "./result.ts";
import { type Failure, fail, type GrammarError, portValue, skipDigits } from "./text.ts";

/** RFC 3261 §19.1 SIP/SIPS URI, fields kept as written (escapes not decoded). */
export interface SipUri {
  readonly scheme: "sip" | "sips";
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** Host as written; an IPv6 reference keeps its brackets. */
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
  readonly headers: readonly Param[];
}

/** RFC 3966 tel URI. */
export interface TelUri {
  readonly scheme: "tel";
  readonly number: string;
  readonly params: Params;
}

/** Any other absolute URI: parsed only as far as its scheme (RFC 4475 §3.3.2). */
export interface OtherUri {
  readonly scheme: string;
  readonly opaque: string;
}

export type Uri = SipUri | TelUri | OtherUri;

/** A URI host as an address: an IPv6 reference without its brackets. */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, "");
}

/** An address as a URI or Via host: an IPv6 address in brackets (RFC 3261 §25.1 IPv6reference). */
export function uriHost(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

export function isSipUri(u: Uri): u is SipUri {
  return u.scheme === "sip" || u.scheme === "sips";
}

/** Offset of the ":" ending the scheme at s[start], or -1 (RFC 3986 §3.1). */
export function schemeEnd(s: string, start = 0, end = s.length): number {
  if (start >= end || !isAlpha(s.charCodeAt(start))) return -1;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3a) return i;
    if (!(isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e)) return -1;
  }
  return -1;
}

/** Parses the URI s[start, end) (all of s by default). */
export function parseUri(s: string, start = 0, end = s.length): Result<Uri, GrammarError> {
  const colon = schemeEnd(s, start, end);
  if (colon < 0) return fail(start, "missing URI scheme");
  for (let i = colon + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x22) {
      return fail(i, "URI contains whitespace, a control character, <, > or a quote");
    }
  }
  const scheme = s.slice(start, colon).toLowerCase();
  if (scheme === "sip" || scheme === "sips") return parseSipUri(s, scheme, colon + 1, end);
  if (scheme === "tel") return parseTelUri(s, colon + 1, end);
  if (colon + 1 === end) return fail(colon + 1, "empty URI after scheme");
  return { ok: true, value: { scheme, opaque: s.slice(colon + 1, end) } };
}

function parseSipUri(s: string, scheme: "sip" | "sips", p: number, end: number): Result<SipUri, GrammarError> {
  let user: string | undefined;
  let password: string | undefined;
  // The user part may hold ';', '?' and ':' (RFC 4475 §3.1.1.2, §3.1.1.9);
  // '@' may not, so the first '@' ends the userinfo.
  const found = s.indexOf("@", p);
  const at = found < end ? found : -1;
  if (at >= 0) {
    const colon = s.indexOf(":", p);
    if (colon >= 0 && colon < at) {
      user = s.slice(p, colon);
      password = s.slice(colon + 1, at);
    } else {
      user = s.slice(p, at);
    }
    if (user.length === 0) return fail(p, "empty user part");
    p = at + 1;
  }
  const hostStart = p;
  if (p < end && s.charCodeAt(p) === 0x5b) {
    const close = s.indexOf("]", p);
    if (close < 0 || close >= end) return fail(p, "unterminated IPv6 reference");
    for (let i = p + 1; i < close; i++) {
      const c = s.charCodeAt(i);
      if (!(isHex(c) || c === 0x3a || c === 0x2e)) return fail(i, "bad IPv6 reference");
    }
    p = close + 1;
  } else {
    while (p < end && HOSTNAME[s.charCodeAt(p)] === 1) p++;
  }
  if (p === hostStart) return fail(p, "missing host");
  const host = s.slice(hostStart, p);
  let port: number | undefined;
  if (p < end && s.charCodeAt(p) === 0x3a) {
    const portStart = ++p;
    p = skipDigits(s, p, end);
    port = portValue(s, portStart, p);
    if (port < 0) return fail(portStart, "bad port: not 1-65535");
  }
  const paramsEnd = nextDelimiter(s, p, end, "?");
  const params = uriParams(s, p, paramsEnd);
  if (!(params instanceof Params)) return params;
  if (params.length > 0) p = paramsEnd;
  let headers: readonly Param[] = NO_HEADERS;
  if (p < end && s.charCodeAt(p) === 0x3f) {
    const list: Param[] = [];
    p++;
    while (p <= end) {
      const next = nextDelimiter(s, p, end, "&");
      const r = splitNameValue(s, p, next);
      if (!r.ok) return r;
      list.push(r.value);
      p = next + 1;
    }
    headers = list;
  } else if (p < end) {
    return fail(p, "unexpected character after host");
  }
  return { ok: true, value: { scheme, user, password, host, port, params, headers } };
}

function parseTelUri(s: string, p: number, end: number): Result<TelUri, GrammarError> {
  const semi = nextDelimiter(s, p, end, ";");
  const number = s.slice(p, semi);
  if (number.length === 0) return fail(p, "empty telephone number");
  const params = uriParams(s, semi, end);
  if (!(params instanceof Params)) return params;
  return { ok: true, value: { scheme: "tel", number, params } };
}

const NO_HEADERS: readonly Param[] = [];

/** The `;name[=value]` parameters that fill s[p, end) when s[p] is ';' (none otherwise). */
function uriParams(s: string, p: number, end: number): Params | Failure {
  const start = p;
  let count = 0;
  while (p < end && s.charCodeAt(p) === 0x3b) {
    const next = scanUriParam(s, p, end);
    if (typeof next !== "number") return next;
    p = next;
    count++;
  }
  return count === 0 ? NO_PARAMS : new Params(s, start, end, count, true);
}

function nextDelimiter(s: string, p: number, end: number, delimiters: string): number {
  while (p < end && !delimiters.includes(s.charAt(p))) p++;
  return p;
}

function splitNameValue(s: string, start: number, end: number): Result<Param, GrammarError> {
  if (start === end) return fail(start, "empty URI parameter");
  const eq = s.indexOf("=", start);
  if (eq < 0 || eq >= end) return { ok: true, value: { name: s.slice(start, end), value: undefined } };
  if (eq === start) return fail(start, "empty URI parameter name");
  return { ok: true, value: { name: s.slice(start, eq), value: s.slice(eq + 1, end) } };
}

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
