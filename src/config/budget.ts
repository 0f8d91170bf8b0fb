import type { Config } from "./schema.ts";

/**
 * How limits.memory is spent (DESIGN.md principle 4). Half is the IO
 * workers' buffer pools (message bytes); a quarter their heaps (transaction
 * and flow state, with the finished transactions kept sized from it); a
 * quarter what connections cost outside both (TLS and socket state, mostly
 * native). Each figure split between the workers where it is per worker.
 */
export interface BudgetShares {
  readonly poolPerWorker: number;
  readonly heapPerWorker: number;
  readonly connections: number;
}

export function budgetShares(memory: number, workers: number): BudgetShares {
  const n = Math.max(1, workers);
  return {
    poolPerWorker: Math.floor(memory / 2 / n),
    heapPerWorker: Math.floor(memory / 4 / n),
    connections: memory / 4,
  };
}

/**
 * What one idle client TLS connection holds in sipedge (measured: RSS with
 * 4 000 idle connections on one worker, 50 KiB each; Node's own TLS state
 * is most of it).
 */
export const CONNECTION_COST = 50 * 1024;

/** Where the config asks for more than its budget holds: said at check-config and at start, not refused. */
export function budgetWarnings(config: Config): string[] {
  const { memory, maxConnections } = config.limits;
  const room = Math.floor(budgetShares(memory, 1).connections / CONNECTION_COST);
  if (maxConnections <= room) return [];
  const need = maxConnections * CONNECTION_COST * 4;
  return [
    `limits.maxConnections: ${maxConnections} connections at about 50 KiB each need ${size(maxConnections * CONNECTION_COST)}, ` +
      `more than the quarter of limits.memory (${size(memory)}) kept for them, which holds ${room}: ` +
      `raise limits.memory to ${size(need)} or lower limits.maxConnections`,
  ];
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}
