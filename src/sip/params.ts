import { TOKEN } from "./chars.ts";
import type { Result } from "./result.ts";
import { fail, type GrammarError, skipLws, skipQuoted } from "./text.ts";

/** One `;name[=value]` parameter; a quoted value keeps its quotes. */
export interface Param {
  readonly name: string;
  readonly value: string | undefined;
}

/** Case-insensitive lookup (RFC 3261 §7.3.1: parameter names are). */
export function findParam(params: readonly Param[], name: string): Param | undefined {
  for (const p of params) {
    if (p.name.length === name.length && p.name.toLowerCase() === name) return p;
  }
  return undefined;
}

export function formatParams(params: readonly Param[]): string {
  let out = "";
  for (const p of params) out += p.value === undefined ? `;${p.name}` : `;${p.name}=${p.value}`;
  return out;
}

/**
 * Parses `*( SEMI generic-param )` from s[p, end) (RFC 3261 §25.1):
 * generic-param = token [ EQUAL gen-value ], gen-value = token / host /
 * quoted-string, with LWS allowed around ";" and "=".
 */
export function parseParams(s: string, p: number, end: number): Result<Param[], GrammarError> {
  const params: Param[] = [];
  p = skipLws(s, p, end);
  while (p < end) {
    if (s.charCodeAt(p) !== 0x3b) return fail(p, "expected ';'");
    p = skipLws(s, p + 1, end);
    const nameStart = p;
    while (p < end && TOKEN[s.charCodeAt(p)] === 1) p++;
    if (p === nameStart) return fail(p, "empty parameter name");
    const name = s.slice(nameStart, p);
    p = skipLws(s, p, end);
    let value: string | undefined;
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
      value = s.slice(valueStart, p);
      p = skipLws(s, p, end);
    }
    params.push({ name, value });
  }
  return { ok: true, value: params };
}

/**
 * gen-value is token / host / quoted-string, but deployed stacks put more in
 * it (Asterisk: base64 '=' in branch; SER: `received=ip:port`). Like
 * Kamailio, accept any visible char that cannot end or delimit a parameter.
 */
function isGenValueChar(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== 0x3b && c !== 0x2c && c !== 0x22 && c !== 0x3c && c !== 0x3e;
}
