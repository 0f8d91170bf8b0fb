import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { getHeapStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { heapStats } from "../../../../src/runtime/worker/heap.ts";

const run = promisify(execFile);

describe("heapStats", () => {
  it("gives this thread's V8 heap: bytes in use under the limit V8 was given", () => {
    const { used, limit } = heapStats();
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(limit);
    expect(limit).toBe(getHeapStatistics().heap_size_limit);
  });
});

/** Full collections in test/fixtures/old-generation-churn.ts's worker, with or without growOldGeneration first. */
async function majorCollections(grow: boolean): Promise<number> {
  const fixture = fileURLToPath(new URL("../../../fixtures/old-generation-churn.ts", import.meta.url));
  const { stdout } = await run(process.execPath, [fixture, ...(grow ? ["grow"] : [])], { timeout: 30_000 });
  return Number(stdout.trim());
}

describe("growOldGeneration", () => {
  it("lets a worker's old generation grow before the next full collection: fewer of them for the same garbage", async () => {
    const [before, after] = await Promise.all([majorCollections(false), majorCollections(true)]);
    // ~90 MB promoted over 3 s beside a 50 MB live set: V8's own sizing collects every 10-15 MB (7-8 here),
    // doubling the live set first every ~50 MB (4).
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(5);
    expect(before - after).toBeGreaterThanOrEqual(2);
  }, 40_000);
});
