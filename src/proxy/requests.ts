import { HeaderId, type SipRequest } from "../sip/index.ts";

/**
 * A request sipedge sends on its own within a transaction it forwarded: the
 * hop-by-hop ACK for a non-2xx final response (RFC 3261 §17.1.1.3) and
 * CANCEL (§9.1). Both copy the forwarded request's Request-URI, Call-ID,
 * From, CSeq number and Route set, and carry only sipedge's own Via.
 */
export function buildInTransaction(
  req: SipRequest,
  method: "ACK" | "CANCEL",
  requestUri: string,
  via: string,
  routes: readonly string[],
  to: string,
): Buffer {
  const cseq = req.cseq();
  const seq = cseq.ok ? cseq.value.seq : 0;
  let out = `${method} ${requestUri} SIP/2.0\r\nVia: ${via}\r\nMax-Forwards: 70\r\n`;
  for (const r of routes) out += `Route: ${r}\r\n`;
  const from = req.indexOf(HeaderId.From);
  const callId = req.indexOf(HeaderId.CallId);
  out += `From: ${req.headerValue(from)}\r\nTo: ${to}\r\nCall-ID: ${req.headerValue(callId)}\r\n`;
  out += `CSeq: ${seq} ${method}\r\nContent-Length: 0\r\n\r\n`;
  return Buffer.from(out, "latin1");
}
