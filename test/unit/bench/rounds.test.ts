import { describe, expect, it } from "vitest";
import { addLatency, fold, type Run, rounds, spread } from "../../bench/compare/rounds.ts";

/** A fixed-rate run with only what the folding reads set to something telling. */
function run(over: Partial<Run> & Pick<Run, "target" | "cpuPer1000">): Run {
  return {
    transport: "udp",
    rate: 1000,
    placedRate: 1000,
    calls: 8000,
    successful: 8000 - (over.failed ?? 0),
    failed: 0,
    seconds: 8,
    cpuSeconds: over.cpuPer1000 * 8,
    balancerCores: 0.3,
    loadShare: 0.1,
    ...over,
  };
}

describe("bench:compare rounds", () => {
  it("reports each balancer's lowest round, keeps every round's figure and sums failures and 503s", () => {
    const runs = [
      run({ target: "sipedge", round: 1, cpuPer1000: 0.52, refused: 0 }),
      run({ target: "kamailio", round: 1, cpuPer1000: 0.25 }),
      run({ target: "sipedge", round: 2, cpuPer1000: 0.36, refused: 3, failed: 3 }),
      run({ target: "kamailio", round: 2, cpuPer1000: 0.38, failed: 1 }),
      run({ target: "sipedge", round: 3, cpuPer1000: 0.41, refused: 2, failed: 2 }),
    ];
    const [sipedge, kamailio] = fold(runs);
    expect(sipedge?.chosen.round).toBe(2);
    expect(sipedge?.cpuPer1000Rounds).toEqual([0.52, 0.36, 0.41]);
    expect([sipedge?.failed, sipedge?.calls, sipedge?.refused]).toEqual([5, 24000, 5]);
    expect(kamailio?.chosen.cpuPer1000).toBe(0.25);
    expect([kamailio?.failed, kamailio?.refused]).toEqual([1, undefined]);
    expect(spread(runs, sipedge as NonNullable<typeof sipedge>)).toBe("0.52 / 0.36 / 0.41");
  });

  it("passes over a cheaper round that failed calls, unless no round carried the rate", () => {
    const some = fold([
      run({ target: "sipedge", cpuPer1000: 0.2, failed: 400 }),
      run({ target: "sipedge", cpuPer1000: 0.4 }),
    ]);
    expect(some[0]?.chosen.cpuPer1000).toBe(0.4);
    const none = fold([
      run({ target: "sipedge", cpuPer1000: 0.2, failed: 400 }),
      run({ target: "sipedge", cpuPer1000: 0.3, failed: 100 }),
    ]);
    expect(none[0]?.chosen.cpuPer1000).toBe(0.2);
    expect(spread([run({ target: "sipedge", cpuPer1000: 0.2, failed: 400 })], none[0] as never)).toBe("0.20 †");
  });

  it("takes the latency baseline as the lowest of the direct runs at each rate, skipping one with no answer", () => {
    const probe = (p50: number, p99: number) => ({ answered: 10, lost: 0, p50, p99 });
    const runs = [
      run({ target: "direct", cpuPer1000: 0, probe: probe(0.5, 4) }),
      run({ target: "direct", cpuPer1000: 0, probe: probe(Number.NaN, Number.NaN) }),
      run({ target: "sipedge", cpuPer1000: 0.3, probe: probe(1.5, 9) }),
      run({ target: "direct", cpuPer1000: 0, probe: probe(0.7, 3) }),
      run({ target: "direct", rate: 2000, cpuPer1000: 0, probe: probe(9, 9) }),
    ];
    expect(addLatency(runs).get(1000)).toEqual({ p50: 0.5, p99: 3 });
    expect(runs[2]?.added).toEqual({ p50: 1, p99: 6 });
  });

  it("runs the direct baseline and every turn each round, the baseline once more after, and stops when out of time", async () => {
    const order: string[] = [];
    const turn = (name: "sipedge" | "kamailio") => async (rate: number) => {
      order.push(`${name} ${rate}`);
      return run({ target: name, rate, cpuPer1000: 0.3 });
    };
    const direct = async (rate: number) => {
      order.push(`direct ${rate}`);
      return run({ target: "direct", rate, cpuPer1000: 0 });
    };
    const lines: string[] = [];
    let allowed = 1; // a second round fits, a third does not
    const runs = await rounds({
      rounds: 3,
      rates: [1000, 2000],
      direct,
      turns: [turn("sipedge"), turn("kamailio")],
      fits: () => allowed-- > 0,
      log: (line) => lines.push(line),
    });
    const round = ["direct 1000", "sipedge 1000", "kamailio 1000", "direct 2000", "sipedge 2000", "kamailio 2000"];
    expect(order).toEqual([...round, ...round, "direct 1000", "direct 2000"]);
    expect(runs.map((r) => r.round)).toEqual([...round.map(() => 1), ...round.map(() => 2), undefined, undefined]);
    expect(lines.at(-1)).toContain("stopping after 2 of 3 rounds");
  });
});
