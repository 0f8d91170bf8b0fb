/** Hand-written requests for tests that play a UA over Node's UDP, TCP or TLS sockets. */

import { HeaderId, type SipMessage } from "../../src/sip/index.ts";
import { unwrap } from "./sip.ts";

const SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

export interface RequestOptions {
  readonly method: string;
  readonly uri: string;
  readonly transport: "UDP" | "TCP" | "TLS";
  readonly localPort: number;
  readonly callId: string;
  readonly cseq: number;
  readonly branch: string;
  readonly to?: string;
  readonly from?: string;
  readonly routes?: readonly string[];
  readonly sdp?: boolean;
  /** A text/plain body (MESSAGE); `sdp` wins when both are given. */
  readonly text?: string;
  readonly extra?: readonly string[];
}

export function request(o: RequestOptions): string {
  const body = o.sdp === true ? SDP : (o.text ?? "");
  const lines = [
    `${o.method} ${o.uri} SIP/2.0`,
    `Via: SIP/2.0/${o.transport} 127.0.0.1:${o.localPort};branch=z9hG4bK-${o.branch};rport`,
    ...(o.routes ?? []).map((r) => `Route: ${r}`),
    "Max-Forwards: 70",
    `From: ${o.from ?? "<sip:alice@127.0.0.1>"};tag=a-${o.callId}`,
    `To: ${o.to ?? "<sip:service@127.0.0.1>"}`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq} ${o.method}`,
    `Contact: <sip:alice@127.0.0.1:${o.localPort};transport=${o.transport.toLowerCase()}>`,
    ...(o.extra ?? []),
    ...(body === "" ? [] : [`Content-Type: ${o.sdp === true ? "application/sdp" : "text/plain"}`]),
    `Content-Length: ${body.length}`,
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

export function invite(transport: "TCP" | "TLS", localPort: number, callId: string): string {
  return request({
    method: "INVITE",
    uri: "sip:service@127.0.0.1",
    transport,
    localPort,
    callId,
    cseq: 1,
    branch: callId,
    sdp: true,
  });
}

/** What a UAC keeps from a 2xx to send in-dialog requests (RFC 3261 §12.1.2). */
export interface Dialog {
  readonly remoteTarget: string;
  /** Route set: the Record-Route values reversed, as written. */
  readonly routes: readonly string[];
  readonly to: string;
}

export function dialogFrom(ok: SipMessage): Dialog {
  const rr = unwrap(ok.addresses(HeaderId.RecordRoute));
  const contacts = unwrap(ok.contacts());
  return {
    remoteTarget: contacts?.star === false ? (contacts.list[0]?.uri ?? "") : "",
    routes: [...rr].reverse().map((r) => ok.buf.toString("latin1", r.start, r.end)),
    to: ok.values("to")[0] ?? "",
  };
}

/** An in-dialog request following the dialog's route set. */
export function inDialog(
  d: Dialog,
  method: string,
  o: { transport: "TCP" | "TLS"; localPort: number; callId: string; cseq: number; sdp?: boolean },
): string {
  return request({
    ...o,
    method,
    uri: d.remoteTarget,
    branch: `${method}-${o.cseq}-${o.callId}`,
    to: d.to,
    routes: d.routes,
  });
}

/** A response a UA sends back for a request it received. */
export function respond(req: SipMessage, status: number, reason: string, extra: readonly string[] = []): string {
  const copy = (name: string) => req.values(name).map((v) => `${name}: ${v}`);
  return [
    `SIP/2.0 ${status} ${reason}`,
    ...copy("via"),
    ...copy("from"),
    ...copy("to"),
    ...copy("call-id"),
    ...copy("cseq"),
    ...extra,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

/** A registrar's 2xx lists the bindings it granted (RFC 3261 §10.3 step 8): here, every Contact it was sent. */
export function granted(register: SipMessage): string[] {
  return register.values("contact").map((c) => `Contact: ${c}`);
}

/** ACK (for a non-2xx final) or CANCEL within the INVITE transaction `invite()` started (RFC 3261 §9.1, §17.1.1.3). */
export function sameTransaction(
  method: "ACK" | "CANCEL",
  o: { transport: "TCP" | "TLS"; localPort: number; callId: string },
  to?: string,
): string {
  return request({
    ...o,
    method,
    uri: "sip:service@127.0.0.1",
    cseq: 1,
    branch: o.callId,
    ...(to === undefined ? {} : { to }),
  });
}
