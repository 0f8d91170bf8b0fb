import { TOKEN } from "./chars.ts";
import { Params, parseParams } from "./params.ts";
import type { Result } from "./result.ts";
import { fail, type GrammarError, indexIn, isLws, skipLws, skipQuoted, trimEnd } from "./text.ts";
import { schemeEnd } from "./uri.ts";

/**
 * A From/To/Contact/Route/Record-Route/Path value: `name-addr` or
 * `addr-spec`, followed by header parameters (RFC 3261 §20.10, §25.1).
 */
export interface Address {
  /** Display name as written (a quoted one keeps its quotes), if any. */
  readonly displayName: string | undefined;
  /** The URI text, without angle brackets. Parse it with parseUri when needed. */
  readonly uri: string;
  /** Whether the URI was written inside <...> (name-addr form). */
  readonly bracketed: boolean;
  readonly params: Params;
}

/**
 * Parses one address from s[start, end). A top-level comma is an error
 * here, so a whole single-valued header (From, To) can be passed as is;
 * list headers are split first.
 */
export function parseAddress(s: string, start: number, end: number): Result<Address, GrammarError> {
  const p = skipLws(s, start, end);
  end = trimEnd(s, p, end);
  if (p === end) return fail(p, "empty address");
  let displayName: string | undefined;
  let open = -1;
  if (s.charCodeAt(p) === 0x22) {
    const q = skipQuoted(s, p, end);
    if (q < 0) return fail(p, "unterminated quoted display name");
    displayName = s.slice(p, q);
    open = skipLws(s, q, end);
    if (open >= end || s.charCodeAt(open) !== 0x3c) return fail(open, "expected < after display name");
  } else {
    const lt = indexIn(s, 0x3c, p, end);
    if (lt >= 0) {
      // RFC 4475 §3.1.1.6: no LWS is needed between a token display name and '<'.
      for (let i = p; i < lt; i++) {
        const c = s.charCodeAt(i);
        if (TOKEN[c] !== 1 && !isLws(c)) return fail(i, "display name must be tokens or a quoted string");
      }
      const name = s.slice(p, trimEnd(s, p, lt));
      displayName = name.length > 0 ? name : undefined;
      open = lt;
    }
  }
  if (open >= 0) {
    const close = indexIn(s, 0x3e, open + 1, end);
    if (close < 0) return fail(open, "unterminated <");
    const uri = s.slice(open + 1, close);
    const bad = checkUriShape(uri);
    if (bad >= 0) return fail(open + 1 + bad, "malformed URI");
    const params = parseParams(s, close + 1, end);
    if (!(params instanceof Params)) return params;
    return { ok: true, value: { displayName, uri, bracketed: true, params } };
  }
  // addr-spec: the first ';' starts header parameters, so a URI with
  // parameters, headers or commas must be bracketed (RFC 3261 §20.10).
  let uriEnd = p;
  while (uriEnd < end) {
    const c = s.charCodeAt(uriEnd);
    if (c === 0x3b || c === 0x2c || isLws(c)) break;
    uriEnd++;
  }
  const uri = s.slice(p, uriEnd);
  const bad = checkUriShape(uri);
  if (bad >= 0) return fail(p + bad, "malformed URI");
  const q = uri.indexOf("?");
  if (q >= 0) return fail(p + q, "a URI with headers must be enclosed in <>");
  const params = parseParams(s, uriEnd, end);
  if (!(params instanceof Params)) return params;
  return { ok: true, value: { displayName: undefined, uri, bracketed: false, params } };
}

/** -1 when s looks like `scheme:...` with no LWS or brackets, else the bad offset. */
function checkUriShape(s: string): number {
  const colon = schemeEnd(s);
  if (colon < 0 || colon + 1 >= s.length) return 0;
  for (let i = colon + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x3c || c === 0x3e || c === 0x22) return i;
  }
  return -1;
}
