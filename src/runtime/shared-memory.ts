import { randomFillSync } from "node:crypto";
import { renewEpoch, workerEpochs } from "../proxy/flow-token.ts";

/**
 * Every SharedArrayBuffer the threads share, in one place: what each holds,
 * who writes it, its layout. The supervisor makes them once and hands them
 * to each IO worker in its ThreadInit (runtime/channel.ts); a worker that is
 * replaced has its own cells reset (resetWorkerCells), the buffers stay.
 * Two layouts belong to a lower layer and are only named here: the health
 * table (health/state.ts, HealthTable: written by the health thread only)
 * and the flow-token epochs (proxy/flow-token.ts: 4 random bytes per worker).
 * Every cell below is an Int32.
 */

const CELL = Int32Array.BYTES_PER_ELEMENT;

/** Heartbeats: one cell per worker, incremented by it every HEARTBEAT_MS, read by the supervisor for stalls. */
export const HEARTBEAT_CELLS = 1;

/** Backend-side ports: UDP, TCP, TLS per worker, written by that worker once it has bound them (0 until then). */
export const BACKEND_PORTS = 3;

/**
 * Hand-off queues' in-flight counts (runtime/handoff.ts): one cell per
 * ordered pair of workers, at `from × threads + to`.
 */
export function handOffCell(from: number, to: number, threads: number): number {
  return from * threads + to;
}

/**
 * Client connection counts (runtime/connection-gate.ts). Source addresses
 * are counted in a count-min sketch per worker: each address adds to
 * CONNECTION_HASHES of CONNECTION_BUCKETS cells (chosen by a keyed hash),
 * and its count is the least of its cells. A cell other addresses share can
 * only read high (enter and leave add and take away the same cells, and a
 * refused connection never leaves), so the limit is never looser than
 * asked; it is stricter for an address only when every one of its cells is
 * shared with busy ones. One bucket per address, as before, let two
 * trunks' sources that hashed alike (one chance in four among 50 addresses
 * over 4 096 buckets) share one limit: bench:connections had 990
 * connections from one source refused so on 2026-12-04. With the key
 * secret, nobody can pick addresses whose cells cover a victim's to lock
 * it out.
 */
export const CONNECTION_BUCKETS = 16_384;
export const CONNECTION_HASHES = 4;
/**
 * Per worker: its total, then its buckets (64 KiB: io.threads allows 1 024
 * workers). 50 busy sources over 16 384 cells, four each: one source in
 * 45 million shares all four of its cells ((200 / 16 384)^4).
 */
export const CONNECTION_CELLS = 1 + CONNECTION_BUCKETS;
/** The hash key (16 bytes) in the first cells, the same for every worker: one address, the same cells. */
export const CONNECTION_KEY_CELLS = 4;
export const CONNECTION_KEY_BYTES = CONNECTION_KEY_CELLS * CELL;

/** The buffers every IO worker starts with, but the health table (whose owner replaces it on a reload). */
export interface WorkerMemory {
  /** One Int32 per worker, incremented by the worker while its event loop turns. */
  readonly heartbeat: SharedArrayBuffer;
  /** How many IO workers there are, and the hand-off queues' in-flight counts (runtime/handoff.ts). */
  readonly threads: number;
  readonly handOffDepth: SharedArrayBuffer;
  /** Every worker's backend-side ports (UDP, TCP, TLS), each written by its own worker at start. */
  readonly backendPorts: SharedArrayBuffer;
  /** Client connections per worker, in all and by source address (runtime/connection-gate.ts). */
  readonly connectionCounts: SharedArrayBuffer;
  /** Every worker's flow-token epoch, renewed each time that worker starts (proxy/flow-token.ts). */
  readonly flowEpochs: SharedArrayBuffer;
}

/** The shared memory for `threads` IO workers, made once by the supervisor. */
export function workerMemory(threads: number): WorkerMemory {
  return {
    heartbeat: new SharedArrayBuffer(HEARTBEAT_CELLS * CELL * threads),
    threads,
    handOffDepth: handOffDepth(threads),
    backendPorts: new SharedArrayBuffer(BACKEND_PORTS * CELL * threads),
    connectionCounts: connectionCounts(threads),
    flowEpochs: workerEpochs(threads),
  };
}

/**
 * Worker `index` (re)starts: what its predecessor left in its cells is no
 * longer true. Its heartbeat goes on counting (the supervisor compares, it
 * does not read values).
 */
export function resetWorkerCells(memory: WorkerMemory, index: number): void {
  resetHandOffDepth(memory.handOffDepth, memory.threads, index);
  // The ports a dead worker used are no longer ours until it says again.
  new Int32Array(memory.backendPorts).fill(0, index * BACKEND_PORTS, (index + 1) * BACKEND_PORTS);
  resetConnectionCounts(memory.connectionCounts, index);
  // Its flow ids begin again: tokens for its previous flows must stop naming them (430, not a stranger's flow).
  renewEpoch(memory.flowEpochs, index);
}

/** The shared in-flight counts for `threads` workers. */
export function handOffDepth(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(threads * threads * CELL);
}

/** A restarted worker's queues start empty: what was in flight to or from it is gone. */
export function resetHandOffDepth(depth: SharedArrayBuffer, threads: number, worker: number): void {
  const cells = new Int32Array(depth);
  for (let other = 0; other < threads; other++) {
    Atomics.store(cells, handOffCell(worker, other, threads), 0);
    Atomics.store(cells, handOffCell(other, worker, threads), 0);
  }
}

/** The connection counts every IO worker counts in, with the bucket hash's key. */
export function connectionCounts(workers: number): SharedArrayBuffer {
  const counts = new SharedArrayBuffer(CELL * (CONNECTION_KEY_CELLS + CONNECTION_CELLS * workers));
  randomFillSync(new Uint8Array(counts, 0, CONNECTION_KEY_BYTES));
  return counts;
}

/** A worker that died took its connections with it: its counts start again from nothing. */
export function resetConnectionCounts(counts: SharedArrayBuffer, worker: number): void {
  const first = CONNECTION_KEY_CELLS + worker * CONNECTION_CELLS;
  new Int32Array(counts).fill(0, first, first + CONNECTION_CELLS);
}
