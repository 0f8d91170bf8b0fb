import { describe, expect, it } from "vitest";
import { LoadShedder } from "../../../src/proxy/shedder.ts";

/** Offers `n` new requests in one window and says how many were let in. */
function offer(s: LoadShedder, n: number): number {
  let admitted = 0;
  for (let i = 0; i < n; i++) if (s.take()) admitted++;
  return admitted;
}

describe("the CPU ration", () => {
  it("lets everything in while the loop has room, and shrugs off a single busy window", () => {
    const s = new LoadShedder();
    for (let w = 0; w < 20; w++) {
      expect(offer(s, 1000)).toBe(1000);
      s.sample(w === 10 ? 1 : 0.7);
    }
    expect(s.ration).toBeUndefined();
  });

  it("cuts new work in proportion while the loop stays saturated, down to a floor that keeps service going", () => {
    const s = new LoadShedder();
    // Smoothed, saturation shows after a few busy windows.
    for (let w = 0; w < 6 && s.ration === undefined; w++) {
      offer(s, 500);
      s.sample(1);
    }
    const first = s.ration ?? 0;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(500);
    expect(offer(s, 1000)).toBe(first);
    for (let w = 0; w < 60; w++) {
      s.sample(1);
      offer(s, 1000);
    }
    expect(s.ration).toBe(10);
    s.sample(1);
    expect(offer(s, 1000)).toBe(10);
  });

  it("gives the ration back as the loop recovers, and lifts it when the loop is idle", () => {
    const s = new LoadShedder();
    for (let w = 0; w < 6 && s.ration === undefined; w++) {
      offer(s, 200);
      s.sample(1);
    }
    const cut = s.ration ?? 0;
    expect(cut).toBeGreaterThan(0);
    s.sample(0.5);
    s.sample(0.5); // smoothed under the target: room, so it grows
    expect(s.ration).toBeGreaterThan(cut);
    for (let w = 0; w < 5; w++) s.sample(0.2);
    expect(s.ration).toBeUndefined();
    expect(s.saturatedWindows).toBeGreaterThan(0);
  });
});
