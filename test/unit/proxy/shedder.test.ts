import { describe, expect, it } from "vitest";
import { LoadShedder } from "../../../src/proxy/shedder.ts";

/** Offers `n` new requests in one window and says how many were let in. */
function offer(s: LoadShedder, n: number): number {
  let admitted = 0;
  for (let i = 0; i < n; i++) if (s.take()) admitted++;
  return admitted;
}

describe("the CPU ration", () => {
  it("lets everything in while the loop has room", () => {
    const s = new LoadShedder();
    for (let w = 0; w < 20; w++) {
      expect(offer(s, 1000)).toBe(1000);
      s.sample(0.7);
    }
    expect(s.ration).toBeUndefined();
  });

  it("cuts new work while the loop is saturated, down to a floor that keeps service going", () => {
    const s = new LoadShedder();
    offer(s, 500);
    s.sample(0.97);
    expect(s.ration).toBe(400);
    expect(offer(s, 1000)).toBe(400);
    for (let w = 0; w < 50; w++) {
      s.sample(0.99);
      offer(s, 1000);
    }
    expect(s.ration).toBe(10);
    expect(offer(s, 1000)).toBe(0); // this window's 10 went above
    s.sample(0.99);
    expect(offer(s, 1000)).toBe(10);
  });

  it("gives the ration back step by step as the loop recovers, and lifts it when the loop is idle", () => {
    const s = new LoadShedder();
    offer(s, 100);
    s.sample(0.95);
    const cut = s.ration ?? 0;
    s.sample(0.6);
    expect(s.ration).toBeGreaterThan(cut);
    s.sample(0.8); // between: held
    const held = s.ration;
    s.sample(0.85);
    expect(s.ration).toBe(held);
    s.sample(0.3);
    expect(s.ration).toBeUndefined();
    expect(s.saturatedWindows).toBe(1);
  });
});
