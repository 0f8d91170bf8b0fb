import { getHeapStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { heapStats } from "../../../../src/runtime/worker/heap.ts";

describe("heapStats", () => {
  it("gives this thread's V8 heap: bytes in use under the limit V8 was given", () => {
    const { used, limit } = heapStats();
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(limit);
    expect(limit).toBe(getHeapStatistics().heap_size_limit);
  });
});
