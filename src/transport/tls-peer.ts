import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

// What a server-side TLS socket tells of its peer, asked the way that keeps least per connection.

/**
 * The TCP socket a server's TLS socket runs over (node:tls keeps it as `_parent`; a TCP socket
 * has none, and is its own). Were node to drop it, a handshake would only go untimed (the TCP
 * socket's close still ends it), and a connection's peer address be asked of the TLS socket.
 */
export function tcpSocketOf(s: Socket): Socket {
  return (s as { _parent?: Socket | null })._parent ?? s;
}

/** A peer without a verified certificate's names: one array for all of them, not an empty one each. */
export const NO_NAMES: readonly string[] = Object.freeze([]);

/** A verified TLS peer's certificate names: subject CN and SAN DNS entries, lower case. */
export function certificateNames(socket: TLSSocket): readonly string[] {
  if (!socket.authorized) return NO_NAMES;
  const cert = socket.getPeerCertificate();
  const cn = cert.subject?.CN;
  const names = (Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]).map((n) => n.toLowerCase());
  for (const entry of (cert.subjectaltname ?? "").split(", ")) {
    if (entry.startsWith("DNS:")) names.push(entry.slice(4).toLowerCase());
  }
  return names;
}
