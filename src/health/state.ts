import type { Config, Member } from "../config/schema.ts";

/** A backend's state as the health thread publishes it (DESIGN.md principle 6). */
export const BackendState = { Up: 0, Down: 1, Draining: 2, Disabled: 3 } as const;
export type BackendState = (typeof BackendState)[keyof typeof BackendState];
export const STATE_NAMES: Readonly<Record<BackendState, string>> = { 0: "up", 1: "down", 2: "draining", 3: "disabled" };

const SLOTS = 3; // state, last probe RTT (µs, -1 when the last probe failed), transitions

/** The shared table has room for this many backends, so a reload can change the list in place. */
export const MAX_BACKENDS = 1024;

/** Every member of every pool, in config order: a backend's index in the shared table. */
export function membersOf(config: Pick<Config, "backends">): Member[] {
  return config.backends.flatMap((p) => p.members);
}

/**
 * Backend health in shared memory: written by the health thread only,
 * read without locks by every IO worker and the supervisor.
 */
export class HealthTable {
  readonly buffer: SharedArrayBuffer;
  readonly #cells: Int32Array;
  readonly #index: ReadonlyMap<string, number>;

  constructor(names: readonly string[], buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(4 * SLOTS * MAX_BACKENDS);
    this.#cells = new Int32Array(this.buffer);
    this.#index = new Map(names.map((n, i) => [n, i]));
  }

  /** A new backend list (SIGHUP): everything starts up again until probes say otherwise. Health thread's side only. */
  static reset(buffer: SharedArrayBuffer): void {
    new Int32Array(buffer).fill(0);
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

  transitions(name: string): number {
    const i = this.#index.get(name);
    return i === undefined ? 0 : Atomics.load(this.#cells, i * SLOTS + 2);
  }

  /** Health thread only. */
  setState(name: string, s: BackendState): void {
    const i = this.#index.get(name);
    if (i === undefined || Atomics.load(this.#cells, i * SLOTS) === s) return;
    Atomics.store(this.#cells, i * SLOTS, s);
    Atomics.add(this.#cells, i * SLOTS + 2, 1);
  }

  /** Health thread only. */
  setRtt(name: string, micros: number | undefined): void {
    const i = this.#index.get(name);
    if (i !== undefined)
      Atomics.store(this.#cells, i * SLOTS + 1, micros === undefined ? -1 : Math.max(1, Math.round(micros)));
  }
}
