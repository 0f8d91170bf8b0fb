/** Hand-written requests for tests that play a UA over Node's TCP/TLS clients. */

export function invite(transport: "TCP" | "TLS", localPort: number, callId: string): string {
  const sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
  return (
    `INVITE sip:service@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:${localPort};branch=z9hG4bK-${callId};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a-${callId}\r\nTo: <sip:service@127.0.0.1>\r\nCall-ID: ${callId}\r\n` +
    `CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:${localPort};transport=${transport.toLowerCase()}>\r\n` +
    `Content-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`
  );
}

/** ACK or BYE within the dialog a 200 OK set up, routed by its Record-Route (RFC 3261 §12.2.1.1). */
export function inDialog(
  method: "ACK" | "BYE",
  ok: { value: string }[],
  contact: string,
  toHeader: string,
  callId: string,
  transport: string,
  localPort: number,
  cseq: number,
) {
  const routes = ok.map((r) => `Route: ${r.value}\r\n`).join("");
  return (
    `${method} ${contact} SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:${localPort};branch=z9hG4bK-${method}-${callId}\r\n${routes}` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a-${callId}\r\nTo: ${toHeader}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\nContent-Length: 0\r\n\r\n`
  );
}
