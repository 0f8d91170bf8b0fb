import { availableParallelism } from "node:os";
import { extname } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { Config } from "../config/schema.ts";
import { backendClientTls } from "../health/backend-tls.ts";
import { HealthTable, membersOf } from "../health/state.ts";
import { log } from "../log/log.ts";
import { flowSecret } from "../proxy/flow-token.ts";
import {
  type AdminState,
  type HealthInit,
  post,
  STALL_MS,
  type ThreadInit,
  type ToHealth,
  type ToSupervisor,
  type ToWorker,
  unknownMessage,
  type WorkerStats,
} from "./channel.ts";
import { lastResort } from "./last-resort.ts";
import { OperatorStates } from "./operator-states.ts";
import { RequestChannel, type Timeouts } from "./request-channel.ts";
import { resetWorkerCells, type WorkerMemory, workerMemory } from "./shared-memory.ts";
import { Death } from "./thread-death.ts";
import { TicketKeyRotation } from "./ticket-key-rotation.ts";
import { NO_TLS_DATES, type TlsDates, tlsDates } from "./tls-dates.ts";
import type { BoundListener } from "./worker/client-listeners.ts";
import { growOldGeneration, heapLimits } from "./worker/heap.ts";
import { restartOnly } from "./worker/reloadable.ts";

/** The thread entries (.ts when run from source, .js when built). */
const EXT = extname(fileURLToPath(import.meta.url));
const ENTRY = new URL(`./io-thread${EXT}`, import.meta.url);
const HEALTH_ENTRY = new URL(`./health-thread${EXT}`, import.meta.url);

/**
 * How long a worker has to apply a reload (certificates read from disk,
 * new backend links): one that takes longer is named in the reload's answer.
 */
const RELOAD_TIMEOUT_MS = 5000;

interface Slot {
  worker: Worker;
  /** Requests to this worker and their responses, by id. */
  channel: RequestChannel;
  exited: boolean;
  ready: Extract<ToSupervisor, { type: "ready" }> | undefined;
  lastBeat: number;
  lastBeatAt: number;
  /**
   * Its last answer to a stats request (a scrape's, or /status'): what is
   * known of its counters if it dies. It may lag: counts made after it are
   * lost with the worker.
   */
  lastStats: WorkerStats | undefined;
}

/** Told of an IO worker that died, with its last stats (Supervisor.onRetired). */
export type RetiredListener = (last: WorkerStats) => void;

/**
 * The main thread (principles 2 and 7): starts one IO worker per
 * core (or io.threads), each pinned and named sipedge-io-N, and restarts at
 * once any that exits, throws, or stops beating for STALL_MS.
 */
export class Supervisor {
  readonly threads: number;
  /** The config workers start from: ports given as 0 are made concrete once worker 0 has bound them. */
  #config: Config;
  /**
   * The config as it was at start (listen ports concrete): what the keys a
   * reload does not apply still hold until a restart.
   */
  #started: Config;
  #tlsDates: TlsDates = NO_TLS_DATES;
  readonly #entry: URL;
  readonly #healthEntry: URL;
  readonly #slots: Slot[] = [];
  readonly #beats: Int32Array;
  /** What every IO worker shares but the health table (runtime/shared-memory.ts). */
  readonly #memory: WorkerMemory;
  readonly #flowSecret: Uint8Array;
  /** The session ticket keys every worker shares (a reload keeps them). */
  readonly #tickets: TicketKeyRotation;
  readonly #watch: ReturnType<typeof setInterval>;
  #stopping = false;
  #health: Worker | undefined;
  /** The health thread's TLS options: the last config whose files could be read. */
  #healthTls: ConnectionOptions;
  /** Backend states, written by the health thread, read here and by every IO worker. */
  #table: HealthTable;
  /** The operator's drains and disables, kept in admin.stateFile across restarts and reloads. */
  readonly #operator: OperatorStates;
  restarts = 0;
  /** IO workers that exited and whose replacement could not start (the slot stays empty). */
  respawnFailures = 0;
  /** Requests to IO workers that got no answer in time, by type. */
  readonly timeouts: Timeouts = { stats: 0, reload: 0 };
  readonly #retiredListeners: RetiredListener[] = [];

  private constructor(config: Config, entries: { io: URL; health: URL }) {
    this.#config = config;
    this.#started = config;
    this.#entry = entries.io;
    this.#healthEntry = entries.health;
    this.threads = config.io.threads === 0 ? availableParallelism() : config.io.threads;
    this.#memory = workerMemory(this.threads);
    this.#flowSecret = flowSecret(config.sip.flowSecretFile);
    this.#beats = new Int32Array(this.#memory.heartbeat);
    this.#table = new HealthTable(membersOf(config).map((m) => m.name));
    // Before any thread starts: a member drained before a restart takes no call after it.
    this.#operator = OperatorStates.load(config.admin.stateFile);
    this.#operator.keepFor(config);
    this.#operator.applyTo(this.#table);
    this.#healthTls = backendClientTls(config);
    this.#tickets = new TicketKeyRotation(config.tls.ticketKeyRotation, (keys) => {
      for (const slot of this.#slots) if (!slot.exited) post(slot.worker, { type: "ticketKeys", keys });
    });
    this.#watch = setInterval(() => this.#checkStalls(), STALL_MS / 4);
  }

  /**
   * Starts every worker. Listener ports given as 0 are taken by worker 0
   * first, then the others bind the same ones (reusePort needs a real port).
   * `entry`, `healthEntry`: the threads' code (tests give stand-ins).
   */
  static async start(config: Config, entry: URL = ENTRY, healthEntry: URL = HEALTH_ENTRY): Promise<Supervisor> {
    const s = new Supervisor(config, { io: entry, health: healthEntry });
    lastResort(true);
    growOldGeneration();
    s.#startHealth();
    try {
      const first = await s.#spawn(0);
      s.#config = {
        ...config,
        listen: config.listen.map((l, i) => ({ ...l, port: first.listeners[i]?.port ?? l.port })),
      };
      s.#started = s.#config;
      s.#tlsDates = tlsDates(s.#config);
      await Promise.all(Array.from({ length: s.threads - 1 }, (_, i) => s.#spawn(i + 1)));
    } catch (e) {
      // A worker that cannot start (a port taken, a certificate unreadable) stops everything.
      await s.stop();
      throw e;
    }
    return s;
  }

  get table(): HealthTable {
    return this.#table;
  }

  /** When each certificate the running config shows expires, and each client CRL is due (read at start and on each reload). */
  get tlsDates(): TlsDates {
    return this.#tlsDates;
  }

  /** The running config (listen ports concrete). */
  get config(): Config {
    return this.#config;
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
   * backends, SIP settings and certificates, and a new health thread probes
   * with them. Listeners are not moved: a changed `listen` needs a restart,
   * like io.*, limits.memory and the rest worker/reloadable.ts does not
   * apply; the answer names every such key the new config changes.
   */
  async reload(config: Config): Promise<string[]> {
    const notes: string[] = [];
    const sameListeners =
      JSON.stringify(config.listen.map(({ transport, address }) => [transport, address])) ===
      JSON.stringify(this.#config.listen.map(({ transport, address }) => [transport, address]));
    // Ports stay the bound ones (a 0 in the file was made concrete at start).
    const running = this.#config.listen;
    const asBound = config.listen.map((l, i) => (l.port === 0 ? { ...l, port: running[i]?.port ?? 0 } : l));
    const waiting = restartOnly(this.#started, { ...config, listen: asBound });
    if (waiting.length > 0) notes.push(`restart needed to apply: ${waiting.join(", ")}`);
    const listen = sameListeners ? config.listen.map((l, i) => ({ ...l, port: running[i]?.port ?? l.port })) : running;
    const backendsBefore = JSON.stringify(membersOf(this.#config).map((m) => [m.name, m.uri]));
    this.#config = { ...config, listen };
    this.#tlsDates = tlsDates(this.#config);
    // Members the new list no longer has lose their states; those it keeps (same pool, same name) hold theirs.
    this.#operator.keepFor(config);
    if (JSON.stringify(membersOf(config).map((m) => [m.name, m.uri])) !== backendsBefore) {
      // A new backend list: a new table over the same memory, of a new generation, in which the
      // health thread's tables of the old list write nothing (health/state.ts).
      HealthTable.reset(this.#table.buffer);
      this.#table = new HealthTable(
        membersOf(config).map((m) => m.name),
        this.#table.buffer,
      );
      this.#operator.applyTo(this.#table);
    }
    const healthNote = this.#renewHealth(config);
    if (healthNote !== undefined) notes.push(healthNote);
    const ask = { type: "reload", config: this.#config } as const;
    const errors = await Promise.all(
      this.#slots.map((slot) =>
        slot.channel.request(ask, RELOAD_TIMEOUT_MS).then(
          (reply) => reply.error,
          (e: Error) => e.message,
        ),
      ),
    );
    for (const [index, error] of errors.entries()) if (error !== undefined) notes.push(`io worker ${index}: ${error}`);
    return notes;
  }

  /** Every worker's counters, for a scrape (a worker that does not answer in time is left out). */
  async stats(timeoutMs = 500): Promise<WorkerStats[]> {
    const answers = await Promise.all(
      this.#slots.map((slot) =>
        slot.channel.request({ type: "stats" }, timeoutMs).then(
          (reply) => {
            slot.lastStats = reply.stats;
            return reply.stats;
          },
          () => undefined,
        ),
      ),
    );
    return answers.filter((s): s is WorkerStats => s !== undefined);
  }

  /**
   * `listener` is told the last stats of every IO worker that dies from now
   * on (one never asked for its stats is not told of): the metrics carry its
   * counts forward, so counters summed over the workers never go back.
   */
  onRetired(listener: RetiredListener): void {
    this.#retiredListeners.push(listener);
  }

  /**
   * POST /backends/{name}/drain|disable|enable: kept (admin.stateFile) and
   * relayed to the health thread, the table's writer once it runs.
   */
  setBackend(name: string, state: AdminState): boolean {
    const pool = this.#config.backends.find((p) => p.members.some((m) => m.name === name));
    if (pool === undefined || this.table.indexOf(name) === undefined || this.#health === undefined) return false;
    this.#operator.set(pool.name, name, state);
    post(this.#health, { type: "set", backend: name, state });
    return true;
  }

  /** Test-only: make IO worker `index` throw (the admin API offers it under SIPEDGE_TEST_FAULTS=1). */
  injectFault(index: number): boolean {
    const slot = this.#slots[index];
    if (slot === undefined || slot.exited) return false;
    post(slot.worker, { type: "fault" });
    return true;
  }

  /**
   * A reload gives the health thread its new members, probe settings and
   * TLS identity (a renewed certificate, which a backend checking client
   * certificates will soon require); it probes with them from then on. The
   * table is shared memory, so an unchanged list keeps its states and a
   * reload flaps no backend. Returns a note when the TLS files could not be read.
   */
  #renewHealth(config: Config): string | undefined {
    let note: string | undefined;
    try {
      this.#healthTls = backendClientTls(config);
    } catch (e) {
      // As the IO workers' TlsIdentity does: a file that cannot be read changes nothing.
      note = `health: probes keep the previous TLS files: ${e instanceof Error ? e.message : String(e)}`;
    }
    // The running thread takes the new members, settings and files: a new thread per reload cost an
    // isolate each, and one still loading its modules (seconds, under load) read no "stop" until it had,
    // so reloads a second apart kept dozens of them (RSS 325 -> 911 MB over 90 reloads under calls,
    // test/integration/tls-reload-under-load.test.ts).
    if (this.#health === undefined) this.#startHealth();
    else post(this.#health, this.#healthReload());
    return note;
  }

  /** What the health thread probes, and the table generation its members are laid out in (the supervisor's table's). */
  #healthReload(): Extract<ToHealth, { type: "reload" }> {
    return { type: "reload", config: this.#config, tls: this.#healthTls, generation: this.#table.generation };
  }

  /** The health thread: probes from its own sockets; restarted like an IO worker, and its death logged like one. */
  #startHealth(): void {
    const { config, tls, generation } = this.#healthReload();
    const init: HealthInit = { config, tls, generation, health: this.#table.buffer };
    const health = new Worker(this.#healthEntry, { name: "sipedge-health", workerData: init });
    this.#health = health;
    const death = new Death();
    health.on("error", (e: Error) => death.error(e));
    health.on("exit", (code: number) => {
      if (this.#stopping || this.#health !== health) return;
      log.error("health.died", "health thread died: restarted", death.fields(code));
      this.restarts++;
      this.#startHealth();
    });
  }

  /** SIGTERM: every worker drains (stops accepting, finishes transactions within io.grace) and exits. */
  async stop(): Promise<void> {
    if (!this.#stopping) lastResort(false);
    this.#stopping = true;
    clearInterval(this.#watch);
    this.#tickets.stop();
    if (this.#health !== undefined) post(this.#health, { type: "stop" });
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            if (slot.exited) {
              resolve();
              return;
            }
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
    resetWorkerCells(this.#memory, index);
    // A hand-off channel to every worker already running (runtime/handoff.ts).
    const peers: { index: number; port: MessagePort }[] = [];
    for (const [other, slot] of this.#slots.entries()) {
      if (other === index || slot === undefined || slot.exited) continue;
      const { port1, port2 } = new MessageChannel();
      slot.worker.postMessage({ type: "peer", index, port: port1 } satisfies ToWorker, [port1]);
      peers.push({ index: other, port: port2 });
    }
    const init: ThreadInit = {
      ...this.#memory,
      config: this.#config,
      index,
      cpu: this.#config.io.pin ? index % availableParallelism() : undefined,
      health: this.table.buffer,
      flowSecret: this.#flowSecret,
      ticketKeys: this.#tickets.keys,
      peers,
    };
    const worker = new Worker(this.#entry, {
      name: `sipedge-io-${index}`,
      workerData: init,
      transferList: peers.map((p) => p.port),
      resourceLimits: heapLimits(this.#config.limits.memory, this.threads),
    });
    const slot: Slot = {
      worker,
      channel: new RequestChannel(worker, this.timeouts),
      exited: false,
      ready: undefined,
      lastBeat: Atomics.load(this.#beats, index),
      lastBeatAt: Date.now(),
      lastStats: undefined,
    };
    this.#slots[index] = slot;
    return new Promise((resolve, reject) => {
      worker.on("message", (m: ToSupervisor) => {
        switch (m.type) {
          case "ready":
            slot.ready = m;
            slot.lastBeatAt = Date.now();
            resolve(m);
            return;
          case "failed":
            reject(new Error(`io worker ${index}: ${m.message}`));
            return;
          case "response":
            slot.channel.settle(m);
            return;
          default:
            unknownMessage(`supervisor (from io worker ${index})`, m);
        }
      });
      // A crash or an exit: respawn at once (the exit event follows an error), and say why.
      const death = new Death();
      worker.on("error", (e: Error) => death.error(e));
      worker.on("exit", (code: number) => {
        slot.exited = true;
        slot.channel.close();
        if (this.#stopping || this.#slots[index] !== slot) return;
        if (slot.ready === undefined) {
          reject(new Error(`io worker ${index} exited before it was ready${death.because}`));
          return;
        }
        log.error("worker.died", "io worker died", { worker: index, ...death.fields(code) }, String(index));
        this.restarts++;
        const last = slot.lastStats;
        if (last !== undefined) for (const told of this.#retiredListeners) told(last);
        this.#respawn(index);
      });
    });
  }

  /** A replacement that cannot start (a port taken meanwhile, a certificate gone) leaves its slot empty: say so and count it. */
  #respawn(index: number): void {
    this.#spawn(index).then(
      (ready) => log.info("worker.replaced", "io worker replaced", { worker: index, thread: ready.tid }, String(index)),
      (e: unknown) => {
        this.respawnFailures++;
        const error = e instanceof Error ? e.message : String(e);
        log.error("worker.restart-failed", "io worker could not be restarted", { worker: index, error }, String(index));
      },
    );
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
        const worker = slot.ready.index;
        log.error("worker.stalled", "io worker stalled: replaced", { worker, noHeartbeatMs: STALL_MS }, String(worker));
        void slot.worker.terminate();
      }
    }
  }
}
