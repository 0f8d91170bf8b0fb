import type { PoolLevel } from "../transport/pool.ts";

/**
 * Admission control (principle 4): what may start new work when
 * the worker runs short. Established calls flow: responses, ACK and CANCEL
 * (matched to their transactions before admission) and every request inside
 * a dialog sipedge made (its signed Record-Route: a To tag alone, or a BYE
 * outside any dialog, proves nothing). New dialogs and out-of-dialog
 * requests from clients get 503 + Retry-After while the pool is low or the
 * transaction table full, or beyond the CPU ration while the event loop is
 * saturated; backends and trusted peers are refused only at the hard bound.
 * (OPTIONS to sipedge itself, keep-alives and monitors' probes, is answered
 * before admission: it costs one datagram and holds nothing.)
 */

/** Why new work was refused; a metric label. */
export type RejectReason = "pool" | "transactions" | "load";

export interface Arrival {
  /** Inside a dialog sipedge made (routing.ts verified our Record-Route), or from a backend's side of one. */
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

/**
 * Past this many times maxTransactions even established calls and trusted
 * peers wait: the table is heap, and the heap is a budget too. A quarter
 * more than new work may take is room for the calls already up.
 */
const HARD_BOUND = 1.25;

/** undefined: admit; else why the request gets 503. */
export function admit(a: Arrival, p: Pressure): RejectReason | undefined {
  if (p.transactions >= HARD_BOUND * p.maxTransactions) return "transactions";
  if (a.trusted || a.inDialog) return undefined;
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
