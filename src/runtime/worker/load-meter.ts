import { performance } from "node:perf_hooks";
import type { LoadSample } from "../../proxy/shedder.ts";
import type { ReadTurns } from "../../transport/udp.ts";

/** Where a window's load is read from: this thread's own clocks (threadClocks), or a test's. */
export interface LoadClocks {
  /** Wall-clock time, ms. */
  readonly wall: () => number;
  /** CPU time this thread has used so far, µs, user and system together. */
  readonly cpu: () => number;
  /** The event loop's time so far, ms: active, and idle (waiting in the kernel for events). */
  readonly loop: () => { readonly active: number; readonly idle: number };
}

/**
 * The calling thread's clocks. process.threadCpuUsage (Node ≥ 23.9) is the
 * thread's own CPU time, in a worker_thread as on the main thread, where
 * process.cpuUsage would add up every thread of the process.
 */
export const threadClocks: LoadClocks = {
  wall: () => performance.now(),
  cpu: () => {
    const { user, system } = process.threadCpuUsage();
    return user + system;
  },
  loop: () => performance.eventLoopUtilization(),
};

/** Reads one worker thread's load window after window (proxy/shedder.ts LoadSample). */
export class LoadMeter {
  readonly #clocks: LoadClocks;
  readonly #backlog: BacklogShare;
  #wall: number;
  #cpu: number;
  #loop: { readonly active: number; readonly idle: number };

  /** `sockets`: the worker's UDP sockets, whose read turns say whether a busy thread keeps up. */
  constructor(clocks: LoadClocks, sockets: readonly { readonly readTurns: ReadTurns }[]) {
    this.#clocks = clocks;
    this.#backlog = new BacklogShare(sockets);
    this.#wall = clocks.wall();
    this.#cpu = clocks.cpu();
    this.#loop = clocks.loop();
  }

  /** The load since the last call (or since the meter was made). */
  next(): LoadSample {
    const [wall, cpu, loop] = [this.#clocks.wall(), this.#clocks.cpu(), this.#clocks.loop()];
    const elapsed = wall - this.#wall;
    const active = loop.active - this.#loop.active;
    const busy = active + loop.idle - this.#loop.idle;
    const sample: LoadSample = {
      // A thread's CPU time cannot outrun the wall clock; the two clocks' granularity can.
      cpu: elapsed > 0 ? Math.min(1, (cpu - this.#cpu) / 1000 / elapsed) : 0,
      loop: busy > 0 ? active / busy : 0,
      backlog: this.#backlog.sinceLast(),
    };
    [this.#wall, this.#cpu, this.#loop] = [wall, cpu, loop];
    return sample;
  }
}

/** The share of read turns since the last call that left a backlog, over all the worker's UDP sockets. */
export class BacklogShare {
  readonly #sockets: readonly { readonly readTurns: ReadTurns }[];
  #turns = 0;
  #full = 0;

  constructor(sockets: readonly { readonly readTurns: ReadTurns }[]) {
    this.#sockets = sockets;
  }

  /** undefined: no datagram was read since the last call. */
  sinceLast(): number | undefined {
    let turns = 0;
    let full = 0;
    for (const s of this.#sockets) {
      turns += s.readTurns.turns;
      full += s.readTurns.full;
    }
    const share = turns === this.#turns ? undefined : (full - this.#full) / (turns - this.#turns);
    this.#turns = turns;
    this.#full = full;
    return share;
  }
}
