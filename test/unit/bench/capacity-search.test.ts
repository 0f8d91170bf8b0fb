import { describe, expect, it } from "vitest";
import { searchCapacity } from "../../bench/compare/capacity-search.ts";

const STEPS = { from: 1000, step: 1000, max: 12_000 };

/** A balancer that carries up to `limit` calls/s, except the runs `spells` names (rate -> how many of its first tries fail). */
function balancer(limit: number, spells: Record<number, number> = {}) {
  const tried: number[] = [];
  const left = new Map(Object.entries(spells).map(([rate, n]) => [Number(rate), n]));
  const carried = async (rate: number) => {
    tried.push(rate);
    const spell = left.get(rate) ?? 0;
    left.set(rate, spell - 1);
    return spell <= 0 && rate <= limit;
  };
  return { tried, carried };
}

describe("bench:compare's capacity search", () => {
  it("steps up to the first rate refused twice, then tries halfway back", async () => {
    const b = balancer(3600);
    expect(await searchCapacity(STEPS, b.carried)).toEqual({ best: 3500, failedAt: 4000 });
    expect(b.tried).toEqual([1000, 2000, 3000, 4000, 4000, 3500]);
  });

  it("runs a refused step once more, so one slow spell does not end the search", async () => {
    const b = balancer(3600, { 3000: 1 });
    expect(await searchCapacity(STEPS, b.carried)).toEqual({ best: 3500, failedAt: 4000 });
    expect(b.tried).toEqual([1000, 2000, 3000, 3000, 4000, 4000, 3500]);
  });

  it("stops where a step is refused twice, and the halfway rate gets its second try too", async () => {
    const b = balancer(3600, { 3000: 2, 2500: 1 });
    expect(await searchCapacity(STEPS, b.carried)).toEqual({ best: 2500, failedAt: 3000 });
    expect(b.tried).toEqual([1000, 2000, 3000, 3000, 2500, 2500]);
  });

  it("gives 0 when not even the first step is carried, and the maximum when every step is", async () => {
    expect(await searchCapacity(STEPS, balancer(400).carried)).toEqual({ best: 0, failedAt: 1000 });
    expect(await searchCapacity(STEPS, balancer(50_000).carried)).toEqual({ best: 12_000, failedAt: 0 });
  });
});
