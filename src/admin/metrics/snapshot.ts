import type { BackendState, RttHistogram } from "../../health/state.ts";
import { type BuildInfo, buildInfo } from "../../runtime/build-info.ts";
import type { WorkerStats } from "../../runtime/channel.ts";
import type { Timeouts } from "../../runtime/request-channel.ts";
import type { Supervisor } from "../../runtime/supervisor.ts";
import { NO_TLS_DATES, type TlsDates } from "../../runtime/tls-dates.ts";
import { backendCalls, type TrunkTotals, trunkTotals } from "../totals.ts";
import { listenQueues, tcpCounters } from "./kernel.ts";

/** One configured backend as its health probes and the workers' dialogs see it. */
export interface BackendSnapshot {
  readonly pool: string;
  readonly name: string;
  readonly state: BackendState;
  /** The last successful probe's round trip; undefined after a failed one or before any. */
  readonly rttMicros: number | undefined;
  readonly rtt: RttHistogram | undefined;
  readonly transitions: number;
  readonly calls: { readonly active: number; readonly started: number };
}

/**
 * Everything one scrape reports, read once at its start: every worker's
 * counters over the channel, the shared health table and the kernel's
 * counters. The catalogue's rows read only this, so they are pure functions
 * a unit test can feed.
 */
export interface Snapshot {
  /** The IO workers that answered in time (a stalled one is left out). */
  readonly workers: readonly WorkerStats[];
  /** Every member of every pool, in config order. */
  readonly backends: readonly BackendSnapshot[];
  /** Every configured trunk, summed over the workers. */
  readonly trunks: readonly (TrunkTotals & { readonly name: string })[];
  /** Connections waiting in the accept queue, per TCP/TLS listening port of ours. */
  readonly listenQueues: readonly { readonly port: number; readonly queued: number }[];
  /** Kernel TCP counters by their /proc name. */
  readonly kernelTcp: ReadonlyMap<string, number>;
  /** IO and health threads restarted since start. */
  readonly restarts: number;
  /** IO workers whose replacement could not start. */
  readonly respawnFailures: number;
  /** Requests to IO workers unanswered in time, by type. */
  readonly channelTimeouts: Timeouts;
  readonly ioWorkers: number;
  readonly build: BuildInfo;
  /** When each certificate sipedge shows expires, and each client CRL is due (read by the supervisor once per config). */
  readonly tlsDates: TlsDates;
}

/**
 * What one worker's stats alone make of a scrape's snapshot `of`: the
 * figures it counted, with nothing of the process (the kernel's counters,
 * restarts, the health table's transitions), which a worker's death does
 * not reset. The backends and trunks are `of`'s, their figures the worker's.
 * Every field is named (no spread of `of`): a new one must be sorted here,
 * or a process-wide counter would be carried, and counted twice.
 */
export function workerShare(w: WorkerStats, of: Snapshot): Snapshot {
  const workers = [w];
  return {
    workers,
    backends: of.backends.map((b) => ({ ...b, transitions: 0, calls: backendCalls(workers, b.name) })),
    trunks: of.trunks.map(({ name }) => ({ name, ...trunkTotals(workers, name) })),
    listenQueues: [],
    kernelTcp: new Map(),
    restarts: 0,
    respawnFailures: 0,
    channelTimeouts: { stats: 0, reload: 0 },
    ioWorkers: 0,
    build: of.build,
    tlsDates: NO_TLS_DATES,
  };
}

export async function takeSnapshot(supervisor: Supervisor): Promise<Snapshot> {
  const workers = await supervisor.stats();
  const { table, config } = supervisor;
  const ports = supervisor.listeners.filter((l) => l.transport !== "udp").map((l) => l.port);
  const queues = listenQueues(ports);
  return {
    workers,
    backends: config.backends.flatMap((p) =>
      p.members.map(({ name }) => ({
        pool: p.name,
        name,
        state: table.state(name),
        rttMicros: table.rttMicros(name),
        rtt: table.rttHistogram(name),
        transitions: table.transitions(name),
        calls: backendCalls(workers, name),
      })),
    ),
    trunks: config.trunks.map(({ name }) => ({ name, ...trunkTotals(workers, name) })),
    listenQueues: ports.map((port) => ({ port, queued: queues.get(port) ?? 0 })),
    kernelTcp: tcpCounters(),
    restarts: supervisor.restarts,
    respawnFailures: supervisor.respawnFailures,
    channelTimeouts: { ...supervisor.timeouts },
    ioWorkers: supervisor.workers.filter((w) => w !== undefined).length,
    build: buildInfo(),
    tlsDates: supervisor.tlsDates,
  };
}
