/** What the config's addresses may be: concrete, loopback, `address:port`, CIDRs. */
import { BlockList, isIP, isIPv6 } from "node:net";
import type { Trunk } from "./schema.ts";

export function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || (isIPv6(address) && /^[0:]+$/.test(address));
}

/** "127.0.0.1:9091" or "[::1]:9091" → parts, or undefined. */
export function hostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  return host !== undefined && isIP(host) !== 0 && port <= 65535 ? { host, port } : undefined;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8 or ::1 (in any spelling, or IPv4-mapped): reachable from this host only. */
export function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? "ipv4" : "ipv6");
}

/**
 * Why an admin API on `listenHost` without a token cannot be: beyond
 * loopback anyone who reaches the port could drain or disable every backend
 * (a wildcard listens on loopback and every other address alike).
 */
export function tokenRequired(listenHost: string): string | undefined {
  if (isLoopback(listenHost)) return undefined;
  return `is required when admin.listen (${listenHost}) is not a loopback address (127.0.0.0/8, ::1): anyone who can reach it could drain or disable backends`;
}

/** "198.51.100.0/24", "2001:db8::/32" or a bare address (a /32 or /128). */
export function parseCidr(s: string): Trunk["sources"][number] | undefined {
  const [address = "", bits, extra] = s.split("/");
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}
