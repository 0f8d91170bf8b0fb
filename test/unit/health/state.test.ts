import { describe, expect, it } from "vitest";
import { HealthTable, RTT_BUCKETS } from "../../../src/health/state.ts";

describe("the shared health table", () => {
  it("keeps a histogram of answered probes' round trips that every thread reads from the same memory", () => {
    const writer = new HealthTable(["a", "b"]);
    const reader = new HealthTable(["a", "b"], writer.buffer);
    for (const micros of [300, 800, 800, 40_000, 2_500_000]) writer.setRtt("a", micros);
    writer.setRtt("a", undefined); // a failed probe: no round trip to count
    const h = reader.rttHistogram("a");
    const bucketOf = (seconds: number) => RTT_BUCKETS.findIndex((le) => seconds <= le);
    expect(h?.count).toBe(5);
    expect(h?.buckets[bucketOf(0.0003)]).toBe(1);
    expect(h?.buckets[bucketOf(0.0008)]).toBe(2);
    expect(h?.buckets[bucketOf(0.04)]).toBe(1);
    expect(h?.buckets[RTT_BUCKETS.length]).toBe(1); // above every bound
    expect(h?.sumSeconds).toBeCloseTo(2.5419, 6);
    expect(reader.rttMicros("a")).toBeUndefined();
    expect(reader.rttHistogram("b")?.count).toBe(0);
    expect(reader.rttHistogram("nope")).toBeUndefined();
  });

  it("starts afresh on a new backend list", () => {
    const t = new HealthTable(["a"]);
    t.setRtt("a", 1000);
    HealthTable.reset(t.buffer);
    expect(new HealthTable(["a"], t.buffer).rttHistogram("a")?.count).toBe(0);
  });
});
