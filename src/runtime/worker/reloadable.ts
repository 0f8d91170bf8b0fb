import { isDeepStrictEqual } from "node:util";
import type { PassiveHealth } from "../../balance/dispatcher.ts";
import { budgetShares } from "../../config/budget.ts";
import type { Config, Trunk } from "../../config/schema.ts";
import type { ProxySettings } from "../../proxy/ports.ts";
import type { GateLimits } from "../connection-gate.ts";

/**
 * What a worker takes from a config on SIGHUP, derived here alike at start
 * and at reload: the backends and their passive health, the proxy's SIP
 * settings, the trunks, the connection, handshake and endpoint limits (and
 * the TLS files: tls-identity.ts). Everything else a worker is built from
 * (its listeners and backend side, io.*, limits.memory and the stream
 * bounds a listener opened with) stays as it is until a restart.
 */
export interface Reloadable {
  readonly backends: Pick<Config, "backends">;
  readonly passiveHealth: PassiveHealth;
  readonly proxy: ProxySettings;
  readonly trunks: readonly Trunk[];
  readonly gate: GateLimits;
  readonly maxHandshakes: number;
  readonly maxEndpoints: number;
}

/**
 * The config keys a SIGHUP applies, everything under each (`[]`: any
 * index): what `reloadable` reads, the TLS files (tls-identity.ts) and
 * `health`, which a reload's new health thread takes (runtime/supervisor.ts),
 * and `log`, which every thread's logger takes (runtime/config-reload.ts).
 * Kept beside `reloadable` so that one is not changed without the other;
 * a key missing here is reported as needing a restart, never the reverse.
 */
const APPLIED_ON_RELOAD: readonly string[] = [
  "backends",
  "trunks",
  "health",
  "sip.timers",
  "sip.firstResponseTimeout",
  "sip.failoverOn",
  "sip.retryAfter",
  "sip.flowTimer",
  "sip.foreignRoute",
  "sip.backendTls",
  "limits.maxConnections",
  "limits.maxConnectionsPerIp",
  "limits.maxHandshakes",
  "limits.maxEndpoints",
  "limits.answersPerSource",
  "limits.maxTransactions",
  "listen[].cert",
  "listen[].key",
  "listen[].certificates",
  "listen[].ca",
  "listen[].crl",
  "listen[].tls",
  "log",
];

/**
 * The keys `next` changes that a reload does not apply (`io.threads`,
 * `listen[1].address`, `listen` when listeners come or go), in config
 * order: they keep their running values until a restart. A listener moved
 * or added keeps every listener as it runs, its TLS files included.
 */
export function restartOnly(running: Config, next: Config): string[] {
  const changed = changedKeys(running, next, "");
  const listenersKept = changed.some((key) => /^listen(\[\d+\]\.(transport|address))?$/.test(key));
  return changed.filter((key) => (listenersKept && key.startsWith("listen")) || !applied(key));
}

function applied(key: string): boolean {
  const general = key.replace(/\[\d+\]/g, "[]");
  return APPLIED_ON_RELOAD.some((k) => general === k || general.startsWith(`${k}.`) || general.startsWith(`${k}[`));
}

/** Paths where a and b differ: into objects and equal-length arrays of objects; anything else differs whole. */
function changedKeys(a: unknown, b: unknown, path: string): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  if (!isRecord(a) || !isRecord(b) || Array.isArray(a) !== Array.isArray(b)) return [path];
  if (Array.isArray(a) && Array.isArray(b) && (a.length !== b.length || !a.every(isRecord))) return [path];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.flatMap((k) => changedKeys(a[k], b[k], Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** `workers`: how many IO workers share limits.memory. */
export function reloadable(config: Config, workers: number): Reloadable {
  const { limits, health } = config;
  return {
    backends: { backends: config.backends },
    passiveHealth: { suspectAfter: health.downAfter, suspectFor: health.interval * health.upAfter },
    proxy: proxySettings(config, workers),
    trunks: config.trunks,
    gate: { total: limits.maxConnections, perAddress: limits.maxConnectionsPerIp },
    maxHandshakes: limits.maxHandshakes,
    maxEndpoints: limits.maxEndpoints,
  };
}

function proxySettings(config: Config, workers: number): ProxySettings {
  const { timers, firstResponseTimeout, failoverOn, retryAfter, flowTimer, foreignRoute } = config.sip;
  return {
    foreignRoute,
    answersPerSource: config.limits.answersPerSource,
    timers,
    firstResponseTimeout,
    failoverOn,
    retryAfter,
    flowTimer,
    // Pending transactions are heap too: no more than the worker's heap share holds.
    maxTransactions: Math.min(config.limits.maxTransactions, transactionBound(config.limits.memory, workers)),
    maxLingering: transactionBound(config.limits.memory, workers),
  };
}

/**
 * What a transaction costs on the heap, awaiting its answer or lingering
 * after it (server or client side, the parsed request, the forward, its
 * timers): 16 KiB, from floods that ran a 128 MiB heap out of memory at
 * 8 KiB.
 */
const TRANSACTION_COST = 16 * 1024;

/**
 * The worker's heap share (config/budget.ts) sizes both the transactions
 * awaiting an answer and those that only linger to absorb retransmissions
 * (at a few thousand calls a second over UDP, 32 s of Timer J would
 * otherwise hold hundreds of thousands); never under 1 024 of each.
 */
function transactionBound(memory: number, workers: number): number {
  return Math.max(1024, Math.floor(budgetShares(memory, workers).heapPerWorker / TRANSACTION_COST));
}
