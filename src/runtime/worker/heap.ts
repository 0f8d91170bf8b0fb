import { getHeapStatistics } from "node:v8";
import { budgetShares } from "../../config/budget.ts";

/**
 * The worker's V8 heap in bytes: in use, and the most it may grow to (its
 * share of limits.memory, set when the worker starts). Used creeping up to
 * the limit is a leak in JavaScript; RSS growing while this stays put is
 * the native side (TLS state, the allocator).
 */
export type HeapStats = { readonly used: number; readonly limit: number };

/** This thread's heap, for a scrape. */
export function heapStats(): HeapStats {
  const heap = getHeapStatistics();
  return { used: heap.used_heap_size, limit: heap.heap_size_limit };
}

/**
 * V8 heap bounds for each IO worker. Message bytes live in the buffer pool,
 * off the heap, and transactions are bounded by count (proxy/core.ts), so
 * the heap's live set stays small; what a bound stops is V8 letting garbage
 * pile up to gigabytes at a flood's allocation rate before collecting (the
 * process's memory then follows the garbage, not the work). A quarter of
 * limits.memory per worker (the quarter the lingering transactions are
 * sized from), never under 128 MiB.
 */
export function heapLimits(
  memory: number,
  workers: number,
): { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number } {
  const share = budgetShares(memory, workers).heapPerWorker / (1024 * 1024);
  return { maxOldGenerationSizeMb: Math.max(128, Math.floor(share)), maxYoungGenerationSizeMb: 16 };
}
