import type { PoolLevel } from "../transport/pool.ts";

/**
 * Admission control (principle 4): what may start new work when
 * the worker runs short. Established calls always flow: responses, ACK,
 * BYE, CANCEL and everything inside a dialog. New dialogs and out-of-dialog
 * requests from clients get 503 + Retry-After while the pool is low or the
 * transaction table full, or beyond the CPU ration while the event loop is
 * saturated; backends and trusted peers are never refused.
 * (OPTIONS to sipedge itself, keep-alives and monitors' probes, is answered
 * before admission: it costs one datagram and holds nothing.)
 */

/** Why new work was refused; a metric label. */
export type RejectReason = "pool" | "transactions" | "load";

export interface Arrival {
  readonly method: string;
  /** Has a To tag: it belongs to a dialog (RFC 3261 §12.2). */
  readonly inDialog: boolean;
  /** From a backend, or from a client flow of a trusted peer. */
  readonly trusted: boolean;
}

export interface Pressure {
  readonly level: PoolLevel;
  /** Server transactions awaiting their final response, and the most this worker may have. */
  readonly transactions: number;
  readonly maxTransactions: number;
  /** The CPU ration (proxy/shedder.ts): take() says whether it has room for one more, taking it when it has. */
  readonly ration: { take(): boolean };
}

/** Requests that never start anything new: they end or steer what is already there. */
const ESTABLISHED = new Set(["ACK", "BYE", "CANCEL", "PRACK"]);

/** undefined: admit; else why the request gets 503. */
export function admit(a: Arrival, p: Pressure): RejectReason | undefined {
  if (a.trusted || a.inDialog || ESTABLISHED.has(a.method)) return undefined;
  if (p.level !== "normal") return "pool";
  if (p.transactions >= p.maxTransactions) return "transactions";
  if (!p.ration.take()) return "load";
  return undefined;
}

/**
 * Retry-After with jitter (RFC 3261 §20.33): `base` seconds plus up to half
 * as much again, so refused clients do not all come back in the same second.
 */
export function retryAfterWithJitter(base: number, random: () => number = Math.random): number {
  return base + Math.floor(random() * (Math.floor(base / 2) + 1));
}
