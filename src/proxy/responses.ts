import { randomBytes } from "node:crypto";
import { findParam, HeaderId, type SipRequest, viaWithSource } from "../sip/index.ts";

/** RFC 3261 §19.3: a To tag with enough randomness to be globally unique. */
export function newTag(): string {
  return randomBytes(6).toString("hex");
}

export interface LocalResponse {
  readonly status: number;
  readonly reason: string;
  /** Extra header lines, without CRLF ("Retry-After: 30"). */
  readonly headers?: readonly string[];
  /** To tag to add when the request has none (final responses only). */
  readonly toTag?: string;
  readonly body?: { readonly contentType: string; readonly text: string };
}

/** RFC 3261 §8.2.6.2: the headers a response copies from its request, besides the Vias. */
const COPIED = [HeaderId.From, HeaderId.To, HeaderId.CallId, HeaderId.CSeq] as const;

/**
 * A response sipedge generates itself (RFC 3261 §8.2.6): Via (the top one
 * carrying received/rport, RFC 3581 §4), From, To, Call-ID and CSeq copied
 * from the request; header lines the request carries are copied byte for
 * byte. Works on a request that failed validation, as far as it parsed.
 */
export function buildResponse(req: SipRequest, r: LocalResponse, source: { address: string; port: number }): Buffer {
  let out = `SIP/2.0 ${r.status} ${r.reason}\r\n`;
  const vias = req.via();
  let first = true;
  for (let i = req.indexOf(HeaderId.Via); i >= 0; i = req.indexOf(HeaderId.Via, i + 1)) {
    if (first && vias.ok && vias.value[0] !== undefined) {
      // Rewrite only the top value; the rest of that header line stays as sent.
      const top = vias.value[0];
      const via = viaWithSource(top, source.address, top.rport !== undefined ? source.port : undefined);
      const rest = req.buf.toString("latin1", top.end, req.headerValueEnd(i));
      out += `Via: ${via}${rest}\r\n`;
    } else {
      out += `Via: ${req.headerValue(i)}\r\n`;
    }
    first = false;
  }
  for (const id of COPIED) {
    const i = req.indexOf(id);
    if (i < 0) continue;
    let value = req.headerValue(i);
    if (id === HeaderId.To && r.toTag !== undefined && r.status >= 200) {
      const to = req.to();
      if (to.ok && findParam(to.value.params, "tag") === undefined) value += `;tag=${r.toTag}`;
    }
    out += `${req.headerName(i)}: ${value}\r\n`;
  }
  if (r.headers !== undefined) for (const h of r.headers) out += `${h}\r\n`;
  if (r.body === undefined) return Buffer.from(`${out}Server: sipedge\r\nContent-Length: 0\r\n\r\n`, "latin1");
  const body = Buffer.from(r.body.text, "utf8");
  out += `Server: sipedge\r\nContent-Type: ${r.body.contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(out, "latin1"), body]);
}
