import type { IncomingMessage } from "node:http";
import { isIP, isIPv6 } from "node:net";
import { isLoopback, isWildcard } from "../config/addresses.ts";

/** Why a request is refused before any route sees it. */
export interface Refusal {
  readonly status: number;
  readonly reason: string;
}

/**
 * The checks a browser cannot be made to pass from another site's page,
 * in order: the Host it was sent to, then the Origin it came from.
 */
export function browserRefusal(req: IncomingMessage, listenHost: string): Refusal | undefined {
  const { host, origin } = req.headers;
  // 421 Misdirected Request (RFC 9110 §15.5.20): the request names a server
  // this is not, which is what a rebound name is; and it stays apart from
  // the 403 of a foreign Origin, so a refusal says which check it failed.
  if (host !== undefined && !hostAllowed(host, listenHost)) {
    return { status: 421, reason: `Host ${host} does not name this admin API` };
  }
  if (origin !== undefined && !sameOrigin(origin, host)) {
    return { status: 403, reason: `Origin ${origin} is not this admin API's own` };
  }
  return undefined;
}

const HOST = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::\d{1,5})?$/i;

/**
 * DNS rebinding: a page on attacker.example points its name at the admin
 * address, and the victim's browser then sends it requests carrying
 * `Host: attacker.example`. So Host must name the listen address; a
 * loopback listener also answers to localhost and loopback addresses, a
 * wildcard one to localhost and any address (a rebound name is never an
 * address literal). The port is not compared: a port forward or NAT changes
 * it, and the attacker controls only the name.
 */
function hostAllowed(host: string, listenHost: string): boolean {
  const m = HOST.exec(host);
  const name = (m?.[1] ?? m?.[2])?.toLowerCase();
  if (name === undefined) return false;
  if (isIP(name) !== 0 && canonical(name) === canonical(listenHost)) return true;
  if (isWildcard(listenHost)) return name === "localhost" || isIP(name) !== 0;
  return isLoopback(listenHost) && (name === "localhost" || isLoopback(name));
}

/** One spelling per IPv6 address (`0:0::1` is `::1`), so addresses compare as strings. */
function canonical(address: string): string {
  return isIPv6(address) ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address;
}

/**
 * A cross-site page can POST without a CORS preflight (an HTML form, a
 * no-cors fetch), and its browser then says where it came from. Only the
 * API's own origin, http:// and the Host the request was sent to, passes;
 * so does no Origin (curl, Prometheus). `null` (a sandboxed or file: page)
 * does not.
 */
function sameOrigin(origin: string, host: string | undefined): boolean {
  return host !== undefined && origin.toLowerCase() === `http://${host.toLowerCase()}`;
}

/**
 * POSTs must say `application/json` (parameters such as charset aside): a
 * form or a no-cors fetch cannot send that type, so a cross-site page would
 * need a CORS preflight, which this API never grants.
 */
export function isJson(req: IncomingMessage): boolean {
  return (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() === "application/json";
}
