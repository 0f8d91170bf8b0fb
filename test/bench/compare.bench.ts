/**
 * `npm run bench:compare`: what a call costs sipedge beside Kamailio and a
 * bare Node UDP relay, on the same machine in the same run (issue 16: the
 * machine's speed drifts from day to day, so only ratios within one run
 * mean anything).
 *
 * sipp UAC -> balancer -> two sipp UASs on loopback, for each balancer:
 * sipedge on one IO thread, Kamailio (test/bench/compare/kamailio.cfg: tm,
 * rr, dispatcher by Call-ID hash with OPTIONS probing, one UDP and one TLS
 * worker process) and the relay (test/bench/compare/relay.ts, the floor).
 * 1. Fixed rates (BENCH_COMPARE_RATES, 1000,2000 calls/s) for BENCH_SECONDS
 *    (8) each, over UDP and over one TLS connection (sipp over TCP to a
 *    stunnel client, stunnel over TLS to the balancer; Debian's sipp has no
 *    TLS), the balancers taking turns at each rate so drift hits all alike,
 *    in BENCH_ROUNDS (3) rounds: each balancer's figure at a rate over a
 *    transport is its lowest CPU of the rounds (compare/rounds.ts says why),
 *    its failed calls and 503s the sum of the rounds'.
 *    Per run: the balancer's CPU (/proc ticks of every thread of every one
 *    of its processes, over the run and BENCH_TAIL_SECONDS after it, when
 *    timers free what the calls left) per 1 000 calls, failed calls, the
 *    latency it adds (probe calls through it, compare/probe.ts, against the
 *    same probe straight to a UAS while sipp sends each UAS the same load
 *    straight, before and after the balancers' turns, the lower taken) and
 *    the load tools' share of the machine (sipp, stunnel, the probe), and
 *    for sipedge the calls it refused with 503 (its /metrics before and
 *    after), so the issue's admission target can be read off: no 503 at a
 *    rate under 90 % of the capacity the same run measured.
 * 2. Capacity over UDP: steps of BENCH_STEP_SECONDS (6) from 2 000 calls/s
 *    up by 1 000 until more than 0.1 % of calls fail (or the load tool
 *    cannot place the rate) twice in a row, then one step halfway back
 *    (compare/capacity-search.ts); then sipp straight
 *    to the UASs at the highest rate tried, to show the load tool was not
 *    what gave out.
 * Results: bench-results/compare-<time>.json, the latest also as
 * docs/perf/compare.json with the chart docs/perf/compare.svg.
 * Bounded: every sipp run has a call count and a timeout, the whole bench
 * a 15-minute deadline after which every process it started is killed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, release } from "node:os";
import { join } from "node:path";
import { freePort, Processes, sleep, startStunnel } from "../helpers/net.ts";
import { runBounded } from "./bounded.ts";
import { type Balancer, certificate, startKamailio, startRelay, startSipedge } from "./compare/balancers.ts";
import { searchCapacity } from "./compare/capacity-search.ts";
import { percentile, startProbe } from "./compare/probe.ts";
import {
  addLatency,
  carried,
  type Fixed,
  fold,
  type Run,
  rounds,
  spread,
  type Target,
  type Transport,
} from "./compare/rounds.ts";
import { RECV_TIMEOUT_S, runUac, startUas } from "./compare/sipp.ts";
import { type CostBar, chart } from "./compare/svg.ts";
import { loadTicks, machineTicks, processTicks } from "./cpu.ts";
import { ROOT, saveResult } from "./results.ts";

const env = process.env;
const RATES = (env.BENCH_COMPARE_RATES ?? "1000,2000").split(",").map(Number);
/**
 * Each fixed-rate run is done ROUNDS times and the lowest CPU figure kept
 * (compare/rounds.ts: this VM has slow spells a whole run long). 3 rounds of
 * 8 s runs instead of one of 15 s: three chances at an undisturbed run, and
 * the whole default bench stays inside its 15-minute bound: 3 rounds × 2
 * rates × 5 balancer runs × (8 s + the 6 s tail), 8 direct runs of 10 s,
 * warm-up and the capacity search (4-5 minutes with failed steps run
 * again: compare/capacity-search.ts) came to 14 minutes (2026-12-04
 * 17:12-17:26), where one round of 15 s came to 8; capacity() stops a
 * search that would pass the bound. 8 s at 1 000 calls/s is still 8 000
 * calls and ~250 ticks of sipedge's CPU, far above /proc's 10 ms resolution.
 */
const ROUNDS = Math.max(1, Number(env.BENCH_ROUNDS ?? 3));
const SECONDS = Number(env.BENCH_SECONDS ?? 8);
/** Kamailio's tm frees a finished transaction 5 s later (its wait timer, tm's wt_timer default): a second more. */
const TAIL_SECONDS = Number(env.BENCH_TAIL_SECONDS ?? 6);
const WARMUP_SECONDS = Number(env.BENCH_WARMUP_SECONDS ?? 3);
const STEP_SECONDS = Number(env.BENCH_STEP_SECONDS ?? 6);
/**
 * The capacity search's first step. Every balancer carried 1 000 calls/s in
 * the fixed-rate runs just before it, and with failed steps run twice a
 * search from 1 000 took the default run to 14 of its 15 minutes (16:57 to
 * 17:11 on 2026-12-04). From 2 000 it saves four steps, though the next run
 * took 14 minutes too (Kamailio's search went two steps higher): the
 * guard in capacity() is what keeps it inside the bound. A balancer that
 * cannot carry 2 000 still gets 1 000 tried (the halfway step).
 */
const CAPACITY_FROM = Number(env.BENCH_CAPACITY_FROM ?? 2000);
const CAPACITY_STEP = Number(env.BENCH_CAPACITY_STEP ?? 1000);
const CAPACITY_MAX = Number(env.BENCH_CAPACITY_MAX ?? 12000);
const CAPACITY = env.BENCH_CAPACITY !== "0";
const WHICH = (env.BENCH_BALANCERS ?? "sipedge,kamailio,relay").split(",");
/** The issue's bound on the whole benchmark. */
const DEADLINE_MS = Number(env.BENCH_DEADLINE_MINUTES ?? 15) * 60_000;
/** Below this share of the asked rate, sipp could not place the calls: the step says nothing about the balancer. */
const MIN_PLACED = 0.9;

const processes = new Processes();
const balancers: Balancer[] = [];

let uasPids: number[] = [];
const stunnelPids: number[] = [];

/** The load tools' ticks: sipp UACs reaped (cutime), the UASs and stunnels running, this process (the probe). */
function loadNow(): number {
  return loadTicks([...uasPids, ...stunnelPids]) + processTicks(process.pid);
}

function balancerTicks(b: Balancer | undefined): number {
  return b === undefined ? 0 : b.pids().reduce((n, pid) => n + processTicks(pid), 0);
}

/**
 * One measured run: `rate` calls a second for `seconds` from sipp, shared
 * evenly by one sipp UAC for each of `ports` (a balancer's UDP listener, a
 * stunnel client in front of its TLS one, or for the baseline the two UASs
 * themselves: each UAS then carries what it does behind a balancer), the
 * probe beside it when `probePort` is given.
 */
async function measure(
  target: Target,
  b: Balancer | undefined,
  transport: Transport,
  ports: readonly number[],
  rate: number,
  seconds: number,
  options: { probePort?: number | undefined; tail: number },
): Promise<Run> {
  const shares = ports.map((_, i) => Math.floor(rate / ports.length) + (i < rate % ports.length ? 1 : 0));
  const requested = rate * seconds;
  const refused0 = await b?.refused?.();
  const [b0, l0, t0] = [balancerTicks(b), loadNow(), performance.now()];
  const probe = options.probePort === undefined ? undefined : await startProbe(options.probePort, transport);
  const each = await Promise.all(
    ports.map((port, i) =>
      runUac(processes, `127.0.0.1:${port}`, {
        calls: (shares[i] ?? 0) * seconds,
        rate: shares[i] ?? 0,
        transport: transport === "udp" ? "u1" : "t1",
        timeoutSeconds: seconds * 2 + 20,
      }),
    ),
  );
  const counts = {
    calls: each.reduce((n, c) => n + c.calls, 0),
    successful: each.reduce((n, c) => n + c.successful, 0),
  };
  // The run's length is sipp's: the probe may still wait out a lost call's deadline.
  const runSeconds = (performance.now() - t0) / 1000;
  const probed = await probe?.stop();
  await sleep(options.tail * 1000);
  const [b1, l1, t1] = [balancerTicks(b), loadNow(), performance.now()];
  const refused1 = await b?.refused?.();
  const cpuSeconds = (b1 - b0) / 100;
  const calls = counts.calls + (probed === undefined ? 0 : probed.times.length + probed.lost);
  return {
    target,
    transport,
    rate,
    // A call left unanswered can keep sipp open RECV_TIMEOUT_S after the last is placed: not a rate it failed to
    // place, so that much of the run does not count against the rate (never below the run's nominal length).
    placedRate: counts.calls / Math.max(seconds, runSeconds - (counts.successful < requested ? RECV_TIMEOUT_S : 0)),
    calls: requested,
    successful: counts.successful,
    failed: requested - counts.successful,
    seconds: runSeconds,
    cpuSeconds,
    cpuPer1000: calls === 0 ? Number.NaN : (cpuSeconds / calls) * 1000,
    balancerCores: cpuSeconds / runSeconds,
    loadShare: (l1 - l0) / machineTicks((t1 - t0) / 1000),
    ...(refused0 === undefined || refused1 === undefined ? {} : { refused: refused1 - refused0 }),
    ...(probed === undefined
      ? {}
      : {
          probe: {
            answered: probed.times.length,
            lost: probed.lost,
            p50: percentile(probed.times, 50),
            p99: percentile(probed.times, 99),
          },
        }),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(3));

function describe(r: Run): string {
  const who = `${r.target} ${r.transport}`.padEnd(13);
  const cost =
    r.target === "direct" ? "" : `${r.cpuPer1000.toFixed(3)} CPU-s/1000 calls (${r.balancerCores.toFixed(2)} cores), `;
  const latency =
    r.probe === undefined
      ? ""
      : `, probe p50 ${ms(r.probe.p50)} p99 ${ms(r.probe.p99)} ms` +
        (r.added === undefined ? "" : ` (added ${ms(r.added.p50)}/${ms(r.added.p99)})`) +
        (r.probe.lost > 0 ? `, ${r.probe.lost} probes lost` : "");
  return (
    `  ${who} ${String(r.rate).padStart(5)}/s: ${cost}${r.successful}/${r.calls} ok, ${r.failed} failed` +
    `${r.refused ? ` (${r.refused} refused with 503)` : ""}, ` +
    `placed ${r.placedRate.toFixed(0)}/s, load tools ${pct(r.loadShare)} of the machine${latency}`
  );
}

interface Capacity {
  readonly target: Target;
  /** Highest rate carried with at most 0.1 % failed calls (0: not even the first). */
  readonly cps: number;
  /** Why the search stopped. */
  readonly stop: string;
  readonly steps: Run[];
}

/**
 * Stepped search over UDP: up by CAPACITY_STEP from CAPACITY_FROM until a
 * step fails, then one step halfway back; `only`: just that one rate (the
 * load tool's own check).
 */
async function capacity(
  target: Target,
  b: Balancer | undefined,
  ports: readonly number[],
  only?: number,
): Promise<Capacity> {
  const steps: Run[] = [];
  /** Why each rate was not carried: the search's end is told by the rate it ended at, not the halfway one after it. */
  const why = new Map<number, string>();
  const attempt = async (rate: number): Promise<boolean> => {
    // A step, its drain and writing the results must fit in the bound: past it runBounded stops everything and
    // nothing is written, so a search that second tries have made long ends here instead.
    if (performance.now() + (STEP_SECONDS + 2 + 4) * 1000 + 30_000 > DEADLINE_MS) {
      why.set(rate, `stopped before ${rate}/s: the ${DEADLINE_MS / 60_000}-minute bound was near`);
      return false;
    }
    const r = await measure(target, b, "udp", ports, rate, STEP_SECONDS, { tail: 2 });
    steps.push(r);
    const ok = carried(r) && r.placedRate >= rate * MIN_PLACED;
    console.log(`${describe(r)}${ok ? "" : " <- not carried"}`);
    if (!ok) {
      const shm = b?.log().includes("could not allocate shared memory")
        ? "; Kamailio ran out of shared memory (raise BENCH_KAMAILIO_SHM_MB)"
        : "";
      why.set(
        rate,
        (carried(r)
          ? `sipp placed only ${r.placedRate.toFixed(0)} of ${rate} calls/s (the load tool's limit)`
          : `${r.failed} of ${r.calls} calls failed at ${rate}/s`) + shm,
      );
      await sleep(4000); // let a saturated balancer drain before the next step
    }
    return ok;
  };
  if (only !== undefined) {
    const cps = (await attempt(only)) ? only : 0;
    return { target, cps, stop: why.get(only) ?? `carried ${only}/s, not tried above`, steps };
  }
  const { best, failedAt } = await searchCapacity(
    { from: CAPACITY_FROM, step: CAPACITY_STEP, max: CAPACITY_MAX },
    attempt,
  );
  const stop = why.get(failedAt) ?? `reached ${CAPACITY_MAX}/s (BENCH_CAPACITY_MAX)`;
  return { target, cps: best, stop, steps };
}

/** A tool's version from what it prints (stunnel prints it on stderr). */
function version(command: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 5000 });
  return pattern.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`)?.[0]?.trim() ?? `${command}: unknown`;
}

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  return {
    cpu,
    cores: availableParallelism(),
    kernel: release(),
    node: process.version,
    kamailio: version("kamailio", ["-v"], /kamailio [\d.]+/),
    sipp: version("sipp", ["-v"], /SIPp v[\w.-]*\w/),
    stunnel: version("stunnel", ["-version"], /stunnel [\d.]+/),
  };
}

/** Which sipedge ran: the commit, and whether its source had changes not committed (so a figure can be tied to code). */
function sipedgeSource(): string {
  const cli = env.BENCH_SIPEDGE_CLI ?? join(ROOT, "src", "cli.ts");
  const dir = join(cli, "..", "..");
  const git = (...args: string[]) => spawnSync("git", ["-C", dir, ...args], { encoding: "utf8" }).stdout?.trim() ?? "";
  const commit = git("rev-parse", "--short", "HEAD");
  if (env.BENCH_SIPEDGE_CLI !== undefined && dir !== ROOT) return `${cli}${commit === "" ? "" : ` (git ${commit})`}`;
  return `${cli} at ${commit}${git("status", "--porcelain", "src") === "" ? "" : " with uncommitted changes in src/"}`;
}

const NAMES: Record<Target, string> = {
  direct: "sipp direct",
  sipedge: "sipedge",
  kamailio: "Kamailio",
  relay: "relay",
};

/** The Markdown table of the fixed-rate runs, as the README shows it: each balancer's chosen round (rounds.ts). */
function markdown(runs: readonly Run[], fixed: readonly Fixed[], capacities: readonly Capacity[]): string {
  const cols = RATES.flatMap((rate) => (["udp", "tls"] as const).map((transport) => ({ rate, transport })));
  const find = (t: Target, c: { rate: number; transport: Transport }) =>
    fixed.find((f) => f.target === t && f.rate === c.rate && f.transport === c.transport);
  // A run that failed calls spent less on the ones it refused: its cost is not a carried call's.
  const mark = (...fs: Fixed[]) => (fs.some((f) => !carried(f.chosen)) ? " †" : "");
  const row = (label: string, cell: (c: (typeof cols)[number]) => string) =>
    `| ${label} | ${cols.map(cell).join(" | ")} |`;
  const lines = [`| | ${cols.map((c) => `${c.transport.toUpperCase()} ${c.rate}/s`).join(" | ")} |`];
  lines.push(`|---|${cols.map(() => "---:").join("|")}|`);
  const targets = (["sipedge", "kamailio", "relay"] as const).filter((t) => fixed.some((f) => f.target === t));
  /** One row per balancer: `label` after its name, `cell` of its Fixed in each column ("–" where none). */
  const perTarget = (label: string, cell: (f: Fixed) => string | undefined, only: readonly Target[] = targets) => {
    for (const t of targets.filter((x) => only.includes(x)))
      lines.push(
        row(`${NAMES[t]}, ${label}`, (c) => {
          const f = find(t, c);
          return (f === undefined ? undefined : cell(f)) ?? "–";
        }),
      );
  };
  perTarget("CPU-s per 1 000 calls", (f) => `${f.chosen.cpuPer1000.toFixed(2)}${mark(f)}`);
  for (const other of ["kamailio", "relay"] as const) {
    if (!targets.includes("sipedge") || !targets.includes(other)) continue;
    lines.push(
      row(`sipedge / ${NAMES[other]}`, (c) => {
        const [a, b] = [find("sipedge", c), find(other, c)];
        return a === undefined || b === undefined
          ? "–"
          : `${(a.chosen.cpuPer1000 / b.chosen.cpuPer1000).toFixed(2)}×${mark(a, b)}`;
      }),
    );
  }
  if (ROUNDS > 1) perTarget("CPU-s per 1 000 calls, every round", (f) => spread(runs, f));
  perTarget(ROUNDS > 1 ? "failed calls, all rounds" : "failed calls", (f) => `${f.failed} of ${f.calls}`);
  perTarget("of them refused with 503", (f) => (f.refused === undefined ? undefined : String(f.refused)), ["sipedge"]);
  perTarget("added latency p50 / p99, ms", (f) =>
    f.chosen.added === undefined ? undefined : `${ms(f.chosen.added.p50)} / ${ms(f.chosen.added.p99)}`,
  );
  for (const t of targets) {
    lines.push(
      row(`load tools' CPU share, ${NAMES[t]} runs`, (c) => {
        const f = find(t, c);
        return f === undefined ? "–" : pct(f.chosen.loadShare);
      }),
    );
  }
  if (ROUNDS > 1)
    lines.push(
      "",
      `CPU, latency and load share: each balancer's lowest-CPU round of ${ROUNDS} that carried the rate ` +
        "(a slow spell of the VM only ever adds CPU time); failed calls and 503s: summed over the rounds.",
    );
  if (fixed.some((f) => mark(f) !== "") || runs.some((r) => r.target !== "direct" && !carried(r)))
    lines.push("", "† more than 0.1 % of the calls failed: the cost is of a mix of carried and refused calls.");
  if (capacities.length > 0) {
    lines.push("", "| capacity over UDP (≤ 0.1 % failed) | calls/s | stopped because |", "|---|---:|---|");
    for (const c of capacities) lines.push(`| ${NAMES[c.target]} | ${c.cps} | ${c.stop} |`);
    const below = refusedBelowCapacity(runs, capacities);
    if (below !== undefined)
      lines.push(
        "",
        `sipedge's 503s at rates under 90 % of its capacity (${below.under}/s): ${below.refused} ` +
          `(${below.rates.length === 0 ? "no run under it" : `runs at ${below.rates.join(", ")}/s`}; the issue's target: none).`,
      );
  }
  return lines.join("\n");
}

/** #16's admission target: no 503 from sipedge at any rate under 90 % of the capacity the same run measured. */
function refusedBelowCapacity(
  runs: readonly Run[],
  capacities: readonly Capacity[],
): { under: number; refused: number; rates: number[] } | undefined {
  const cps = capacities.find((c) => c.target === "sipedge")?.cps;
  if (cps === undefined || cps === 0) return undefined;
  const under = 0.9 * cps;
  const below = [...runs, ...capacities.flatMap((c) => c.steps)].filter(
    (r) => r.target === "sipedge" && r.rate < under && r.refused !== undefined,
  );
  return {
    under,
    refused: below.reduce((n, r) => n + (r.refused ?? 0), 0),
    rates: [...new Set(below.map((r) => r.rate))].sort((a, b) => a - b),
  };
}

async function cleanup(): Promise<void> {
  await Promise.all(balancers.map((b) => b.stop().catch(() => {})));
  await processes.killAll();
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const info = machine();
  console.log(
    `compare benchmark: ${info.cpu}, ${info.cores} cores, node ${info.node}, ${info.kamailio}, ${info.sipp}, ${info.stunnel}; ` +
      `${ROUNDS} rounds of ${SECONDS} s runs at ${RATES.join(" and ")} calls/s, ${TAIL_SECONDS} s tail, capacity steps of ${STEP_SECONDS} s; sipedge: ${sipedgeSource()}`,
  );
  const cert = certificate();
  const uas = [startUas(processes, await freePort()), startUas(processes, await freePort())];
  uasPids = uas.map((u) => u.child.pid ?? 0);
  const backends = uas.map((u) => u.port);
  await sleep(500);

  const starters = { sipedge: startSipedge, kamailio: startKamailio, relay: startRelay } as const;
  for (const name of ["sipedge", "kamailio", "relay"] as const) {
    if (WHICH.includes(name)) balancers.push(await starters[name](processes, backends));
  }
  // A stunnel client per TLS listener: sipp's one TCP connection becomes one TLS connection to the balancer.
  const fronts = new Map<Balancer, number>();
  for (const b of balancers.filter((x) => x.tls > 0)) {
    const port = await freePort();
    stunnelPids.push(startStunnel(processes, port, b.tls, cert, "client").pid ?? 0);
    fronts.set(b, port);
  }
  await sleep(500);

  // Warm-up, not measured: V8 compiles sipedge's and the relay's hot paths, Kamailio fills its memory pools.
  for (const b of balancers) {
    await runUac(processes, `127.0.0.1:${b.udp}`, {
      calls: 500 * WARMUP_SECONDS,
      rate: 500,
      transport: "u1",
      timeoutSeconds: 30,
    });
    const front = fronts.get(b);
    if (front !== undefined)
      await runUac(processes, `127.0.0.1:${front}`, {
        calls: 500 * WARMUP_SECONDS,
        rate: 500,
        transport: "t1",
        timeoutSeconds: 30,
      });
  }
  await sleep(TAIL_SECONDS * 1000);

  console.log("fixed rates (CPU: every thread of every process of the balancer, over the run and its tail):");
  const direct = async (rate: number) => {
    const r = await measure("direct", undefined, "udp", backends, rate, SECONDS, { probePort: backends[0], tail: 2 });
    console.log(describe(r));
    return r;
  };
  const turns = (["udp", "tls"] as const).flatMap((transport) =>
    balancers.flatMap((b) => {
      const port = transport === "udp" ? b.udp : fronts.get(b);
      if (port === undefined) return [];
      const run = async (rate: number) => {
        const r = await measure(b.name, b, transport, [port], rate, SECONDS, {
          probePort: transport === "udp" ? b.udp : b.tls,
          tail: TAIL_SECONDS,
        });
        console.log(describe(r));
        return r;
      };
      return [run];
    }),
  );
  // What must still fit after the rounds: the last direct runs and, when asked, the capacity search (~3.5 minutes
  // on this VM, 4.5 with every failed step run twice; 5 allowed, as a step that fails also waits for a drain).
  const reserveMs = RATES.length * (SECONDS + 4) * 1000 + (CAPACITY ? 300_000 : 0);
  const runs = await rounds({
    rounds: ROUNDS,
    rates: RATES,
    direct,
    turns,
    fits: (roundMs) => performance.now() - t0 + roundMs + reserveMs < DEADLINE_MS,
    log: (line) => console.log(line),
  });
  const bases = addLatency(runs);
  const fixed = fold(runs);
  for (const rate of RATES) {
    const base = bases.get(rate);
    console.log(
      `added latency at ${rate}/s (p50/p99 ms over the direct's lowest ${ms(base?.p50)}/${ms(base?.p99)}; ` +
        "each from the round whose CPU is reported): " +
        fixed
          .filter((f) => f.rate === rate)
          .map((f) => `${f.target} ${f.transport} ${ms(f.chosen.added?.p50)}/${ms(f.chosen.added?.p99)}`)
          .join(", "),
    );
  }

  const capacities: Capacity[] = [];
  if (CAPACITY) {
    console.log("capacity over UDP (highest rate with <= 0.1 % failed calls):");
    for (const b of balancers) capacities.push(await capacity(b.name, b, [b.udp]));
    // The load tool straight to the UASs, once, at the highest rate a balancer was asked: if it carries that, no
    // balancer's capacity above was the load tool's.
    const top = Math.max(0, ...capacities.flatMap((c) => c.steps.map((s) => s.rate)));
    if (top > 0) capacities.push(await capacity("direct", undefined, backends, top));
  }

  const table = markdown(runs, fixed, capacities);
  console.log(`\n${table}\n`);
  const result = {
    date: started.toISOString(),
    machine: info,
    settings: {
      rates: RATES,
      seconds: SECONDS,
      rounds: ROUNDS,
      tailSeconds: TAIL_SECONDS,
      stepSeconds: STEP_SECONDS,
      probeRate: Number(env.BENCH_PROBE_RATE ?? 50),
      balancers: balancers.map((b) => b.label),
      sipedge: sipedgeSource(),
    },
    /** Per balancer, rate and transport: the round reported, every round's CPU, failures summed. */
    fixed,
    /** Every run of every round, the direct ones too. */
    runs,
    capacity: capacities,
    refusedBelowCapacity: refusedBelowCapacity(runs, capacities),
    table,
  };
  const file = saveResult("compare", started, result);
  const cost: CostBar[] = fixed.map((f) => ({
    group: `${f.transport.toUpperCase()} ${f.rate}/s`,
    series: NAMES[f.target],
    value: f.chosen.cpuPer1000,
    failed: !carried(f.chosen),
  }));
  writeFileSync(
    join(ROOT, "docs", "perf", "compare.svg"),
    chart(
      cost,
      capacities.map((c) => ({ series: NAMES[c.target], value: c.cps })),
      `${info.cpu}, ${info.cores} cores, ${info.kernel}; node ${info.node}, ${info.kamailio}, ${info.sipp}; ${started.toISOString().slice(0, 10)}`,
    ),
  );
  console.log(`results: ${file}, docs/perf/compare.json, docs/perf/compare.svg`);
}

runBounded("bench:compare", DEADLINE_MS, main, cleanup);
