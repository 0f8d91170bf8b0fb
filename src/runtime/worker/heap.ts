import { getHeapStatistics, setFlagsFromString } from "node:v8";
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

/**
 * How far V8 lets the old generation grow past what a full collection
 * left before it starts the next one, in percent. V8 picks 10–40 % itself
 * for a heap capped under 1 GiB (as heapLimits caps it), so an IO worker
 * whose live set was ~40 MB (the lingering transactions, and then the
 * buffer pool's slot objects, made at start-up until 435cf37) ran a full
 * mark-compact every 1.3 s at 1 000 calls/s over
 * UDP, each marking all 40 MB again to free 5–8 MB; V8's helper threads
 * were a fifth of the process. At 100 % one runs every ~4 s, and the
 * helper threads' CPU per call fell from 0.058–0.084 to 0.038–0.055
 * CPU-s per 1 000 calls (--trace-gc, and /proc per thread in a loop of
 * sipp at 1 000 calls/s through one IO worker: 9 runs against 7). The cap
 * still bounds the heap: V8 never grows past it.
 */
const OLD_GENERATION_GROWTH_PERCENT = 100;

/**
 * Sets V8's old-generation growth for the isolates started after it: a
 * process-wide V8 flag, so the supervisor calls it before its first worker.
 */
export function growOldGeneration(): void {
  setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`);
}
