import { type Config, MAX_BACKENDS, type Member } from "../config/schema.ts";

/** A backend's state as the health thread publishes it (principle 6). */
export const BackendState = { Up: 0, Down: 1, Draining: 2, Disabled: 3 } as const;
export type BackendState = (typeof BackendState)[keyof typeof BackendState];
export const STATE_NAMES: Readonly<Record<BackendState, string>> = { 0: "up", 1: "down", 2: "draining", 3: "disabled" };

const SLOTS = 3; // state, last probe RTT (µs, -1 when the last probe failed), transitions

/** Upper bounds (seconds) of the probe round-trip histogram's buckets. */
export const RTT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/**
 * 64-bit cells per backend: a count per bucket, the count above the last
 * bound, the sum of round trips in µs, and when its state last changed (ms
 * since the epoch).
 */
const WIDE = RTT_BUCKETS.length + 3;
const SUM = RTT_BUCKETS.length + 1;
const CHANGED_AT = RTT_BUCKETS.length + 2;
const CELLS_BYTES = 4 * SLOTS * MAX_BACKENDS;
const WIDE_BYTES = 8 * WIDE * MAX_BACKENDS;
/** After the cells: a lock word and the table's generation, which every reset moves on. */
const LOCK = 0;
const GENERATION = 1;

/** One backend's probe round trips: counts per bucket (not cumulative, the last above every bound), their sum. */
export interface RttHistogram {
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sumSeconds: number;
}

/** Every member of every pool, in config order: a backend's index in the shared table. */
export function membersOf(config: Pick<Config, "backends">): Member[] {
  return config.backends.flatMap((p) => p.members);
}

/**
 * Backend health in shared memory: read without locks by every IO worker
 * and the supervisor. Written by the health thread, and by the supervisor
 * when a reload changes the member list (`reset`, then the operator's
 * states). A member's place in memory is its index in one member list, so
 * every write holds the lock and is made only while the memory is still of
 * the generation the writer's table was made for: the health thread's
 * table lags the supervisor's until it reads the reload, and a drain (or a
 * probe's verdict) it applied by the old list's index landed on whichever
 * member the new list put there.
 */
export class HealthTable {
  readonly buffer: SharedArrayBuffer;
  /** The member list this table's indexes belong to; writes to memory of another are skipped. */
  readonly generation: number;
  readonly #cells: Int32Array;
  /** 64-bit, so the µs sum of years of probes cannot overflow. */
  readonly #wide: BigInt64Array;
  readonly #header: Int32Array;
  readonly #index: ReadonlyMap<string, number>;

  /** `generation`: the memory's current one unless told (the health thread is told, with its members, by the supervisor). */
  constructor(names: readonly string[], buffer?: SharedArrayBuffer, generation?: number) {
    this.buffer = buffer ?? new SharedArrayBuffer(CELLS_BYTES + WIDE_BYTES + 8);
    this.#cells = new Int32Array(this.buffer, 0, SLOTS * MAX_BACKENDS);
    this.#wide = new BigInt64Array(this.buffer, CELLS_BYTES, WIDE * MAX_BACKENDS);
    this.#header = headerOf(this.buffer);
    this.generation = generation ?? Atomics.load(this.#header, GENERATION);
    this.#index = new Map(names.map((n, i) => [n, i]));
  }

  /**
   * A new backend list (SIGHUP): everything starts up again until probes
   * say otherwise, and every table made for the old list writes no more.
   * Returns the new generation.
   */
  static reset(buffer: SharedArrayBuffer): number {
    const header = headerOf(buffer);
    return locked(header, () => {
      new Int32Array(buffer, 0, (CELLS_BYTES + WIDE_BYTES) / 4).fill(0);
      return Atomics.add(header, GENERATION, 1) + 1;
    });
  }

  indexOf(name: string): number | undefined {
    return this.#index.get(name);
  }

  state(name: string): BackendState {
    const i = this.#index.get(name);
    return i === undefined ? BackendState.Up : (Atomics.load(this.#cells, i * SLOTS) as BackendState);
  }

  /** Microseconds of the last successful probe, or undefined after a failed one or before any. */
  rttMicros(name: string): number | undefined {
    const i = this.#index.get(name);
    const v = i === undefined ? -1 : Atomics.load(this.#cells, i * SLOTS + 1);
    return v > 0 ? v : undefined;
  }

  rttHistogram(name: string): RttHistogram | undefined {
    const i = this.#index.get(name);
    if (i === undefined) return undefined;
    const at = (k: number) => Number(Atomics.load(this.#wide, i * WIDE + k));
    const buckets = Array.from({ length: RTT_BUCKETS.length + 1 }, (_, k) => at(k));
    return { buckets, count: buckets.reduce((a, b) => a + b, 0), sumSeconds: at(SUM) / 1e6 };
  }

  /** When the backend's state last changed (ms since the epoch), or undefined if it never did. */
  changedAt(name: string): number | undefined {
    const i = this.#index.get(name);
    const ms = i === undefined ? 0 : Number(Atomics.load(this.#wide, i * WIDE + CHANGED_AT));
    return ms > 0 ? ms : undefined;
  }

  transitions(name: string): number {
    const i = this.#index.get(name);
    return i === undefined ? 0 : Atomics.load(this.#cells, i * SLOTS + 2);
  }

  /** The health thread, or the supervisor right after `reset`: a table of an older generation writes nothing. */
  setState(name: string, s: BackendState): void {
    this.#write(name, (i) => {
      if (Atomics.load(this.#cells, i * SLOTS) === s) return;
      Atomics.store(this.#cells, i * SLOTS, s);
      Atomics.store(this.#wide, i * WIDE + CHANGED_AT, BigInt(Date.now()));
      Atomics.add(this.#cells, i * SLOTS + 2, 1);
    });
  }

  /** Health thread only: the last round trip, and into the histogram when the probe was answered. */
  setRtt(name: string, micros: number | undefined): void {
    this.#write(name, (i) => {
      Atomics.store(this.#cells, i * SLOTS + 1, micros === undefined ? -1 : Math.max(1, Math.round(micros)));
      if (micros === undefined) return;
      const seconds = micros / 1e6;
      const bucket = RTT_BUCKETS.findIndex((le) => seconds <= le);
      Atomics.add(this.#wide, i * WIDE + (bucket < 0 ? RTT_BUCKETS.length : bucket), 1n);
      Atomics.add(this.#wide, i * WIDE + SUM, BigInt(Math.round(micros)));
    });
  }

  /** `write` at `name`'s index, under the lock, only while the memory is still this table's generation. */
  #write(name: string, write: (index: number) => void): void {
    const i = this.#index.get(name);
    if (i === undefined) return;
    locked(this.#header, () => {
      if (Atomics.load(this.#header, GENERATION) === this.generation) write(i);
    });
  }
}

function headerOf(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, CELLS_BYTES + WIDE_BYTES, 2);
}

/**
 * `f` with the table's lock held: the check of the generation and the write
 * it allows must not let a reset in between. Held for a few stores (a reset:
 * one fill), so a waiter sleeps a millisecond at most per try.
 */
function locked<T>(header: Int32Array, f: () => T): T {
  while (Atomics.compareExchange(header, LOCK, 0, 1) !== 0) Atomics.wait(header, LOCK, 1, 1);
  try {
    return f();
  } finally {
    Atomics.store(header, LOCK, 0);
    Atomics.notify(header, LOCK, 1);
  }
}
