/**
 * bench:compare's rounds. This 2-vCPU VM has slow spells that last a whole
 * 10-15 s run, in which a process's user and kernel time per unit of work
 * both grow ~1.5× (sipedge's IO thread 0.30 against 0.45-0.57 CPU-s per
 * 1 000 calls for the same tree, with fewer context switches per call: the
 * vCPU runs slower, the code does no more). One run per balancer, rate and
 * transport let one unlucky run decide the ratio; so every fixed-rate run
 * is done BENCH_ROUNDS times, the balancers taking turns within each round,
 * and the figure reported is the lowest of the rounds: a disturbance only
 * ever adds CPU time, so the lowest is the least disturbed. Every round's
 * figure is kept, in the JSON and in a row of the table, to show the spread.
 */
import type { BalancerName } from "./balancers.ts";

export type Target = "direct" | BalancerName;
export type Transport = "udp" | "tls";

export interface Run {
  readonly target: Target;
  readonly transport: Transport;
  /** Which round of the fixed rates (1-based); capacity steps have none. */
  readonly round?: number;
  /** Calls a second asked of sipp, and placed (calls over the run's length). */
  readonly rate: number;
  readonly placedRate: number;
  readonly calls: number;
  readonly successful: number;
  readonly failed: number;
  readonly seconds: number;
  /** The balancer's CPU over the run and its tail, seconds; per 1 000 calls (sipp's and the probe's). */
  readonly cpuSeconds: number;
  readonly cpuPer1000: number;
  /** Cores the balancer kept busy over the run (1 = one core the whole time). */
  readonly balancerCores: number;
  /** Share of the machine (all cores) the load tools took: sipp UAC and UASs, stunnel, the probe. */
  readonly loadShare: number;
  readonly probe?: { readonly answered: number; readonly lost: number; readonly p50: number; readonly p99: number };
  /** p50/p99 of the probe minus the direct probe's at the same rate, ms. */
  added?: { p50: number; p99: number };
  /** sipedge: calls it refused with 503 for overload over the run (its /metrics before and after). */
  readonly refused?: number;
}

/** cps.bench.ts's criterion: a rate is carried when at most 0.1 % of its calls fail. */
export const MAX_FAILED = 0.001;

export const carried = (r: Run): boolean => r.failed / r.calls <= MAX_FAILED;

/** One balancer at one rate over one transport, over every round. */
export interface Fixed {
  readonly target: BalancerName;
  readonly transport: Transport;
  readonly rate: number;
  /**
   * The run reported: the lowest CPU per 1 000 calls of the rounds that
   * carried the rate (a round that failed calls spent nothing on them, so
   * it would look cheap), of all rounds when none did. Its latency is the
   * one reported too: the least disturbed round is the one whose latency
   * says most about the balancer (a slow spell inflates both), and the
   * probe's times are not kept to pool.
   */
  readonly chosen: Run;
  /** Every round's CPU-s per 1 000 calls, in round order. */
  readonly cpuPer1000Rounds: readonly number[];
  /** Summed over the rounds, so any failure shows. */
  readonly calls: number;
  readonly failed: number;
  readonly refused?: number;
}

/** Folds the balancers' fixed-rate runs of every round into one Fixed per balancer, rate and transport. */
export function fold(runs: readonly Run[]): Fixed[] {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    if (r.target === "direct") continue;
    const key = `${r.target} ${r.rate} ${r.transport}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const pool = rs.some(carried) ? rs.filter(carried) : rs;
    const chosen = pool.reduce((a, b) => (b.cpuPer1000 < a.cpuPer1000 ? b : a));
    const refused = rs.every((r) => r.refused === undefined) ? undefined : rs.reduce((n, r) => n + (r.refused ?? 0), 0);
    return {
      target: chosen.target as BalancerName,
      transport: chosen.transport,
      rate: chosen.rate,
      chosen,
      cpuPer1000Rounds: rs.map((r) => r.cpuPer1000),
      calls: rs.reduce((n, r) => n + r.calls, 0),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      ...(refused === undefined ? {} : { refused }),
    };
  });
}

/**
 * The latency each run adds, against the direct probe at its rate: the
 * lowest p50 and p99 of every direct run at that rate (one each round and
 * one after the last), since a scheduling hiccup on the shared cores only
 * ever inflates the baseline.
 */
export function addLatency(runs: readonly Run[]): Map<number, { p50: number; p99: number }> {
  const bases = new Map<number, { p50: number; p99: number }>();
  for (const d of runs) {
    if (d.target !== "direct" || d.probe === undefined) continue;
    const b = bases.get(d.rate) ?? { p50: Number.NaN, p99: Number.NaN };
    // Math.min with a NaN is NaN: a run with no probe answered must not hide the others.
    const low = (x: number, y: number) => (Number.isNaN(x) ? y : Number.isNaN(y) ? x : Math.min(x, y));
    bases.set(d.rate, { p50: low(b.p50, d.probe.p50), p99: low(b.p99, d.probe.p99) });
  }
  for (const r of runs) {
    const base = bases.get(r.rate);
    if (r.target !== "direct" && r.probe !== undefined && base !== undefined)
      r.added = { p50: r.probe.p50 - base.p50, p99: r.probe.p99 - base.p99 };
  }
  return bases;
}

/** One turn in a round: a balancer over a transport, measured at a rate. */
export type Turn = (rate: number) => Promise<Run>;

/**
 * The fixed-rate runs: each round, at each rate, the direct run (the latency
 * baseline) and then every turn; after the last round, the direct run once
 * more at each rate, so even one round has a baseline before and after the
 * balancers. A round starts only when `fits(ms)` says one more of the
 * first's length still leaves room for what follows within the deadline.
 */
export async function rounds(options: {
  readonly rounds: number;
  readonly rates: readonly number[];
  readonly direct: (rate: number) => Promise<Run>;
  readonly turns: readonly Turn[];
  readonly fits: (roundMs: number) => boolean;
  readonly log: (line: string) => void;
}): Promise<Run[]> {
  const runs: Run[] = [];
  const record = (r: Run, round?: number) => {
    const tagged = round === undefined ? r : { ...r, round };
    runs.push(tagged);
    return tagged;
  };
  let roundMs = 0;
  for (let round = 1; round <= options.rounds; round++) {
    if (round > 1 && !options.fits(roundMs)) {
      options.log(`  stopping after ${round - 1} of ${options.rounds} rounds: another would pass the deadline`);
      break;
    }
    options.log(`round ${round} of ${options.rounds}:`);
    const t0 = performance.now();
    for (const rate of options.rates) {
      record(await options.direct(rate), round);
      for (const turn of options.turns) record(await turn(rate), round);
    }
    roundMs = Math.max(roundMs, performance.now() - t0);
  }
  for (const rate of options.rates) record(await options.direct(rate));
  return runs;
}

/** A Fixed's rounds as the table's spread row shows them: "0.36 / 0.41 / 0.52", † on a round that failed calls. */
export function spread(runs: readonly Run[], f: Fixed): string {
  return runs
    .filter((r) => r.target === f.target && r.rate === f.rate && r.transport === f.transport)
    .map((r) => `${r.cpuPer1000.toFixed(2)}${carried(r) ? "" : " †"}`)
    .join(" / ");
}
