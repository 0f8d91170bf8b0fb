import type { Dispatcher } from "../proxy/ports.ts";
import { unmapped } from "../transport/address.ts";
import type { ConnectionGate, GateRefusal } from "../transport/listener.ts";

/**
 * Connections one backend address may hold open to a worker's backend side.
 * sipedge opens two per member itself (transport/links.ts); a backend that
 * opens its own (Kamailio's or Asterisk's TCP towards a Via) needs a few
 * more. 64 bounds a member that misbehaves without troubling one that does not.
 */
export const BACKEND_CONNECTIONS_PER_ADDRESS = 64;

/**
 * Who may connect to the backend-side listeners: configured members only
 * (by source address, checked at accept, before a TLS handshake costs
 * anything), a few connections each. Per worker: the backend side has a
 * port per worker, so nothing here is shared.
 */
export class BackendGate implements ConnectionGate {
  readonly #members: Pick<Dispatcher, "memberAt">;
  readonly #open = new Map<string, number>();

  constructor(members: Pick<Dispatcher, "memberAt">) {
    this.#members = members;
  }

  enter(address: string): GateRefusal | undefined {
    const a = unmapped(address);
    if (this.#members.memberAt(a, 0, "tcp") === undefined) return "stranger";
    const n = this.#open.get(a) ?? 0;
    if (n >= BACKEND_CONNECTIONS_PER_ADDRESS) return "per_ip";
    this.#open.set(a, n + 1);
    return undefined;
  }

  leave(address: string): void {
    const a = unmapped(address);
    const n = (this.#open.get(a) ?? 1) - 1;
    if (n <= 0) this.#open.delete(a);
    else this.#open.set(a, n);
  }

  /** A member's connection is always read: it carries the calls. */
  trusted(): boolean {
    return true;
  }
}
