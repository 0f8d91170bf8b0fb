import type { ConnectionOptions } from "node:tls";
import type { MessagePort } from "node:worker_threads";
import type { CallCounts } from "../balance/dispatcher.ts";
import type { Config } from "../config/schema.ts";
import type { ProxyCounters } from "../proxy/ports.ts";
import type { HandshakeStats } from "../transport/handshakes.ts";
import type { Refusal } from "../transport/listener.ts";
import type { ClassStats } from "../transport/pool.ts";
import type { WorkerMemory } from "./shared-memory.ts";
import type { BoundListener } from "./worker/client-listeners.ts";

/**
 * The one typed channel between the supervisor (main thread) and its IO
 * worker threads: nothing else posts messages between them.
 */

/** What an IO thread starts from (its workerData): its shared memory (runtime/shared-memory.ts) and the rest. */
export interface ThreadInit extends WorkerMemory {
  readonly config: Config;
  readonly index: number;
  /** The core to pin this thread to, or undefined for no pinning. */
  readonly cpu: number | undefined;
  /** The health thread's backend table (src/health/state.ts). */
  readonly health: SharedArrayBuffer;
  /** The flow-token secret, the same in every worker so any of them can check a token. */
  readonly flowSecret: Uint8Array;
  /** Ports to the workers already running, one per peer (transferred). */
  readonly peers: readonly { readonly index: number; readonly port: MessagePort }[];
}

/** What the health thread starts from. */
export interface HealthInit {
  readonly config: Config;
  readonly health: SharedArrayBuffer;
  /**
   * How it meets TLS backends (health/backend-tls.ts), read by the
   * supervisor: a file a reload cannot read leaves the last good identity,
   * never a thread that fails at every start.
   */
  readonly tls: ConnectionOptions;
}

/** What an operator can set a backend to. */
export type AdminState = "draining" | "disabled" | "up";

/** An operator's word about a backend, relayed to the health thread (the table's only writer). */
export type ToHealth =
  | { readonly type: "set"; readonly backend: string; readonly state: AdminState }
  | { readonly type: "stop" };

/**
 * What the supervisor asks of a worker, each answered once by a Reply of
 * the same kind (`of`). A request carries an id its response repeats, so
 * requests that overlap (two scrapes, two SIGHUPs, a scrape after one that
 * timed out) each get their own answer (runtime/request-channel.ts).
 */
export type Ask = { readonly type: "stats" } | { readonly type: "reload"; readonly config: Config };

export type Reply =
  | { readonly of: "stats"; readonly stats: WorkerStats }
  /** The reload's error, undefined when the worker applied it. */
  | { readonly of: "reload"; readonly error: string | undefined };

export type ToSupervisor =
  | {
      readonly type: "ready";
      readonly index: number;
      readonly tid: number;
      readonly pinned: number | undefined;
      readonly listeners: readonly BoundListener[];
      readonly backendPort: number;
    }
  | { readonly type: "failed"; readonly index: number; readonly message: string }
  | { readonly type: "response"; readonly id: number; readonly reply: Reply };

export type ToWorker =
  | { readonly type: "stop" }
  /** Test-only (SIPEDGE_TEST_FAULTS=1): throw inside the worker, as a programming bug would. */
  | { readonly type: "fault" }
  /** A hand-off port to a worker that (re)started after this one. */
  | { readonly type: "peer"; readonly index: number; readonly port: MessagePort }
  | { readonly type: "request"; readonly id: number; readonly ask: Ask };

/** One worker's counters and gauges, for a scrape. */
export interface WorkerStats {
  readonly counters: ProxyCounters;
  readonly serverTransactions: number;
  readonly clientTransactions: number;
  readonly connections: number;
  /** The buffer pool: slots per size class (and the reserve), and acquisitions that found none free. */
  readonly pool: {
    readonly classes: readonly ClassStats[];
    readonly reserve: ClassStats;
    readonly freeFraction: number;
    readonly exhausted: number;
  };
  /** Connections closed because their peer did not read what was queued for it, or trickled a message. */
  readonly slowReaders: number;
  readonly slowSenders: number;
  /** New client connections closed at once, by reason; TLS handshakes under way. */
  readonly refused: Readonly<Record<Refusal, number>>;
  readonly handshaking: number;
  /** Client connections not read while the pool is critically low. */
  readonly paused: number;
  /** New requests per second the CPU ration lets in while the loop is saturated; null: no ration. */
  readonly ration: number | null;
  /** Open client flows (connections) by transport: tcp, tls, wss. */
  readonly flows: Readonly<Record<string, number>>;
  /** Endpoints registered through sipedge (this worker's view of all), and re-binds it saw. */
  readonly endpoints: number;
  readonly rebinds: number;
  /** Dialogs per backend (active, set up) and per trunk (active). */
  readonly calls: CallCounts;
  /** Open client connections per trunk. */
  readonly trunkConnections: Readonly<Record<string, number>>;
  /** Event-loop delay since the last snapshot, in seconds: p50, p99 and max. */
  readonly loopLag: { readonly p50: number; readonly p99: number; readonly max: number };
  /**
   * The worker's V8 heap in bytes: in use, and the most it may grow to (its
   * share of limits.memory, set when the worker starts). Used creeping up to
   * the limit is a leak in JavaScript; RSS growing while this stays put is
   * the native side (TLS state, the allocator).
   */
  readonly heap: { readonly used: number; readonly limit: number };
  /** Per client-facing TLS listener. */
  readonly handshakes: readonly HandshakeStats[];
  readonly index: number;
}

export function post<T extends ToSupervisor | ToWorker | ToHealth>(
  port: Pick<MessagePort, "postMessage">,
  message: T,
): void {
  port.postMessage(message);
}

/**
 * The `default` of every switch over messages between threads: the `never`
 * makes the compiler check the switch names every type. One that arrives
 * anyway (a bug, a thread from another build) is logged and ignored, never
 * taken for another message.
 */
export function unknownMessage(where: string, message: never): void {
  const type = (message as { type?: unknown } | null)?.type;
  process.stderr.write(`sipedge: ${where}: unknown message ignored (type ${JSON.stringify(type)})\n`);
}

/** How often a worker beats, and how long without a beat makes it stalled. */
export const HEARTBEAT_MS = 100;
export const STALL_MS = 2000;
