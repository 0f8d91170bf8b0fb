/**
 * `npm run bench:cps [-- --threads 1,2]`: calls per second through sipedge.
 * sipp UAC -> sipedge -> 2 sipp UAS over UDP loopback, stepping the call
 * rate up until more than 0.1 % of calls fail; the same steps sipp -> sipp
 * directly give the load tool's own ceiling on this machine. Then p50/p99 of
 * an OPTIONS round trip through sipedge and directly, idle and under a call
 * load: the difference is the latency sipedge adds. With several thread
 * counts, the ceiling for each and the scaling ratio; the load comes from
 * BENCH_UACS sipp UACs (one UDP socket each, so the kernel's reusePort hash
 * spreads them over the workers), and each step reports how much of the
 * machine's CPU sipedge used and how much the load tool took. Bounded: every
 * step is a fixed number of calls, every probe has a 1 s deadline.
 */
import type { ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { runUac, startUas } from "../helpers/sipp.ts";
import { loadTicks, machineTicks, processTicks } from "./cpu.ts";
import { metrics, startSipedge } from "./under-test.ts";

const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const RATES = (process.env.BENCH_RATES ?? "1000,2000,3000,4000,4500,5000,5500,6000,7000,8000").split(",").map(Number);
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 1000);
const PROBES = Number(process.env.BENCH_PROBES ?? 2000);
const MAX_FAILED = 0.001;
const flag = process.argv.indexOf("--threads");
const THREAD_COUNTS = (flag >= 0 ? (process.argv[flag + 1] ?? "1") : (process.env.BENCH_THREADS ?? "1"))
  .split(",")
  .map(Number);
const UACS = Number(process.env.BENCH_UACS ?? 4);

const processes = new Processes();

/** What sipedge's own counters say about a step: refusals, buffers, reclaimed transactions (cumulative). */
async function overloadFigures(admin: number): Promise<string> {
  const m = await metrics(admin);
  return (
    `503 overload ${m.sum("sipedge_overload_rejected_total")}, no backend ${m.sum("sipedge_no_backend_total")}, ` +
    `pool free ${(m.min("sipedge_buffer_pool_free_ratio") * 100).toFixed(0)} %, reclaimed ${m.sum("sipedge_transactions_reclaimed_total")}`
  );
}

interface Step {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  seconds: number;
  /** Share of the machine's CPU time (all cores) used by sipedge, and by everything else (the sipp load). */
  sipedgeCpu: number;
  othersCpu: number;
}

/** The sipp UASs, running throughout: their CPU counts as the load tool's. */
const uasPids: number[] = [];

/** `rate` calls per second for STEP_SECONDS, split over UACS sipp UACs. */
async function step(target: string, rate: number, sipedge: ChildProcess | undefined): Promise<Step> {
  const each = Math.max(1, Math.round(rate / UACS));
  const calls = each * UACS * STEP_SECONDS;
  const started = Date.now();
  const [l0, p0] = [loadTicks(uasPids), processTicks(sipedge?.pid)];
  const counts = await Promise.all(
    Array.from({ length: UACS }, () =>
      runUac(processes, target, {
        calls: each * STEP_SECONDS,
        rate: each,
        timeoutSeconds: STEP_SECONDS * 4 + 10,
        extra: ["-l", String(each * 4)],
      }),
    ),
  );
  const [l1, p1] = [loadTicks(uasPids), processTicks(sipedge?.pid)];
  // The machine's capacity over the step, in ticks: every core, the whole time.
  const total = machineTicks((Date.now() - started) / 1000);
  const successful = counts.reduce((n, c) => n + c.successful, 0);
  return {
    rate: each * UACS,
    calls,
    successful,
    failed: calls - successful,
    seconds: (Date.now() - started) / 1000,
    sipedgeCpu: (p1 - p0) / total,
    othersCpu: (l1 - l0) / total,
  };
}

/** Highest rate whose step failed at most 0.1 % of its calls. */
async function ceiling(
  label: string,
  target: string,
  sipedge?: { child: ChildProcess; admin: number },
): Promise<number> {
  let best = 0;
  for (const rate of RATES) {
    const r = await step(target, rate, sipedge?.child);
    const ok = r.failed / r.calls <= MAX_FAILED;
    const pct = (x: number) => `${(x * 100).toFixed(0)} %`.padStart(5);
    console.log(
      `  ${label.padEnd(10)} ${String(r.rate).padStart(5)} cps: ${r.successful}/${r.calls} ok, ${r.failed} failed, ${r.seconds.toFixed(1)} s; ` +
        `CPU (2 cores = 100 %): ${sipedge === undefined ? "" : `sipedge ${pct(r.sipedgeCpu)}, `}sipp ${pct(r.othersCpu)} ${ok ? "" : "<- over 0.1 % failed"}` +
        (sipedge === undefined ? "" : `\n${"".padEnd(13)}sipedge so far: ${await overloadFigures(sipedge.admin)}`),
    );
    if (!ok) break;
    best = rate;
    await sleep(500);
  }
  return best;
}

/**
 * OPTIONS round trips (ms, from hrtime) to target, one at a time: with a user
 * part, so sipedge forwards them to a backend (sipp -aa answers them).
 */
async function probe(port: number, count: number): Promise<number[]> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const local = socket.address().port;
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = `probe-${process.pid}-${i}`;
    const msg =
      `OPTIONS sip:probe@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-${id};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=${id}\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: ${id}\r\n` +
      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    const started = process.hrtime.bigint();
    const answered = new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        socket.off("message", onMessage);
        resolve(ok);
      };
      const onMessage = (m: Buffer) => {
        if (m.includes(id)) done(true);
      };
      const timer = setTimeout(() => done(false), 1000);
      socket.on("message", onMessage);
    });
    socket.send(msg, port, "127.0.0.1");
    if (await answered) times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  socket.close();
  return times.sort((x, y) => x - y);
}

/** Probe latencies while sipp keeps `rate` calls per second going through the same target. */
async function probeUnderLoad(port: number, rate: number): Promise<number[]> {
  const load = runUac(processes, `127.0.0.1:${port}`, { calls: rate * (STEP_SECONDS + 2), rate });
  await sleep(1000);
  const times = await probe(port, PROBES);
  await load;
  return times;
}

function pct(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}

async function main(): Promise<void> {
  console.log(
    `cps benchmark: node ${process.version}, ${STEP_SECONDS} s per step, UDP loopback, ${UACS} sipp UACs, ` +
      `sipedge on ${THREAD_COUNTS.join(" and ")} IO thread(s)`,
  );
  const uasPorts = [await freePort(), await freePort()];
  for (const p of uasPorts) uasPids.push(startUas(processes, p).child.pid ?? 0);
  const direct = await freePort();
  uasPids.push(startUas(processes, direct).child.pid ?? 0);

  console.log("ceilings (highest rate with <= 0.1 % failed calls):");
  const perThreads = new Map<number, number>();
  let sipedge = { child: undefined as ChildProcess | undefined, port: 0, admin: 0 };
  for (const threads of THREAD_COUNTS) {
    if (sipedge.child !== undefined) await processes.kill(sipedge.child);
    const running = await startSipedge(processes, uasPorts, threads);
    sipedge = running;
    perThreads.set(threads, await ceiling(`sipedge x${threads}`, `127.0.0.1:${running.port}`, running));
  }
  const sippDirect = await ceiling("direct", `127.0.0.1:${direct}`);

  const idle = { sipedge: await probe(sipedge.port, PROBES), direct: await probe(direct, PROBES) };
  // sipp's UAS stops answering out-of-dialog OPTIONS while it carries calls,
  // so under load the baseline stays the idle direct round trip.
  const loaded = { sipedge: await probeUnderLoad(sipedge.port, LATENCY_RATE), direct: idle.direct };

  const lastThreads = THREAD_COUNTS.at(-1) ?? 1;
  const viaSipedge = perThreads.get(lastThreads) ?? 0;
  console.log("");
  for (const [threads, cps] of perThreads) console.log(`sipedge (${threads} IO thread(s)): ${cps} cps`);
  console.log(`sipp -> sipp direct:   ${sippDirect} cps (the load tool's ceiling here)`);
  console.log(`ratio sipedge/direct:  ${sippDirect === 0 ? "n/a" : (viaSipedge / sippDirect).toFixed(2)}`);
  const one = perThreads.get(1);
  if (one !== undefined && perThreads.size > 1) {
    for (const [threads, cps] of perThreads) {
      if (threads !== 1)
        console.log(`scaling ${threads} threads / 1 thread: ${one === 0 ? "n/a" : (cps / one).toFixed(2)}x`);
    }
  }
  for (const [label, l] of [
    ["idle", idle],
    [`with ${LATENCY_RATE} cps of calls through sipedge (direct: idle)`, loaded],
  ] as const) {
    const d = (p: number) => (pct(l.sipedge, p) - pct(l.direct, p)).toFixed(3);
    console.log(
      `OPTIONS round trip ${label}: via sipedge p50 ${pct(l.sipedge, 50).toFixed(3)} p99 ${pct(l.sipedge, 99).toFixed(3)} ms; ` +
        `direct p50 ${pct(l.direct, 50).toFixed(3)} p99 ${pct(l.direct, 99).toFixed(3)} ms; added p50 ${d(50)} p99 ${d(99)} ms ` +
        `(${l.sipedge.length}/${l.direct.length} of ${PROBES} answered)`,
    );
  }
  if (one !== undefined) console.log(`target (>= 2000 cps through one IO thread): ${one >= 2000 ? "met" : "NOT met"}`);
  await processes.killAll();
}

main().catch(async (e: unknown) => {
  console.error(e);
  await processes.killAll();
  process.exitCode = 1;
});
