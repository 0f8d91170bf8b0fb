/**
 * `npm run bench:overload`: does sipedge collapse when offered more calls
 * than it can carry? sipp UACs (test/fixtures/sipp/uac_accepts_503.xml:
 * a 503 is acknowledged and ends the call) offer BENCH_FACTORS times
 * BENCH_CAPACITY calls per second (measure the capacity with bench:cps)
 * for BENCH_STEP_SECONDS each, through sipedge on BENCH_THREADS IO workers
 * to 2 sipp UAS. Per step: the rate sipp managed to offer, goodput (calls
 * set up per second, from sipedge's own counter), 503s per second, calls
 * lost (timed out), p99 time to the 200 of the calls that were answered
 * (sipp's -trace_rtt), and sipedge's peak RSS. The target: goodput at 5x
 * at least 90 % of the best step's (no congestion collapse). Bounded: every
 * step is a fixed number of calls with a deadline.
 *
 * BENCH_PIN=1 keeps the load tool off sipedge's cores (taskset: sipedge on
 * the first half, every sipp on the rest), as if the load came from other
 * machines; without it sipp competes with sipedge for the same cores, and
 * the 5x step measures that contest as much as sipedge.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { FIXTURE_SCENARIOS, startUas } from "../helpers/sipp.ts";
import { rssOf } from "../helpers/storm.ts";
import { loadTicks, machineTicks, processTicks } from "./cpu.ts";
import { type Metrics, metrics, startSipedge, type UnderTest } from "./under-test.ts";

const CAPACITY = Number(process.env.BENCH_CAPACITY ?? 4000);
const FACTORS = (process.env.BENCH_FACTORS ?? "0.5,1,2,3,5").split(",").map(Number);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const CORES = availableParallelism();
/** taskset CPU lists: sipedge's cores and the load tool's, or none (BENCH_PIN unset or one core). */
const PIN =
  process.env.BENCH_PIN === "1" && CORES > 1
    ? { sipedge: `0-${Math.floor(CORES / 2) - 1}`, load: `${Math.floor(CORES / 2)}-${CORES - 1}` }
    : undefined;
/** What one sipp UAC is asked to offer at most; more UACs for more. */
const PER_UAC = 2500;

const processes = new Processes();

interface Step {
  readonly factor: number;
  readonly offered: number;
  readonly seconds: number;
  readonly goodput: number;
  readonly refused: number;
  /** The overload refusals per second by reason (pool, transactions, load: proxy/admission.ts). */
  readonly reasons: ReadonlyMap<string, number>;
  readonly lost: number;
  /** Requests sipp sent again for want of an answer within T1 (RFC 3261 §17.1.1.2): work a late answer doubles. */
  readonly retransmitted: number;
  readonly p99: number;
  readonly peakRss: number;
  readonly restarts: number;
  /** Shares of the machine's CPU (all cores) used by sipedge and by the sipp load. */
  readonly sipedgeCpu: number;
  readonly sippCpu: number;
  /** sipedge's CPU time per call offered (µs): at 5x nearly all of it is the price of a refusal. */
  readonly cpuPerCall: number;
}

/** The sipp UASs, running throughout: their CPU counts as the load tool's. */
const uasPids: number[] = [];

/** One sipp UAC of the step, in its own folder: its call counts and the answered calls' times to 200 (ms). */
async function uac(
  target: string,
  rate: number,
  calls: number,
): Promise<{ offered: number; failed: number; retransmitted: number; rtts: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-overload-"));
  const child = processes.spawn(
    ...onLoadCores("sipp", [
      "-sf",
      join(FIXTURE_SCENARIOS, "uac_accepts_503.xml"),
      target,
      "-i",
      "127.0.0.1",
      "-p",
      "0",
      "-m",
      String(calls),
      "-r",
      String(rate),
      "-l",
      String(rate * 10),
      "-nostdin",
      "-trace_stat",
      "-stf",
      join(dir, "stat.csv"),
      "-trace_rtt",
      "-rtt_freq",
      "1",
      "-timeout",
      `${STEP_SECONDS * 4 + 20}s`,
      "-recv_timeout",
      "10000",
    ]),
    dir,
  );
  await new Promise((resolve) => child.once("exit", resolve));
  const stat = readFileSync(join(dir, "stat.csv"), "utf8").trim().split("\n");
  const header = (stat[0] ?? "").split(";");
  const last = (stat.at(-1) ?? "").split(";");
  const col = (name: string) => Number(last[header.indexOf(name)] ?? 0);
  const rtts: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith("_rtt.csv"))) {
    for (const line of readFileSync(join(dir, f), "utf8").trim().split("\n").slice(1)) {
      const ms = Number(line.split(";")[1]);
      if (Number.isFinite(ms)) rtts.push(ms);
    }
  }
  return {
    offered: col("OutgoingCall(C)"),
    failed: col("FailedCall(C)"),
    retransmitted: col("Retransmissions(C)"),
    rtts,
  };
}

/** A load tool's command, confined to the load's cores when pinning (taskset execs it: the PID is the tool's). */
function onLoadCores(command: string, args: readonly string[]): [string, string[]] {
  return PIN === undefined ? [command, [...args]] : ["taskset", ["-c", PIN.load, command, ...args]];
}

/** Moves every thread of a running process to `cpus` (sipedge pins its IO threads itself at start). */
function pin(pid: number, cpus: string): void {
  execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
}

/** Overload refusals per second of the step, by reason. */
function reasonRates(before: Metrics, after: Metrics): Map<string, number> {
  const was = before.by("sipedge_overload_rejected_total", "reason");
  const rates = new Map<string, number>();
  for (const [reason, n] of after.by("sipedge_overload_rejected_total", "reason")) {
    const rate = (n - (was.get(reason) ?? 0)) / STEP_SECONDS;
    if (rate > 0) rates.set(reason, rate);
  }
  return rates;
}

async function step(sipedge: UnderTest, factor: number): Promise<Step> {
  const rate = Math.round(CAPACITY * factor);
  const uacs = Math.max(1, Math.ceil(rate / PER_UAC));
  const each = Math.round(rate / uacs);
  const before = await metrics(sipedge.admin);
  const pid = sipedge.child.pid as number;
  let peakRss = rssOf(pid);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssOf(pid));
  }, 100);
  const started = Date.now();
  const [l0, p0] = [loadTicks(uasPids), processTicks(pid)];
  const runs = await Promise.all(
    Array.from({ length: uacs }, () => uac(`127.0.0.1:${sipedge.port}`, each, each * STEP_SECONDS)),
  );
  const seconds = (Date.now() - started) / 1000;
  const [l1, p1] = [loadTicks(uasPids), processTicks(pid)];
  clearInterval(sampler);
  const after = await metrics(sipedge.admin);
  const delta = (name: string) => after.sum(name) - before.sum(name);
  const rtts = runs.flatMap((r) => r.rtts).sort((a, b) => a - b);
  const offeredCalls = runs.reduce((n, r) => n + r.offered, 0);
  return {
    factor,
    offered: offeredCalls / STEP_SECONDS,
    seconds,
    goodput: delta("sipedge_backend_calls_total") / STEP_SECONDS,
    refused: (delta("sipedge_overload_rejected_total") + delta("sipedge_no_backend_total")) / STEP_SECONDS,
    reasons: reasonRates(before, after),
    lost: runs.reduce((n, r) => n + r.failed, 0),
    retransmitted: runs.reduce((n, r) => n + r.retransmitted, 0) / STEP_SECONDS,
    p99: rtts.length === 0 ? Number.NaN : (rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))] as number),
    peakRss,
    restarts: delta("sipedge_worker_restarts_total"),
    sipedgeCpu: (p1 - p0) / machineTicks(seconds),
    sippCpu: (l1 - l0) / machineTicks(seconds),
    cpuPerCall: offeredCalls === 0 ? 0 : ((p1 - p0) / 100 / offeredCalls) * 1e6,
  };
}

function reasonsText(reasons: ReadonlyMap<string, number>): string {
  return reasons.size === 0 ? "" : ` (${[...reasons].map(([r, n]) => `${r} ${n.toFixed(0)}`).join(", ")})`;
}

async function main(): Promise<void> {
  console.log(
    `overload benchmark: capacity ${CAPACITY} cps (BENCH_CAPACITY), ${STEP_SECONDS} s per step, ` +
      `sipedge on ${THREADS} IO thread(s), 2 sipp UAS, UDP loopback` +
      (PIN === undefined ? ", sipp on the same cores" : `, sipedge on CPUs ${PIN.sipedge} and sipp on ${PIN.load}`),
  );
  const backends = [await freePort(), await freePort()];
  for (const p of backends) uasPids.push(startUas(processes, p).child.pid ?? 0);
  const sipedge = await startSipedge(processes, backends, THREADS);
  if (PIN !== undefined) {
    for (const pid of uasPids) pin(pid, PIN.load);
    pin(sipedge.child.pid as number, PIN.sipedge);
  }
  let log = "";
  sipedge.child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  await sleep(1500); // probed up
  const steps: Step[] = [];
  for (const factor of FACTORS) {
    const s = await step(sipedge, factor);
    steps.push(s);
    console.log(
      `  ${`${factor}x`.padStart(5)}: offered ${s.offered.toFixed(0).padStart(6)} cps, goodput ${s.goodput.toFixed(0).padStart(5)} cps, ` +
        `503 ${s.refused.toFixed(0).padStart(6)}/s${reasonsText(s.reasons)}, lost ${String(s.lost).padStart(5)}, ` +
        `retransmitted ${s.retransmitted.toFixed(0).padStart(5)}/s, p99 to 200 ${s.p99.toFixed(0)} ms, ` +
        `peak RSS ${(s.peakRss / 2 ** 20).toFixed(0)} MiB, ${s.seconds.toFixed(1)} s; ` +
        `CPU (2 cores = 100 %) sipedge ${(s.sipedgeCpu * 100).toFixed(0)} %, sipp ${(s.sippCpu * 100).toFixed(0)} %, ` +
        `sipedge ${s.cpuPerCall.toFixed(0)} µs a call offered` +
        (s.restarts > 0 ? `, ${s.restarts} IO worker restart(s)!` : ""),
    );
    await sleep(2000); // let the last step's transactions wind down
  }
  const troubles = log.split("\n").filter((l) => /worker|stall|memory/i.test(l));
  if (troubles.length > 0) console.log(`sipedge said:\n  ${troubles.join("\n  ")}`);
  const peak = Math.max(...steps.map((s) => s.goodput));
  const top = steps.at(-1);
  if (top !== undefined && peak > 0) {
    const ratio = top.goodput / peak;
    console.log(
      `goodput at ${top.factor}x / peak goodput: ${ratio.toFixed(2)} (target >= 0.90: ${ratio >= 0.9 ? "met" : "NOT met"})`,
    );
  }
  await processes.killAll();
}

main().catch(async (e: unknown) => {
  console.error(e);
  await processes.killAll();
  process.exitCode = 1;
});
