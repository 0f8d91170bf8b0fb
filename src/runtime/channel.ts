import type { ConnectionOptions } from "node:tls";
import type { MessagePort } from "node:worker_threads";
import type { CallCounts } from "../balance/dispatcher.ts";
import type { Config } from "../config/schema.ts";
import { log } from "../log/log.ts";
import type { EndpointStats } from "../proxy/endpoints.ts";
import type { ProxyStats } from "../proxy/ports.ts";
import type { AdmissionStats } from "../transport/listener.ts";
import type { PoolStats } from "../transport/pool.ts";
import type { StreamCounters } from "../transport/stream.ts";
import type { TicketKeys } from "../transport/ticket-keys.ts";
import type { WorkerMemory } from "./shared-memory.ts";
import type { BackendSideStats } from "./worker/backend-side.ts";
import type { BoundListener, ClientSideStats } from "./worker/client-listeners.ts";
import type { HeapStats } from "./worker/heap.ts";
import type { LoadStats } from "./worker/load-window.ts";

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
  /** The session ticket keys every worker shares, as they are when this one starts (runtime/ticket-key-rotation.ts). */
  readonly ticketKeys: TicketKeys;
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
  /** The table generation (health/state.ts) `config`'s members are laid out in. */
  readonly generation: number;
}

/** What an operator can set a backend to. */
export type AdminState = "draining" | "disabled" | "up";

/** An operator's word about a backend, relayed to the health thread (the table's writer). */
export type ToHealth =
  | { readonly type: "set"; readonly backend: string; readonly state: AdminState }
  /** A reload: probe the new members with the new settings and TLS files, over the same table memory. */
  | { readonly type: "reload"; readonly config: Config; readonly tls: ConnectionOptions; readonly generation: number }
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
  /** The session ticket keys rotated: new tickets under the new key, the one before still accepted. */
  | { readonly type: "ticketKeys"; readonly keys: TicketKeys }
  | { readonly type: "request"; readonly id: number; readonly ask: Ask };

/**
 * One worker's counters and gauges, for a scrape: each component's own
 * stats(), whose type is declared beside it. A new figure goes into its
 * component's stats and one row of admin/metrics/catalogue.ts reads it.
 */
export interface WorkerStats {
  readonly index: number;
  readonly proxy: ProxyStats;
  readonly clients: ClientSideStats;
  readonly backend: BackendSideStats;
  /** Connections closed because their peer did not read what was queued for it, or trickled a message. */
  readonly streams: Readonly<StreamCounters>;
  readonly pool: PoolStats;
  readonly admission: AdmissionStats;
  readonly load: LoadStats;
  /** Dialogs per backend (active, set up) and per trunk (active). */
  readonly calls: CallCounts;
  readonly endpoints: EndpointStats;
  readonly heap: HeapStats;
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
  log.error("channel.unknown-message", "unknown message ignored", { where, type: JSON.stringify(type) });
}

/**
 * How often a worker beats, and how long without a beat makes it stalled.
 * A beat wakes an idle worker; at 250 ms a healthy one is seen to beat
 * within 750 ms (the supervisor looks every STALL_MS / 4), well inside 2 s.
 */
export const HEARTBEAT_MS = 250;
export const STALL_MS = 2000;
