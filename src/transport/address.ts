/**
 * Peer addresses as sockets report them. A dual-stack socket shows an IPv4
 * peer as ::ffff:a.b.c.d: one peer, so one spelling wherever addresses are
 * compared, counted or looked up (connection limits, trunks, members).
 */
export function unmapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * 127.0.0.0/8 or ::1 as a socket reports a peer: the kernel never accepts
 * these from a network (martians), so they cannot be forged from outside.
 * A string test, cheap enough for every datagram.
 */
export function isLoopbackPeer(address: string): boolean {
  const a = unmapped(address);
  return a.startsWith("127.") || a === "::1";
}
