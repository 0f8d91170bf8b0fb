import { isIPv4, isIPv6 } from "node:net";

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

/**
 * An IP address as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d, RFC
 * 4291 §2.5.5.2), whatever its spelling ("::", an embedded IPv4 tail, any
 * case, a zone); undefined for what is no IP address. The one reader of
 * address text: flow tokens, STUN answers and the /64 a connection limit
 * counts by all read addresses through it.
 */
export function ipBytes(address: string): Buffer | undefined {
  const out = Buffer.alloc(16);
  if (isIPv4(address)) {
    out.writeUInt16BE(0xffff, 10);
    writeIPv4(out, 12, address);
    return out;
  }
  if (!isIPv6(address)) return undefined;
  const zone = address.indexOf("%");
  const text = zone < 0 ? address : address.slice(0, zone);
  const gap = text.indexOf("::");
  const front = groups(gap < 0 ? text : text.slice(0, gap));
  const back = gap < 0 ? [] : groups(text.slice(gap + 2));
  let at = 0;
  for (const g of front) at = writeGroup(out, at, g);
  at = 16 - back.reduce((n, g) => n + (g.includes(".") ? 4 : 2), 0);
  for (const g of back) at = writeGroup(out, at, g);
  return out;
}

/** The text of ipBytes' 16 bytes: dotted IPv4 when mapped, else eight hex groups. */
export function ipText(bytes: Uint8Array): string {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
  if (view.readUInt32BE(0) === 0 && view.readUInt32BE(4) === 0 && view.readUInt32BE(8) === 0xffff) {
    return `${view[12]}.${view[13]}.${view[14]}.${view[15]}`;
  }
  const out: string[] = [];
  for (let i = 0; i < 16; i += 2) out.push(view.readUInt16BE(i).toString(16));
  return out.join(":");
}

function groups(text: string): string[] {
  return text === "" ? [] : text.split(":");
}

/** Writes one IPv6 group, or an embedded dotted IPv4 tail, at `at`; returns where the next goes. */
function writeGroup(out: Buffer, at: number, group: string): number {
  if (!group.includes(".")) {
    out.writeUInt16BE(Number.parseInt(group, 16), at);
    return at + 2;
  }
  writeIPv4(out, at, group);
  return at + 4;
}

function writeIPv4(out: Buffer, at: number, dotted: string): void {
  const parts = dotted.split(".");
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

/** "127.0.0.1:5061", "[2001:db8::1]:5061": how an operator names a listener. */
export function listenerLabel(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
