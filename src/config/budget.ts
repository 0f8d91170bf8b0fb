/**
 * How limits.memory is spent (principle 4). Half is the IO
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
 * What one idle client TLS connection holds in sipedge, with a little room:
 * `npm run bench:connections` measures 49-51 KiB (RSS growth with 4 000
 * idle connections on one worker) and 47.5 KiB with 18 976 (bare Node's TLS
 * server 48.0 KiB in the same run), as much as a bare Node TLS server's;
 * Node's own TLS state is nearly all of it.
 */
export const CONNECTION_COST = 52 * 1024;

/** How many connections the connections' quarter of `memory` holds: limits.maxConnections' default and its most. */
export function connectionRoom(memory: number): number {
  return Math.floor(budgetShares(memory, 1).connections / CONNECTION_COST);
}

/** Why maxConnections does not fit the budget, or undefined when it does. */
export function connectionBudgetProblem(maxConnections: number, memory: number): string | undefined {
  const room = connectionRoom(memory);
  if (maxConnections <= room) return undefined;
  return (
    `${maxConnections} connections at about ${CONNECTION_COST / 1024} KiB each need ${size(maxConnections * CONNECTION_COST)}, ` +
    `more than the quarter of limits.memory (${size(memory)}) kept for them, which holds ${room}: ` +
    `raise limits.memory to ${size(maxConnections * CONNECTION_COST * 4)} or lower limits.maxConnections`
  );
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}
