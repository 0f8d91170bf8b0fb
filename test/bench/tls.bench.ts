/**
 * `npm run bench:tls`: TLS handshakes per second on one IO worker, full and
 * resumed (a session ticket offered, RFC 8446 §2.2), for an ECDSA P-256 and
 * an RSA-2048 and an RSA-4096 certificate, beside a bare Node TLS server
 * (test/fixtures/storm/bare-tls-server.ts: Node's defaults) in the same run.
 * The load is BENCH_TLS_CLIENTS client processes (./handshake-clients.ts,
 * test/fixtures/storm/tls-handshake-client.ts) keeping BENCH_TLS_PARALLEL
 * handshakes under way each, closing each connection once it is up. On a
 * small shared machine the clients cannot saturate the server (a client's
 * share of a handshake costs about what the server's does), so the figure
 * compared is handshakes per CPU-second of the one thread that serves them
 * (sipedge's IO thread "sipedge-io-0", the bare server's main thread), from
 * /proc; the handshakes per wall-clock second are printed beside it.
 * Bounded: BENCH_SECONDS (5) or BENCH_TLS_MAX handshakes (50 000) per case,
 * whichever comes first, a 5 s deadline per connection, and the whole run
 * DEADLINE_MS. Then the second half (./tls-calls.ts): the handshake rate
 * at which established calls over TLS start to suffer. BENCH_TLS_PART
 * (handshakes, calls, all) runs one half; the other keeps its figures from
 * docs/perf/tls.json. Results: bench-results/tls-<time>.json, the latest
 * also as docs/perf/tls.json (the second half under "calls").
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { selfSignedCertificate } from "../helpers/certificates.ts";
import { handshakesOnlyConfig, listeningPort, startCli } from "../helpers/cli.ts";
import { freePort, Processes } from "../helpers/net.ts";
import { runBounded } from "./bounded.ts";
import { lineFrom } from "./child-output.ts";
import { threadTicks } from "./cpu.ts";
import { startHandshakeClients } from "./handshake-clients.ts";
import { ROOT, saveResult } from "./results.ts";
import { CALLS_DEADLINE_MS, callsUnderStorm } from "./tls-calls.ts";
import { metrics } from "./under-test.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const MAX = Number(process.env.BENCH_TLS_MAX ?? 50_000);
const CLIENTS = Number(process.env.BENCH_TLS_CLIENTS ?? 2);
/**
 * One at a time per client: with more, the IO thread can run out of CPU
 * and sipedge's overload control rations new handshakes (the rest are
 * reset, counted as refused "load"), which is the flood defence at work, not
 * what a handshake costs.
 */
const PARALLEL = Number(process.env.BENCH_TLS_PARALLEL ?? 1);
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "storm");
/** Which half to run: `handshakes` (the rates), `calls` (established calls under a handshake storm), or `all`. */
const PART = process.env.BENCH_TLS_PART ?? "all";
if (!["handshakes", "calls", "all"].includes(PART))
  throw new Error(`BENCH_TLS_PART: handshakes, calls or all, not ${PART}`);

const processes = new Processes();

const KEYS = {
  "ecdsa-p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  "rsa-2048": ["-newkey", "rsa:2048"],
  "rsa-4096": ["-newkey", "rsa:4096"],
} as const;
type KeyType = keyof typeof KEYS;
/** The certificate the storm's handshakes are made with (the second half). */
const STORM_KEY = (process.env.BENCH_TLS_STORM_KEY ?? "ecdsa-p256") as KeyType;
if (!(STORM_KEY in KEYS)) throw new Error(`BENCH_TLS_STORM_KEY: one of ${Object.keys(KEYS).join(", ")}`);
type Mode = "full" | "resumed";
/** The first half: four cases a key type (two servers, two modes) of SECONDS each, with servers started and stopped between them. */
const DEADLINE_MS = 4 * Object.keys(KEYS).length * (SECONDS + 20) * 1000;

interface Server {
  readonly name: "sipedge" | "bare";
  readonly port: number;
  /** CPU ticks of the thread that does the handshakes so far. */
  readonly ticks: () => number;
  /** sipedge's own counts so far (the bare server keeps none). */
  readonly counted: () => Promise<Counted | undefined>;
  readonly stop: () => Promise<void>;
}

/** What sipedge counted: handshakes it resumed, connections its overload control refused. */
interface Counted {
  readonly resumed: number;
  readonly refused: number;
}

interface Case {
  readonly server: Server["name"];
  readonly key: KeyType;
  readonly mode: Mode;
  readonly handshakes: number;
  readonly resumed: number;
  readonly failed: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly threadCpuSeconds: number;
  readonly perCpuSecond: number;
  /** The key-exchange group the clients negotiated. */
  readonly group: string;
  /** sipedge's counters over the case. */
  readonly bySipedge?: Counted;
}

async function startSipedgeTls(files: { cert: string; key: string }): Promise<Server> {
  const admin = await freePort();
  const cli = await startCli(await handshakesOnlyConfig(files, admin), "admin API");
  const pid = cli.child.pid as number;
  return {
    name: "sipedge",
    port: listeningPort(cli.out(), "tls"),
    ticks: () => threadTicks(pid, "sipedge-io-0"),
    counted: async () => {
      const m = await metrics(admin);
      return {
        resumed: m.by("sipedge_tls_handshakes_by_session_total", "session").get("resumed") ?? 0,
        refused: m.by("sipedge_connections_refused_total", "reason").get("load") ?? 0,
      };
    },
    stop: () => processes.kill(cli.child),
  };
}

async function startBare(files: { cert: string; key: string }): Promise<Server> {
  const child = processes.spawn(process.execPath, [join(FIXTURES, "bare-tls-server.ts"), files.cert, files.key]);
  const port = Number((await lineFrom(child, /port (\d+)/, 10_000))[1]);
  return {
    name: "bare",
    port,
    ticks: () => threadTicks(child.pid as number, "MainThread"),
    counted: async () => undefined,
    stop: () => processes.kill(child),
  };
}

/** One case: the clients' handshakes against `server` in `mode`, and what they cost its serving thread. */
async function run(server: Server, key: KeyType, mode: Mode): Promise<Case> {
  const [ticks0, counted0] = [server.ticks(), await server.counted()];
  const load = { mode, seconds: SECONDS, max: MAX, parallel: PARALLEL };
  const clients = startHandshakeClients(processes, server.port, CLIENTS, load);
  const { handshakes, resumed, failed, seconds, group } = await clients.done;
  const threadCpuSeconds = (server.ticks() - ticks0) / 100;
  const counted1 = await server.counted();
  return {
    server: server.name,
    key,
    mode,
    handshakes,
    resumed,
    failed,
    seconds,
    perSecond: handshakes / seconds,
    threadCpuSeconds,
    perCpuSecond: handshakes / Math.max(0.01, threadCpuSeconds),
    group,
    ...(counted0 === undefined || counted1 === undefined
      ? {}
      : { bySipedge: { resumed: counted1.resumed - counted0.resumed, refused: counted1.refused - counted0.refused } }),
  };
}

function line(c: Case): string {
  const by = c.bySipedge;
  const counted = by === undefined ? "" : `; sipedge counted ${by.resumed} resumed, ${by.refused} refused for load`;
  return (
    `  ${c.server.padEnd(7)} ${c.key.padEnd(10)} ${c.mode.padEnd(7)} ` +
    `${c.perCpuSecond.toFixed(0).padStart(6)} per CPU-s of its thread, ${c.perSecond.toFixed(0).padStart(5)}/s ` +
    `(${c.handshakes} in ${c.seconds.toFixed(1)} s, ${c.resumed} resumed, ${c.failed} failed, ` +
    `thread ${c.threadCpuSeconds.toFixed(2)} CPU-s, group ${c.group}${counted})`
  );
}

/** The first half: every key type, both servers, both modes; the figures and their sipedge / bare ratios. */
async function handshakeCases() {
  const started = new Date();
  console.log(
    `TLS handshakes: ${CLIENTS} client processes × ${PARALLEL} at a time, ${SECONDS} s or ${MAX} handshakes a case`,
  );
  const cases: Case[] = [];
  for (const key of Object.keys(KEYS) as KeyType[]) {
    const files = selfSignedCertificate(KEYS[key], `bench-tls-${key}`);
    for (const start of [startSipedgeTls, startBare]) {
      const server = await start(files);
      try {
        for (const mode of ["full", "resumed"] as const) {
          const c = await run(server, key, mode);
          cases.push(c);
          console.log(line(c));
        }
      } finally {
        await server.stop();
      }
    }
  }
  const ratios = cases
    .filter((c) => c.server === "sipedge")
    .map((se) => {
      const bare = cases.find((b) => b.server === "bare" && b.key === se.key && b.mode === se.mode);
      return { key: se.key, mode: se.mode, perCpuSecond: se.perCpuSecond / (bare?.perCpuSecond ?? Number.NaN) };
    });
  for (const r of ratios) console.log(`  sipedge / bare, ${r.key} ${r.mode}: ${r.perCpuSecond.toFixed(2)}`);
  return {
    started: started.toISOString(),
    node: process.version,
    openssl: process.versions.openssl,
    settings: { seconds: SECONDS, max: MAX, clients: CLIENTS, parallel: PARALLEL },
    cases,
    ratios,
  };
}

/** docs/perf/tls.json as the last run left it: a part not run this time keeps its figures from there. */
function previous(): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(join(ROOT, "docs", "perf", "tls.json"), "utf8"));
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const { calls: lastCalls, ...lastHandshakes } = previous();
  const handshakes = PART === "calls" ? lastHandshakes : await handshakeCases();
  const calls =
    PART === "handshakes"
      ? lastCalls
      : await callsUnderStorm(
          processes,
          STORM_KEY,
          selfSignedCertificate(KEYS[STORM_KEY], `bench-tls-storm-${STORM_KEY}`),
        );
  const file = saveResult("tls", started, { ...handshakes, calls });
  console.log(`results: ${file}, docs/perf/tls.json`);
}

runBounded(
  "bench:tls",
  (PART === "calls" ? 0 : DEADLINE_MS) + (PART === "handshakes" ? 0 : CALLS_DEADLINE_MS),
  main,
  () => processes.killAll(),
);
