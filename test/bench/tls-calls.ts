/**
 * The second half of `npm run bench:tls` (issue 18): the handshake rate at
 * which calls already established over TLS start to suffer.
 *
 * One IO worker (`io.threads: 1`) with a TLS and a UDP listener in front of
 * a sipp UAS over UDP. Established calls: sipp's UAC over one TCP
 * connection to a stunnel client, which holds one TLS connection to
 * sipedge (Debian's sipp has no TLS), BENCH_TLS_CALL_RATE (100) calls a
 * second, and beside it the latency probe of bench:compare
 * (compare/probe.ts: INVITE → 200 in µs) over a TLS connection of its own
 * to sipedge and, at the same time, straight to the UAS over UDP; the added
 * latency is the difference of the two (measured together, so the load
 * tools' share of the two cores weighs on both). Each step runs
 * BENCH_TLS_STEP_SECONDS (10) of calls: twice without handshakes (the
 * baseline, the lower of the two), then under a storm of full handshakes
 * at each rate of BENCH_TLS_STORM_RATES in turn (new connections from
 * separate client processes, test/fixtures/storm/tls-handshake-client.ts,
 * paced, each closed once up), stopping at the first rate whose p99 added
 * latency is twice the baseline's or more (in two steps running), or whose
 * clients could not reach the rate asked: on two cores shared with the load
 * tools, a client's half of a handshake costs about what the server's
 * does, so the machine may give out before the IO thread would. Last, a
 * baseline again, to show how far the machine drifted over the run.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { configFile, listeningPort, onePoolConfig, startCli } from "../helpers/cli.ts";
import { freePort, type Processes, sleep, startStunnel } from "../helpers/net.ts";
import { percentile, startProbe } from "./compare/probe.ts";
import { runUac, startUas } from "./compare/sipp.ts";
import { loadTicks, machineTicks, processTicks, threadTicks } from "./cpu.ts";
import { startHandshakeClients } from "./handshake-clients.ts";
import { metrics } from "./under-test.ts";

const env = process.env;
const CALL_RATE = Number(env.BENCH_TLS_CALL_RATE ?? 100);
const STEP_SECONDS = Number(env.BENCH_TLS_STEP_SECONDS ?? 10);
const STORM_RATES = (env.BENCH_TLS_STORM_RATES ?? "100,200,400,800,1200,1600,2400").split(",").map(Number);
const CLIENTS = Number(env.BENCH_TLS_CLIENTS ?? 2);
/** Probe calls a second on each path: 1 000 in a step, so p99 is the 10th slowest, not one scheduling hiccup. */
const PROBE_RATE = Number(env.BENCH_TLS_PROBE_RATE ?? 100);
/** Handshakes under way at most per client process: the storm's pace is the rate asked, this only caps a backlog. */
const STORM_PARALLEL = 32;
/**
 * A baseline p99 added latency under this is taken as this much: without
 * handshakes it read from 0.07 to 5.4 ms on these shared cores from one run
 * to the next, so one of a few tens of µs would "double" on noise.
 */
const FLOOR_MS = 2;
/** A step whose clients reached under this share of the rate asked measured the machine, not sipedge. */
const MIN_REACHED = 0.8;
/** Worst case: three baselines and every storm step twice, each with its sipp run's slack, and the warm-up. */
export const CALLS_DEADLINE_MS = (2 * STORM_RATES.length + 3) * (STEP_SECONDS * 2 + 30) * 1000 + 60_000;

export interface Step {
  /** baseline: no handshakes, before the storm; repeat: a step that doubled, run again; after: no handshakes, last. */
  readonly kind: "baseline" | "storm" | "repeat" | "after";
  /** Handshakes a second asked of the clients (0: the baseline), and reached. */
  readonly stormRate: number;
  readonly reached: number;
  readonly handshakes: number;
  readonly failedHandshakes: number;
  readonly handshakeErrors: Record<string, number>;
  /** The IO thread's CPU over the step, in CPUs (1 = one core the whole time). */
  readonly ioThreadCpu: number;
  /** Share of the machine (all cores) the load tools took: sipp, stunnel, the probes, the handshake clients. */
  readonly loadShare: number;
  /** Connections sipedge's overload control refused (`sipedge_connections_refused_total{reason="load"}`). */
  readonly refusedLoad: number;
  /** Calls answered 503 for overload (`sipedge_overload_rejected_total`). */
  readonly rejected503: number;
  /** sipp's calls and the probe's through sipedge: placed, and failed (a probe unanswered within 2 s counts). */
  readonly calls: number;
  readonly failedCalls: number;
  /** Probe INVITE → 200, ms: through sipedge over TLS, and straight to the UAS over UDP, at the same time. */
  readonly viaSipedge: { readonly p50: number; readonly p99: number };
  readonly direct: { readonly p50: number; readonly p99: number };
  readonly added: { readonly p50: number; readonly p99: number };
  /** p99 added latency over the baseline's (the baseline's floored at FLOOR_MS). */
  readonly p99Ratio: number;
}

export interface CallsUnderStorm {
  readonly started: string;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly loadavg: readonly number[] };
  readonly settings: {
    readonly key: string;
    readonly callRate: number;
    readonly stepSeconds: number;
    readonly stormRates: readonly number[];
    readonly clients: number;
    readonly probeRate: number;
  };
  /** p99 added latency without handshakes, ms: the lower of the two baselines. */
  readonly baselineP99: number;
  /** The baselines, the storm steps, and the baseline again after them (how far the machine drifted over the run). */
  readonly steps: Step[];
  /** The first storm step whose p99 added latency doubled, if one did. */
  readonly doubledAt?: { readonly stormRate: number; readonly reached: number };
  readonly stop: string;
  readonly table: string;
}

interface Rig {
  readonly pid: number;
  readonly admin: number;
  readonly tls: number;
  readonly uas: number;
  /** The stunnel client in front of sipedge's TLS listener, for sipp. */
  readonly front: number;
  /** Long-running load tools (the UAS, stunnel), for their CPU. */
  readonly tools: readonly number[];
  readonly stop: () => Promise<void>;
}

async function startRig(p: Processes, files: { cert: string; key: string }): Promise<Rig> {
  const [uas, admin, front] = [await freePort(), await freePort(), await freePort()];
  const uasChild = startUas(p, uas).child;
  const cli = await startCli(
    configFile(
      onePoolConfig({
        io: "{ threads: 1, pin: false }",
        listen: [
          "{ transport: udp, address: 127.0.0.1, port: 0 }",
          `{ transport: tls, address: 127.0.0.1, port: 0, cert: ${files.cert}, key: ${files.key} }`,
        ],
        members: [`{ name: uas, uri: "sip:127.0.0.1:${uas}" }`],
        admin,
        lines: ["limits: { maxConnectionsPerIp: 10000 }"], // every client is on 127.0.0.1
      }),
    ),
    "admin API",
  );
  const tls = listeningPort(cli.out(), "tls");
  if (!(tls > 0)) throw new Error(`sipedge did not start:\n${cli.out()}${cli.err()}`);
  const stunnel = startStunnel(p, front, tls, files, "client");
  await sleep(2000); // the UAS's first OPTIONS answered: the member is up
  return {
    pid: cli.child.pid as number,
    admin,
    tls,
    uas,
    front,
    tools: [uasChild.pid ?? 0, stunnel.pid ?? 0],
    stop: async () => {
      await Promise.all([stunnel, cli.child, uasChild].map((c) => p.kill(c)));
    },
  };
}

/** One step of STEP_SECONDS: the calls and both probes, under `stormRate` full handshakes a second (0: none). */
async function step(
  p: Processes,
  rig: Rig,
  stormRate: number,
  kind: Step["kind"],
  baselineP99?: number,
): Promise<Step> {
  const storm =
    stormRate === 0
      ? undefined
      : startHandshakeClients(p, rig.tls, CLIENTS, {
          mode: "full",
          // Past the calls' end: sipp and the probes start once every client has.
          seconds: STEP_SECONDS + 2,
          max: stormRate * (STEP_SECONDS + 2) * 2,
          parallel: STORM_PARALLEL,
          rate: stormRate,
        });
  await storm?.started;
  const m0 = await metrics(rig.admin);
  const tools = () => toolTicks(rig, storm?.pids ?? []);
  const [io0, tools0, t0] = [threadTicks(rig.pid, "sipedge-io-0"), tools(), performance.now()];
  const probes = [await startProbe(rig.tls, "tls", PROBE_RATE), await startProbe(rig.uas, "udp", PROBE_RATE)];
  const sipp = await runUac(p, `127.0.0.1:${rig.front}`, {
    calls: CALL_RATE * STEP_SECONDS,
    rate: CALL_RATE,
    transport: "t1",
    timeoutSeconds: STEP_SECONDS * 2 + 20,
  });
  const [via, direct] = await Promise.all(probes.map((x) => x.stop()));
  // The clients are still running (they outlast the calls): their CPU is read live, as sipedge's is.
  const [io1, tools1] = [threadTicks(rig.pid, "sipedge-io-0"), tools()];
  const seconds = (performance.now() - t0) / 1000;
  const m1 = await metrics(rig.admin);
  const shaken = await storm?.done;
  const refused = (m: typeof m0) => m.by("sipedge_connections_refused_total", "reason").get("load") ?? 0;
  const times = (t: number[] | undefined) => ({ p50: percentile(t ?? [], 50), p99: percentile(t ?? [], 99) });
  const [v, d] = [times(via?.times), times(direct?.times)];
  const added = { p50: v.p50 - d.p50, p99: v.p99 - d.p99 };
  return {
    kind,
    stormRate,
    reached: shaken === undefined ? 0 : shaken.handshakes / shaken.seconds,
    handshakes: shaken?.handshakes ?? 0,
    failedHandshakes: shaken?.failed ?? 0,
    handshakeErrors: shaken?.errors ?? {},
    ioThreadCpu: (io1 - io0) / 100 / seconds,
    loadShare: (tools1 - tools0) / machineTicks(seconds),
    refusedLoad: refused(m1) - refused(m0),
    rejected503: m1.sum("sipedge_overload_rejected_total") - m0.sum("sipedge_overload_rejected_total"),
    calls: CALL_RATE * STEP_SECONDS + (via?.times.length ?? 0) + (via?.lost ?? 0),
    failedCalls: CALL_RATE * STEP_SECONDS - sipp.successful + (via?.lost ?? 0),
    viaSipedge: v,
    direct: d,
    added,
    p99Ratio: added.p99 / Math.max(FLOOR_MS, baselineP99 ?? added.p99),
  };
}

/** The load tools' ticks: the UAS, stunnel and the handshake clients running, this process (the probes), sipp's UAC reaped. */
function toolTicks(rig: Rig, clients: readonly number[]): number {
  return loadTicks([...rig.tools, ...clients]) + processTicks(process.pid);
}

const ms = (x: number) => (Number.isNaN(x) ? "n/a" : x.toFixed(2));
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

function describe(s: Step): string {
  const storm =
    s.stormRate === 0
      ? "no handshakes   "
      : `${String(s.stormRate).padStart(4)}/s asked, ${s.reached.toFixed(0).padStart(4)}/s reached`;
  return (
    `  ${storm}: p99 added ${ms(s.added.p99)} ms (${s.p99Ratio.toFixed(2)}× the baseline; p50 ${ms(s.added.p50)}; ` +
    `via sipedge ${ms(s.viaSipedge.p99)}, direct ${ms(s.direct.p99)}), IO thread ${pct(s.ioThreadCpu)} of a CPU, ` +
    `${s.refusedLoad} refused for load, ${s.failedHandshakes} handshakes failed, ` +
    `${s.failedCalls} of ${s.calls} calls failed (${s.rejected503} 503s), load tools ${pct(s.loadShare)} of the machine`
  );
}

const KIND: Record<Step["kind"], string> = {
  baseline: "none (baseline)",
  storm: "",
  repeat: " (again)",
  after: "none (again, after)",
};

function markdown(steps: readonly Step[]): string {
  const lines = [
    "| full handshakes/s asked | reached | p99 added latency, ms | × baseline | IO thread CPU | refused `load` | failed calls | load tools' share of the machine |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of steps) {
    const storm = s.stormRate > 0;
    lines.push(
      `| ${storm ? s.stormRate : ""}${KIND[s.kind]} | ${storm ? s.reached.toFixed(0) : "–"} | ${ms(s.added.p99)} | ` +
        `${s.kind === "baseline" ? "–" : s.p99Ratio.toFixed(2)} | ${pct(s.ioThreadCpu)} | ` +
        `${s.refusedLoad} | ${s.failedCalls} of ${s.calls} | ${pct(s.loadShare)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * The storm steps, up the rates until p99 added latency doubles over
 * `baselineP99` (a step that doubles is run once more and counts only if it
 * doubles again: on shared cores one scheduling hiccup can double a p99) or
 * the clients cannot reach the rate asked.
 */
async function climb(p: Processes, rig: Rig, baselineP99: number) {
  const steps: Step[] = [];
  const run = async (rate: number, kind: Step["kind"]) => {
    const s = await step(p, rig, rate, kind, baselineP99);
    steps.push(s);
    console.log(describe(s));
    return s;
  };
  for (const rate of STORM_RATES) {
    let s = await run(rate, "storm");
    if (s.p99Ratio >= 2) s = await run(rate, "repeat");
    if (s.p99Ratio >= 2) {
      const doubledAt = { stormRate: rate, reached: s.reached };
      // Short of the rate as well: the cores were all taken, and the calls waited for one as the clients did.
      const short = s.reached < rate * 0.95 ? "; the clients fell short of it too: the machine was at its limit" : "";
      return {
        steps,
        doubledAt,
        stop: `p99 added latency doubled at ${rate}/s asked (${s.reached.toFixed(0)}/s reached${short})`,
      };
    }
    if (s.reached < rate * MIN_REACHED) {
      const stop =
        `the clients reached only ${s.reached.toFixed(0)} of ${rate} handshakes/s: the machine's limit ` +
        `(${availableParallelism()} cores shared with the load tools), not sipedge's`;
      return { steps, stop };
    }
  }
  return { steps, stop: `reached the last rate asked (${STORM_RATES.at(-1)}/s) without doubling` };
}

/** Runs the baselines and the storm steps against a fresh sipedge serving `files` (a `key` certificate). */
export async function callsUnderStorm(
  p: Processes,
  key: string,
  files: { cert: string; key: string },
): Promise<CallsUnderStorm> {
  const started = new Date().toISOString();
  const cores = availableParallelism();
  const machine = {
    cpu: /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown",
    cores,
    loadavg: loadavg(),
  };
  console.log(
    `calls over TLS under a handshake storm: ${CALL_RATE} calls/s from sipp through stunnel, ${PROBE_RATE} probe calls/s, ` +
      `${STEP_SECONDS} s steps, full handshakes (${key}) from ${CLIENTS} client processes at ${STORM_RATES.join(", ")}/s; ` +
      `${cores} cores shared by sipedge and every load tool (a client's half of a handshake costs about the server's), ` +
      `load average ${machine.loadavg.map((x) => x.toFixed(2)).join(" ")}`,
  );
  const rig = await startRig(p, files);
  try {
    // Warm-up, not measured: V8 compiles sipedge's hot paths.
    await runUac(p, `127.0.0.1:${rig.front}`, {
      calls: CALL_RATE * 3,
      rate: CALL_RATE,
      transport: "t1",
      timeoutSeconds: 30,
    });
    // Two baselines, the lower taken: a hiccup on the shared cores only ever inflates one.
    const baselines = [await step(p, rig, 0, "baseline"), await step(p, rig, 0, "baseline")];
    for (const b of baselines) console.log(describe(b));
    const baselineP99 = Math.min(...baselines.map((b) => b.added.p99));
    const climbed = await climb(p, rig, baselineP99);
    const after = await step(p, rig, 0, "after", baselineP99);
    console.log(`${describe(after)} (the baseline again, after the storm)`);
    console.log(`  stopped: ${climbed.stop}`);
    const steps = [...baselines, ...climbed.steps, after];
    const table = markdown(steps);
    console.log(`\n${table}\n`);
    return {
      started,
      machine,
      settings: {
        key,
        callRate: CALL_RATE,
        stepSeconds: STEP_SECONDS,
        stormRates: STORM_RATES,
        clients: CLIENTS,
        probeRate: PROBE_RATE,
      },
      baselineP99,
      steps,
      ...(climbed.doubledAt === undefined ? {} : { doubledAt: climbed.doubledAt }),
      stop: climbed.stop,
      table,
    };
  } finally {
    await rig.stop();
  }
}
