import { TOKEN } from "./chars.ts";
import { type Failure, fail, skipLws, skipQuoted } from "./text.ts";

/** One `;name[=value]` parameter; a quoted value keeps its quotes. */
export interface Param {
  readonly name: string;
  readonly value: string | undefined;
}

/**
 * Where the parameter a scan last passed lies: name [0, 1), value [2, 3)
 * (-1 when it has none). One per thread, read straight after the scan that
 * filled it.
 */
export const SCANNED = new Int32Array(4);

/**
 * The parameters of one header value or URI: checked when the value is
 * parsed, decoded only when asked for. A proxy reads a few of them (branch,
 * tag, lr, expires) out of the many a message carries; decoding every one
 * into objects was the codec's largest allocation (bench:call-path, 7.6 kB
 * of the 62 kB a call allocated). Holds the text it was parsed from.
 */
export class Params implements Iterable<Param> {
  readonly length: number;
  readonly #s: string;
  readonly #start: number;
  readonly #end: number;
  readonly #uri: boolean;

  /** s[start, end) holds `length` parameters that passed scanHeaderParam (or scanUriParam, when uri). */
  constructor(s: string, start: number, end: number, length: number, uri: boolean) {
    this.#s = s;
    this.#start = start;
    this.#end = end;
    this.length = length;
    this.#uri = uri;
  }

  /** The first parameter of this name, compared case-insensitively (RFC 3261 §7.3.1); `name` in lower case. */
  find(name: string): Param | undefined {
    for (let p = this.#start; p < this.#end; ) {
      p = this.#next(p);
      if (nameIs(this.#s, name)) return this.#scanned();
    }
    return undefined;
  }

  toArray(): Param[] {
    const out: Param[] = [];
    for (let p = this.#start; p < this.#end; ) {
      p = this.#next(p);
      out.push(this.#scanned());
    }
    return out;
  }

  [Symbol.iterator](): Iterator<Param> {
    return this.toArray()[Symbol.iterator]();
  }

  /**
   * The parameters as `;name[=value]` text, LWS dropped, without any named
   * `drop` and with any named `set` given `value` (names in lower case): how
   * a Via gets its received and rport (RFC 3261 §18.2.1, RFC 3581 §4).
   */
  rewritten(drop: string, set?: string, value = ""): string {
    const s = this.#s;
    let out = "";
    for (let p = this.#start; p < this.#end; ) {
      p = this.#next(p);
      if (nameIs(s, drop)) continue;
      out += `;${s.slice(SCANNED[0], SCANNED[1])}`;
      if (set !== undefined && nameIs(s, set)) out += `=${value}`;
      else if ((SCANNED[2] as number) >= 0) out += `=${s.slice(SCANNED[2], SCANNED[3])}`;
    }
    return out;
  }

  #next(p: number): number {
    // Checked when parsed: the scan cannot fail here.
    return (this.#uri ? scanUriParam(this.#s, p, this.#end) : scanHeaderParam(this.#s, p, this.#end)) as number;
  }

  #scanned(): Param {
    const s = this.#s;
    return {
      name: s.slice(SCANNED[0], SCANNED[1]),
      value: (SCANNED[2] as number) < 0 ? undefined : s.slice(SCANNED[2], SCANNED[3]),
    };
  }
}

export const NO_PARAMS = new Params("", 0, 0, 0, false);

/** Case-insensitive lookup (RFC 3261 §7.3.1: parameter names are); `name` in lower case. */
export function findParam(params: Params, name: string): Param | undefined {
  return params.find(name);
}

/** Whether the name SCANNED holds, in s, is `lower` in any case. */
export function nameIs(s: string, lower: string): boolean {
  const start = SCANNED[0] as number;
  if ((SCANNED[1] as number) - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(start + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Parses `*( SEMI generic-param )` from s[p, end) (RFC 3261 §25.1):
 * generic-param = token [ EQUAL gen-value ], gen-value = token / host /
 * quoted-string, with LWS allowed around ";" and "=".
 */
export function parseParams(s: string, p: number, end: number): Params | Failure {
  const start = skipLws(s, p, end);
  let count = 0;
  for (p = start; p < end; count++) {
    const next = scanHeaderParam(s, p, end);
    if (typeof next !== "number") return next;
    p = next;
  }
  return count === 0 ? NO_PARAMS : new Params(s, start, end, count, false);
}

/**
 * One `SEMI generic-param` at s[p] (LWS before it already skipped): fills
 * SCANNED and returns where the next one starts (trailing LWS skipped).
 */
export function scanHeaderParam(s: string, p: number, end: number): number | Failure {
  if (s.charCodeAt(p) !== 0x3b) return fail(p, "expected ';'");
  p = skipLws(s, p + 1, end);
  const nameStart = p;
  while (p < end && TOKEN[s.charCodeAt(p)] === 1) p++;
  if (p === nameStart) return fail(p, "empty parameter name");
  SCANNED[0] = nameStart;
  SCANNED[1] = p;
  SCANNED[2] = -1;
  p = skipLws(s, p, end);
  if (p < end && s.charCodeAt(p) === 0x3d) {
    p = skipLws(s, p + 1, end);
    const valueStart = p;
    if (p < end && s.charCodeAt(p) === 0x22) {
      p = skipQuoted(s, p, end);
      if (p < 0) return fail(valueStart, "unterminated quoted parameter value");
    } else {
      while (p < end && isGenValueChar(s.charCodeAt(p))) p++;
    }
    if (p === valueStart) return fail(p, "empty parameter value");
    SCANNED[2] = valueStart;
    SCANNED[3] = p;
    p = skipLws(s, p, end);
  }
  return p;
}

/**
 * One URI parameter `;name[=value]` at s[p] (RFC 3261 §19.1.1; s[p] is the
 * ';'), running to the next ';' or `end`: fills SCANNED and returns where the
 * next one starts.
 */
export function scanUriParam(s: string, p: number, end: number): number | Failure {
  const start = p + 1;
  let next = start;
  while (next < end && s.charCodeAt(next) !== 0x3b) next++;
  if (start === next) return fail(start, "empty URI parameter");
  let eq = start;
  while (eq < next && s.charCodeAt(eq) !== 0x3d) eq++;
  if (eq === start) return fail(start, "empty URI parameter name");
  SCANNED[0] = start;
  SCANNED[1] = eq;
  SCANNED[2] = eq < next ? eq + 1 : -1;
  SCANNED[3] = next;
  return next;
}

/**
 * gen-value is token / host / quoted-string, but deployed stacks put more in
 * it (Asterisk: base64 '=' in branch; SER: `received=ip:port`). Like
 * Kamailio, accept any visible char that cannot end or delimit a parameter.
 */
function isGenValueChar(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== 0x3b && c !== 0x2c && c !== 0x22 && c !== 0x3c && c !== 0x3e;
}
