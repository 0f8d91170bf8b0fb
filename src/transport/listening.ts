import type { AddressInfo } from "node:net";

/** A server (node:net, node:http, node:tls) or a UDP socket (node:dgram): each says 'listening' or 'error'. */
export interface Listenable {
  once(event: "listening", listener: () => void): unknown;
  once(event: "error", listener: (e: Error) => void): unknown;
  off(event: "listening", listener: () => void): unknown;
  off(event: "error", listener: (e: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

/**
 * Starts `target` listening (`start` calls its listen or bind) and resolves
 * with the address the kernel bound (port 0 made concrete), or rejects with
 * the error that stopped it (EADDRINUSE, EACCES, EADDRNOTAVAIL). Either way
 * neither handler is left behind: a later 'error' is the owner's to handle.
 */
export function listening<T extends Listenable>(target: T, start: (target: T) => void): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (e: Error) => {
      target.off("listening", bound);
      reject(e);
    };
    const bound = () => {
      target.off("error", failed);
      const a = target.address();
      if (typeof a === "object" && a !== null) resolve(a);
      else reject(new Error(`listening on ${String(a)}, not an IP address`));
    };
    target.once("error", failed);
    target.once("listening", bound);
    start(target);
  });
}
