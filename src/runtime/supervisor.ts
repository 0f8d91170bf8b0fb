import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Config } from "../config/schema.ts";
import { post, STALL_MS, type ThreadInit, type ToSupervisor } from "./channel.ts";
import type { BoundListener } from "./worker.ts";

/** The IO thread entry beside this module (.ts when run from source, .js when built). */
const ENTRY = new URL(`./io-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Slot {
  worker: Worker;
  ready: Extract<ToSupervisor, { type: "ready" }> | undefined;
  lastBeat: number;
  lastBeatAt: number;
}

/**
 * The main thread (DESIGN.md principles 2 and 7): starts one IO worker per
 * core (or io.threads), each pinned and named sipedge-io-N, and restarts at
 * once any that exits, throws, or stops beating for STALL_MS.
 */
export class Supervisor {
  readonly threads: number;
  /** The config workers start from: ports given as 0 are made concrete once worker 0 has bound them. */
  #config: Config;
  readonly #entry: URL;
  readonly #slots: Slot[] = [];
  readonly #beats: Int32Array;
  readonly #heartbeat: SharedArrayBuffer;
  readonly #watch: ReturnType<typeof setInterval>;
  #stopping = false;
  restarts = 0;

  private constructor(config: Config, entry: URL) {
    this.#config = config;
    this.#entry = entry;
    this.threads = config.io.threads === 0 ? availableParallelism() : config.io.threads;
    this.#heartbeat = new SharedArrayBuffer(4 * this.threads);
    this.#beats = new Int32Array(this.#heartbeat);
    this.#watch = setInterval(() => this.#checkStalls(), STALL_MS / 4);
  }

  /**
   * Starts every worker. Listener ports given as 0 are taken by worker 0
   * first, then the others bind the same ones (reusePort needs a real port).
   */
  static async start(config: Config, entry: URL = ENTRY): Promise<Supervisor> {
    const s = new Supervisor(config, entry);
    const first = await s.#spawn(0);
    s.#config = {
      ...config,
      listen: config.listen.map((l, i) => ({ ...l, port: first.listeners[i]?.port ?? l.port })),
    };
    await Promise.all(Array.from({ length: s.threads - 1 }, (_, i) => s.#spawn(i + 1)));
    return s;
  }

  get listeners(): readonly BoundListener[] {
    return this.#slots[0]?.ready?.listeners ?? [];
  }

  /** What each worker reported when it came up: thread id, pinned core, backend port. */
  get workers(): readonly (Extract<ToSupervisor, { type: "ready" }> | undefined)[] {
    return this.#slots.map((s) => s.ready);
  }

  /**
   * SIGHUP with a config that validated: every worker takes the new
   * backends, SIP settings and certificates. Listeners are not moved: a
   * changed `listen` needs a restart, and the answer says so.
   */
  async reload(config: Config): Promise<string[]> {
    const notes: string[] = [];
    const sameListeners =
      JSON.stringify(config.listen.map(({ transport, address }) => [transport, address])) ===
      JSON.stringify(this.#config.listen.map(({ transport, address }) => [transport, address]));
    if (!sameListeners) notes.push("listen: changes take effect at the next restart");
    // Ports stay the bound ones (a 0 in the file was made concrete at start).
    const running = this.#config.listen;
    const listen = sameListeners ? config.listen.map((l, i) => ({ ...l, port: running[i]?.port ?? l.port })) : running;
    this.#config = { ...config, listen };
    const answers = await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<Extract<ToSupervisor, { type: "reloaded" }>>((resolve) => {
            const onMessage = (m: ToSupervisor) => {
              if (m.type !== "reloaded") return;
              slot.worker.off("message", onMessage);
              resolve(m);
            };
            slot.worker.on("message", onMessage);
            post(slot.worker, { type: "reload", config: this.#config });
          }),
      ),
    );
    for (const a of answers) if (a.error !== undefined) notes.push(`io worker ${a.index}: ${a.error}`);
    return notes;
  }

  /** SIGTERM: every worker drains (stops accepting, finishes transactions within io.grace) and exits. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#watch);
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            // A worker that cannot finish its drain in time is ended.
            const timer = setTimeout(() => void slot.worker.terminate(), this.#config.io.grace + 2000);
            slot.worker.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            post(slot.worker, { type: "stop" });
          }),
      ),
    );
  }

  #spawn(index: number): Promise<Extract<ToSupervisor, { type: "ready" }>> {
    const init: ThreadInit = {
      config: this.#config,
      index,
      cpu: this.#config.io.pin ? index % availableParallelism() : undefined,
      heartbeat: this.#heartbeat,
    };
    const worker = new Worker(this.#entry, { name: `sipedge-io-${index}`, workerData: init });
    const slot: Slot = { worker, ready: undefined, lastBeat: Atomics.load(this.#beats, index), lastBeatAt: Date.now() };
    this.#slots[index] = slot;
    return new Promise((resolve, reject) => {
      worker.on("message", (m: ToSupervisor) => {
        if (m.type === "ready") {
          slot.ready = m;
          slot.lastBeatAt = Date.now();
          resolve(m);
        } else if (m.type === "failed") reject(new Error(`io worker ${index}: ${m.message}`));
      });
      // A crash or an exit: respawn at once (the exit event follows an error).
      worker.on("error", () => {});
      worker.on("exit", () => {
        if (this.#stopping || this.#slots[index] !== slot) return;
        if (slot.ready === undefined) {
          reject(new Error(`io worker ${index} exited before it was ready`));
          return;
        }
        this.restarts++;
        void this.#spawn(index).catch(() => {});
      });
    });
  }

  /** A worker whose heartbeat has not moved for STALL_MS is stuck: replace it. */
  #checkStalls(): void {
    const now = Date.now();
    for (const slot of this.#slots) {
      if (slot.ready === undefined) continue;
      const beat = Atomics.load(this.#beats, slot.ready.index);
      if (beat !== slot.lastBeat) {
        slot.lastBeat = beat;
        slot.lastBeatAt = now;
      } else if (now - slot.lastBeatAt >= STALL_MS) {
        slot.lastBeatAt = now;
        void slot.worker.terminate();
      }
    }
  }
}
