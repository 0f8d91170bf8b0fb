import { uriHost } from "./uri.ts";

/** Who asks, from where, and whom: the parts of an OPTIONS request that differ between its senders. */
export interface OptionsProbe {
  /** The Request-URI and To URI (RFC 3261 §11.1: the peer asked about). */
  readonly uri: string;
  /** Via transport, as a Via writes it (UDP, TCP, TLS…). */
  readonly transport: string;
  /** The address and port the answer comes back to. */
  readonly address: string;
  readonly port: number;
  /** Unique per probe: the Call-ID, the From tag and the branch carry it, so an answer names its probe. */
  readonly id: string;
  /** The From user: who is asking. */
  readonly user: string;
}

/**
 * An OPTIONS request asking a peer whether it is there (RFC 3261 §11): what
 * the health prober sends a backend and the systemd watchdog sends sipedge
 * itself. rport (RFC 3581) so that the answer comes back to the port it left from.
 */
export function optionsRequest(p: OptionsProbe): string {
  const host = uriHost(p.address);
  return (
    `OPTIONS ${p.uri} SIP/2.0\r\nVia: SIP/2.0/${p.transport} ${host}:${p.port};branch=z9hG4bK-${p.id};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:${p.user}@${host}>;tag=${p.id}\r\nTo: <${p.uri}>\r\n` +
    `Call-ID: ${p.id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}
