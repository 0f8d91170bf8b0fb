import { getHeapStatistics } from "node:v8";

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
