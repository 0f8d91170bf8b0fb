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
