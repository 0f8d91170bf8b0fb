import type { WorkerStats } from "../runtime/channel.ts";

/** One trunk's figures over every IO worker (for /metrics and /status alike). */
export interface TrunkTotals {
  readonly requests: number;
  readonly keepalives: number;
  readonly calls: number;
  readonly activeCalls: number;
  readonly connections: number;
  /** When any worker last heard from it (ms since the epoch), 0 for never. */
  readonly lastSeen: number;
}

export function trunkTotals(stats: readonly WorkerStats[], name: string): TrunkTotals {
  let requests = 0;
  let keepalives = 0;
  let calls = 0;
  let activeCalls = 0;
  let connections = 0;
  let lastSeen = 0;
  for (const s of stats) {
    const c = s.proxy.counters.trunks[name];
    requests += c?.requests ?? 0;
    keepalives += c?.keepalives ?? 0;
    calls += c?.calls ?? 0;
    lastSeen = Math.max(lastSeen, c?.lastSeen ?? 0);
    activeCalls += s.calls.trunks[name] ?? 0;
    connections += s.clients.trunkConnections[name] ?? 0;
  }
  return { requests, keepalives, calls, activeCalls, connections, lastSeen };
}

/** One backend's dialogs over every IO worker: up now, and set up since start. */
export function backendCalls(stats: readonly WorkerStats[], name: string): { active: number; started: number } {
  let active = 0;
  let started = 0;
  for (const s of stats) {
    active += s.calls.backends[name]?.active ?? 0;
    started += s.calls.backends[name]?.started ?? 0;
  }
  return { active, started };
}
