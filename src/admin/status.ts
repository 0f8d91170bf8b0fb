import { BackendState, STATE_NAMES } from "../health/state.ts";
import { buildInfo } from "../runtime/build-info.ts";
import type { WorkerStats } from "../runtime/channel.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import { backendCalls, trunkTotals } from "./totals.ts";

/** Every configured backend as the health table sees it (for /status and /readyz). */
export function backendsOf(supervisor: Supervisor) {
  return supervisor.config.backends.flatMap((p) =>
    p.members.map((m) => {
      const rtt = supervisor.table.rttMicros(m.name);
      return {
        name: m.name,
        pool: p.name,
        uri: m.uri,
        state: STATE_NAMES[supervisor.table.state(m.name)],
        up: supervisor.table.state(m.name) === BackendState.Up,
        rttMs: rtt === undefined ? null : rtt / 1000,
        transitions: supervisor.table.transitions(m.name),
        since: dateOrNull(supervisor.table.changedAt(m.name)),
      };
    }),
  );
}

function dateOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** Each configured trunk over the workers' snapshots. */
function trunksOf(supervisor: Supervisor, stats: readonly WorkerStats[]) {
  return supervisor.config.trunks.map(({ name }) => {
    const t = trunkTotals(stats, name);
    return {
      name,
      connections: t.connections,
      activeCalls: t.activeCalls,
      calls: t.calls,
      requests: t.requests,
      keepalives: t.keepalives,
      lastSeen: dateOrNull(t.lastSeen === 0 ? undefined : t.lastSeen),
    };
  });
}

/**
 * GET /status: what this process is and how long it has run (the process,
 * as process_start_time_seconds counts it), then its workers, listeners,
 * backends and trunks.
 */
export function statusReport(supervisor: Supervisor, stats: readonly WorkerStats[]) {
  const uptime = process.uptime();
  return {
    ...buildInfo(),
    startedAt: new Date(Date.now() - uptime * 1000).toISOString(),
    uptimeSeconds: Math.floor(uptime),
    workers: supervisor.workers.map((w) =>
      w === undefined
        ? null
        : { index: w.index, thread: w.tid, pinnedCpu: w.pinned ?? null, backendPort: w.backendPort },
    ),
    restarts: supervisor.restarts,
    listeners: supervisor.listeners,
    backends: backendsOf(supervisor).map((b) => {
      const calls = backendCalls(stats, b.name);
      return { ...b, activeCalls: calls.active, calls: calls.started };
    }),
    trunks: trunksOf(supervisor, stats),
  };
}

/** The body of GET /status, as `sipedge status` reads it. */
export type StatusReport = ReturnType<typeof statusReport>;
