/**
 * `npm run bench:connections`: what an idle client TLS connection costs,
 * and whether sipedge still answers at once while it holds them.
 * BENCH_CONNECTIONS (4 000) TLS connections are opened by client processes
 * (test/fixtures/storm/idle-tls-clients.ts, BENCH_CLIENTS_PER_PROCESS each),
 * bound to sources spread over 127.0.0.2 and up (PER_SOURCE each, so no
 * source runs out of ephemeral ports), first to sipedge (one IO worker, a
 * TLS listener, limits that hold them) and then to a bare Node TLS server
 * (test/fixtures/storm/bare-tls-server.ts), each from its own sources (the
 * first run's closed connections wait out TIME_WAIT on theirs). For each,
 * the growth of the server process's RSS once all are up and idle, divided
 * by their number; their ratio is the target (≤ 1.05). With sipedge's
 * connections up, OPTIONS to sipedge itself over a connection held since
 * before the clients came, and over a fresh one, must be answered within
 * OPTIONS_WITHIN_MS. The per-connection figure is what
 * src/config/budget.ts's CONNECTION_COST should be.
 *
 * Every process that holds connections runs under a raised open-file limit
 * (`ulimit -n` in a bash launcher; fs.nr_open and fs.file-max raised with
 * sysctl first when they are lower, never lowered); raising the hard limit
 * needs root with CAP_SYS_RESOURCE. Without it the bench says how many
 * connections this machine can hold and runs itself again, as root, inside
 * user-mode Linux (connections/uml.sh: a kernel that is a process of this
 * machine, whose limits are its own); BENCH_UML=0 stops there instead,
 * BENCH_UML=1 goes into user-mode Linux whatever the limit.
 * Results: bench-results/connections-<time>.json, the latest also as
 * docs/perf/connections.json.
 * Bounded: each connect attempt has a 10 s deadline, each client process
 * CLIENTS_DEADLINE_MS for all of its connections.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { CONNECTION_COST } from "../../src/config/budget.ts";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { request } from "../helpers/dialog.ts";
import { metricByLabel, metricSum, scrape } from "../helpers/metrics.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { onSipMessages, UdpPeer } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { MiB, rssOf } from "../helpers/storm.ts";
import { lineFrom } from "./child-output.ts";
import { saveResult } from "./results.ts";

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 4000);
/**
 * One Node process's share of the clients: 12 500 TLS client sockets hold
 * about 0.6 GiB and stay under an open-file limit of 20 000 even where it
 * cannot be raised; four processes carry 50 000.
 */
const PER_PROCESS = Number(process.env.BENCH_CLIENTS_PER_PROCESS ?? 12_500);
/** Connections from one source address: far under the ~14 000 ports Linux hands out to bind(port 0) on one address. */
const PER_SOURCE = 1000;
/** Sources 127.0.0.2 to .254: both runs' sources must fit in them. */
const SOURCES = 253;
/** Open files a server or client process needs beyond its connections (its own files, listeners, pipes). */
const SPARE_FILES = 1024;
const OPTIONS_WITHIN_MS = 100;
/**
 * For one client process to open all of its connections; each attempt has
 * its own 10 s deadline. The client processes share the machine: under
 * user-mode Linux (one CPU, every system call a trap) 4 000 connections took
 * 66 s, 16 ms each (2026-12-04), so 40 ms a connection of the whole run,
 * at least 6 minutes.
 */
const CLIENTS_DEADLINE_MS = Math.max(6 * 60_000, COUNT * 40);

const processes = new Processes();
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

/**
 * Raises fs.nr_open and fs.file-max where they are under what the run
 * needs (never lowers them), then checks that a process may hold `perProcess`
 * open files: throws, saying why and how many connections fit, when not.
 */
function raiseFileLimits(perProcess: number, total: number): void {
  const sysctl = (key: string, need: number) => {
    const now = Number(readFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8").trim());
    if (now >= need) return;
    const r = spawnSync("sysctl", ["-w", `${key}=${need}`], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cannot raise ${key} from ${now} to ${need}: ${r.stderr.trim()}`);
    console.log(`  raised ${key} from ${now} to ${need}`);
  };
  sysctl("fs.nr_open", perProcess);
  sysctl("fs.file-max", total);
  const r = spawnSync("bash", ["-c", `ulimit -n ${perProcess}`], { encoding: "utf8" });
  if (r.status === 0) return;
  const hard = spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
  const canRaise = (BigInt(`0x${capEff}`) >> 24n) & 1n; // CAP_SYS_RESOURCE is capability 24
  throw new Error(
    `a process here may hold at most ${hard} open files (RLIMIT_NOFILE hard limit; ` +
      `${canRaise ? "raising it failed" : "no CAP_SYS_RESOURCE to raise it"}): ${r.stderr.trim()}; ` +
      `the server holds every connection, so BENCH_CONNECTIONS=${Number(hard) - SPARE_FILES} is the most this machine runs`,
  );
}

/**
 * The same bench as root inside user-mode Linux (connections/uml.sh), whose
 * kernel's limits are its own to raise: where this machine's hard
 * open-file limit is under what the run needs and cannot be raised. Memory
 * for both runs' servers and clients (about 50 KiB a connection at each
 * end); time for both runs' clients and the rest. Returns its exit status.
 */
function rerunInUml(): number {
  const r = spawnSync(
    "bash",
    [join(import.meta.dirname, "connections", "uml.sh"), process.execPath, import.meta.filename],
    {
      stdio: "inherit",
      env: {
        ...process.env,
        UML_MEM: process.env.UML_MEM ?? `${2048 + Math.ceil(COUNT / 5)}`,
        UML_TIMEOUT: process.env.UML_TIMEOUT ?? `${Math.ceil((2 * CLIENTS_DEADLINE_MS) / 1000) + 600}`,
      },
    },
  );
  return r.status ?? 1;
}

/** A bash launcher that raises the open-file limit to `files` and then runs its arguments. */
function withFiles(files: number): string[] {
  return ["bash", "-c", `ulimit -n ${files} && exec "$0" "$@"`];
}

interface Clients {
  readonly children: readonly ChildProcess[];
  readonly up: number;
  readonly failed: number;
  readonly seconds: number;
}

/** Opens COUNT connections to port from client processes, sources from 127.0.0.(2 + firstSource / PER_SOURCE) on. */
async function openClients(port: number, firstSource: number): Promise<Clients> {
  const started = Date.now();
  const script = new URL("../fixtures/storm/idle-tls-clients.ts", import.meta.url).pathname;
  const children: ChildProcess[] = [];
  const results: Promise<{ up: number; failed: number }>[] = [];
  for (let first = 0; first < COUNT; first += PER_PROCESS) {
    const n = Math.min(PER_PROCESS, COUNT - first);
    const [command, ...args] = [...withFiles(n + SPARE_FILES), process.execPath, script];
    const child = processes.spawn(
      command as string,
      [...args, `${port}`, `${n}`, `${firstSource + first}`, `${PER_SOURCE}`],
      undefined,
      {
        stdin: true,
        env: process.env,
      },
    );
    children.push(child);
    results.push(
      lineFrom(child, /^up (\d+) failed (\d+)$/m, CLIENTS_DEADLINE_MS).then(
        (m) => ({ up: Number(m[1]), failed: Number(m[2]) }),
        () => ({ up: 0, failed: n }),
      ),
    );
  }
  const all = await Promise.all(results);
  return {
    children,
    up: all.reduce((s, r) => s + r.up, 0),
    failed: all.reduce((s, r) => s + r.failed, 0),
    seconds: (Date.now() - started) / 1000,
  };
}

/** Connections the client processes still hold (none closed by the server since they came up). */
async function stillOpen(children: readonly ChildProcess[]): Promise<number> {
  const counts = await Promise.all(
    children.map((c) => {
      const line = lineFrom(c, /^open (\d+)$/m, 10_000);
      c.stdin?.write("?\n");
      return line.then(
        (m) => Number(m[1]),
        () => 0,
      );
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** RSS, the median of three samples 250 ms apart (a GC between two does not make the figure). */
async function rss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(250);
    samples.push(rssOf(pid));
  }
  return samples.sort((a, b) => a - b)[1] as number;
}

interface Figure {
  readonly perConnection: number;
  /** Of perConnection, the growth of the V8 heap in use (every thread's) per connection. */
  readonly heapPerConnection: number;
  readonly up: number;
  readonly failed: number;
  readonly held: number;
  readonly seconds: number;
  readonly before: number;
  readonly after: number;
}

/** A server under measurement: its process, its port, and the bytes its V8 heaps (every thread's) have in use. */
interface Server {
  readonly pid: number;
  readonly port: number;
  heapUsed(): Promise<number>;
}

/**
 * RSS growth per connection of `server` once COUNT idle connections are up,
 * and how much of it is V8 heap; `whileHeld` runs before they close. RSS
 * read 3 s after the last handshake stays put for a minute after (both
 * servers, 15 000 connections, sampled every 10 s; 2026-12-05).
 */
async function costPerConnection(
  server: Server,
  firstSource: number,
  whileHeld: () => Promise<void> = async () => {},
): Promise<Figure> {
  await sleep(1000);
  const before = await rss(server.pid);
  const heapBefore = await server.heapUsed();
  const clients = await openClients(server.port, firstSource);
  await sleep(3000); // settled: handshake garbage collected
  const after = await rss(server.pid);
  const heapAfter = await server.heapUsed();
  const held = await stillOpen(clients.children);
  await whileHeld();
  await Promise.all(clients.children.map((c) => processes.kill(c)));
  // The figures only: a spread of `clients` would carry its ChildProcess objects into the saved result.
  const { up, failed, seconds } = clients;
  const per = (bytes: number) => bytes / Math.max(1, up);
  return {
    up,
    failed,
    seconds,
    held,
    before,
    after,
    perConnection: per(after - before),
    heapPerConnection: per(heapAfter - heapBefore),
  };
}

/**
 * A TLS connection to sipedge that times OPTIONS round trips: an answer is
 * taken the moment it is read (not polled for).
 */
class OptionsClient {
  readonly #socket: TLSSocket;
  readonly #waiting = new Map<string, (status: number) => void>();

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    onSipMessages(socket, (m) => {
      if (m.kind !== "response") return;
      const callId = m.callId();
      if (callId.ok) this.#waiting.get(callId.value)?.(m.status);
    });
    socket.on("error", () => {});
  }

  /** Connects to 127.0.0.1:port; rejects after 10 s. */
  static connect(port: number): Promise<OptionsClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.2" });
      const deadline = setTimeout(() => {
        s.destroy();
        reject(new Error("no TLS connection to sipedge within 10 s"));
      }, 10_000);
      s.once("error", reject);
      s.once("secureConnect", () => {
        clearTimeout(deadline);
        resolve(new OptionsClient(s));
      });
    });
  }

  /**
   * An OPTIONS to sipedge itself (no user part in the Request-URI: sipedge
   * answers it, src/proxy/core.ts #addressedToUs, rather than forwarding it):
   * ms to its answer, and the answer's status (0: none within 5 s).
   */
  options(port: number, callId: string): Promise<{ ms: number; status: number }> {
    return new Promise((resolve) => {
      const t = performance.now();
      const done = (status: number) => {
        clearTimeout(deadline);
        this.#waiting.delete(callId);
        resolve({ ms: performance.now() - t, status });
      };
      const deadline = setTimeout(() => done(0), 5000);
      this.#waiting.set(callId, done);
      this.#socket.write(
        request({
          method: "OPTIONS",
          uri: `sip:127.0.0.1:${port};transport=tls`,
          to: `<sip:127.0.0.1:${port}>`,
          transport: "TLS",
          localPort: this.#socket.localPort ?? 0,
          callId,
          cseq: 1,
          branch: callId,
        }),
      );
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

interface Options {
  /** Over a connection opened before the clients and held since: each round trip. */
  readonly held: { ms: number; status: number }[];
  /** A fresh connection: its TLS handshake, then an OPTIONS over it. */
  readonly fresh: { handshakeMs: number; ms: number; status: number };
}

async function optionsNow(held: OptionsClient, port: number, round: number): Promise<Options> {
  const trips = [];
  for (let i = 0; i < 5; i++) trips.push(await held.options(port, `bench-${round}-${i}`));
  const t = performance.now();
  const fresh = await OptionsClient.connect(port);
  const handshakeMs = performance.now() - t;
  const trip = await fresh.options(port, `bench-${round}-fresh`);
  fresh.close();
  return { held: trips, fresh: { handshakeMs, ...trip } };
}

async function sipedgeFigure(cert: {
  cert: string;
  key: string;
}): Promise<Figure & { options: Options[]; refused: string }> {
  const admin = await freePort();
  // The budget's quarter for connections must hold them all (src/config/validate.ts refuses less).
  const memory = Math.ceil((COUNT * CONNECTION_COST * 4 * 1.1) / MiB);
  // A backend that answers health probes: sipedge answers OPTIONS with 200 only while one is up.
  const backend = await UdpPeer.bind(true);
  const cli = await startCli(
    configFile(
      [
        "io: { threads: 1, pin: false }",
        "listen:",
        `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${cert.cert}, key: ${cert.key} }`,
        "backends:",
        "  - name: core",
        "    members:",
        `      - { name: a, uri: "sip:127.0.0.1:${backend.port}" }`,
        `admin: { listen: "127.0.0.1:${admin}" }`,
        // idleTimeout 0: these clients are silent by design (real ones keep their flows alive, RFC 5626 §4.4.1),
        // and under user-mode Linux 50 000 take 18 minutes to come up, past the default 15: the first 10 000
        // and the OPTIONS connection held since the start were closed as idle (2026-12-04).
        `limits: { memory: ${memory}MiB, maxConnections: ${COUNT + 10}, maxConnectionsPerIp: ${PER_SOURCE + 10}, maxHandshakes: 1000, idleTimeout: 0 }`,
      ].join("\n"),
    ),
    "admin API",
    process.env,
    withFiles(COUNT + SPARE_FILES),
  );
  try {
    // Slower to start than startCli waits for under user-mode Linux (./connections/uml.sh), where each page fault
    // is a trap: 60 s with the memory budget of 50 000 connections, its pools zeroed (2026-12-04).
    for (let i = 0; i < 3000 && !cli.out().includes("admin API") && cli.child.exitCode === null; i++) await sleep(100);
    const port = listeningPort(cli.out(), "tls");
    if (!(port > 0)) throw new Error(`sipedge did not start: ${cli.err().slice(-500)}`);
    const probe = await OptionsClient.connect(port);
    await sleep(1500); // the backend's first probe answered
    const options = [await optionsNow(probe, port, 0)];
    let refused = "";
    const heapUsed = async () => {
      const text = await scrape(admin);
      // The main thread's, and each IO thread's.
      return (
        metricSum(text, "nodejs_heap_size_used_bytes") +
        (metricByLabel(text, "sipedge_heap_bytes", "stat").get("used") ?? 0)
      );
    };
    const figure = await costPerConnection({ pid: cli.child.pid as number, port, heapUsed }, 0, async () => {
      options.push(await optionsNow(probe, port, 1));
      const by = metricByLabel(await scrape(admin), "sipedge_connections_refused_total", "reason");
      refused = [...by].map(([reason, n]) => `${reason} ${n}`).join(", ");
    });
    probe.close();
    return { ...figure, options, refused };
  } finally {
    cli.child.kill("SIGKILL");
    backend.close();
  }
}

async function bareFigure(cert: { cert: string; key: string }, firstSource: number): Promise<Figure> {
  const [command, ...args] = [
    ...withFiles(COUNT + SPARE_FILES),
    process.execPath,
    new URL("../fixtures/storm/bare-tls-server.ts", import.meta.url).pathname,
    cert.cert,
    cert.key,
  ];
  const child: ChildProcess = processes.spawn(command as string, args, undefined, { stdin: true });
  const port = Number((await lineFrom(child, /port (\d+)/, 10_000))[1]);
  const heapUsed = async () => {
    const line = lineFrom(child, /^heap (\d+)$/m, 10_000);
    child.stdin?.write("heap\n");
    return Number((await line)[1]);
  };
  try {
    return await costPerConnection({ pid: child.pid as number, port, heapUsed }, firstSource);
  } finally {
    await processes.kill(child);
  }
}

function optionsLine(o: Options): string {
  const held = o.held.map((t) => t.ms);
  const statuses = new Set([...o.held.map((t) => t.status), o.fresh.status]);
  return (
    `held connection ${held.map((ms) => ms.toFixed(1)).join(", ")} ms (max ${Math.max(...held).toFixed(1)}); ` +
    `fresh connection: handshake ${o.fresh.handshakeMs.toFixed(1)} ms, then ${o.fresh.ms.toFixed(1)} ms; ` +
    `status ${[...statuses].join(", ")}`
  );
}

function figureLine(name: string, f: Figure): string {
  return (
    `  ${name} ${kib(f.perConnection)} a connection (V8 heap ${kib(f.heapPerConnection)} of it): ${f.up} up (${f.failed} failed, ${f.held} still open at the end) ` +
    `in ${f.seconds.toFixed(0)} s; RSS ${(f.before / MiB).toFixed(0)} → ${(f.after / MiB).toFixed(0)} MiB`
  );
}

async function main(): Promise<void> {
  const inUml = process.env.SIPEDGE_IN_UML !== undefined;
  if (process.env.BENCH_UML === "1" && !inUml) {
    process.exitCode = rerunInUml();
    return;
  }
  const sourcesPerRun = Math.ceil(COUNT / PER_SOURCE);
  if (2 * sourcesPerRun > SOURCES) throw new Error(`BENCH_CONNECTIONS=${COUNT} needs more than ${SOURCES} sources`);
  const clientProcesses = Math.ceil(COUNT / PER_PROCESS);
  console.log(
    `idle TLS connection cost: ${COUNT} connections (BENCH_CONNECTIONS) from ${clientProcesses} client processes, ` +
      `${sourcesPerRun} sources of ${PER_SOURCE}; RSS growth of the server process`,
  );
  // Both ends of every connection are on this machine: the server's files, and the clients' in all.
  try {
    raiseFileLimits(COUNT + SPARE_FILES, 2 * COUNT + (clientProcesses + 1) * SPARE_FILES + 65_536);
  } catch (e) {
    if (inUml || process.env.BENCH_UML === "0") throw e;
    console.log(`  ${e instanceof Error ? e.message : e}`);
    console.log(
      "  so the bench runs again as root inside user-mode Linux (connections/uml.sh; BENCH_UML=0 stops here)",
    );
    process.exitCode = rerunInUml();
    return;
  }
  const kernel = inUml ? `user-mode Linux ${release()}, one CPU` : release();
  if (inUml) console.log(`  inside ${kernel}`);
  const cert = demoCertificate(CERT_DIR);
  const started = Date.now();
  const se = await sipedgeFigure(cert);
  const bare = await bareFigure(cert, sourcesPerRun * PER_SOURCE);
  const ratio = se.perConnection / bare.perConnection;
  const [first, last] = se.options as [Options, Options];
  const worst = Math.max(...last.held.map((t) => t.ms), last.fresh.ms);
  const answered = [...last.held, last.fresh].every((t) => t.status === 200);
  console.log(figureLine("sipedge (1 IO worker):", se));
  console.log(`    connection attempts sipedge refused at the door (each retried): ${se.refused || "none"}`);
  console.log(figureLine("bare Node TLS server: ", bare));
  console.log(`  sipedge / bare: ${ratio.toFixed(3)} (target ≤ 1.05${ratio <= 1.05 ? ", met" : ", MISSED"})`);
  console.log(`  OPTIONS before the clients: ${optionsLine(first)}`);
  console.log(`  OPTIONS with ${se.held} held:  ${optionsLine(last)}`);
  console.log(
    `  OPTIONS at the end within ${OPTIONS_WITHIN_MS} ms: ${answered && worst <= OPTIONS_WITHIN_MS ? "yes" : "NO"} ` +
      `(slowest ${worst.toFixed(1)} ms)`,
  );
  console.log(
    `  budget's CONNECTION_COST ${kib(CONNECTION_COST)}` +
      (se.perConnection <= CONNECTION_COST ? " (holds)" : " (EXCEEDED: raise it in src/config/budget.ts)"),
  );
  console.log(`  whole run ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const file = saveResult("connections", new Date(started), {
    connections: COUNT,
    kernel,
    node: process.version,
    sipedge: se,
    bare,
    ratio,
    optionsWithinMs: OPTIONS_WITHIN_MS,
    optionsAnswered: answered && worst <= OPTIONS_WITHIN_MS,
    slowestOptionsMs: worst,
    connectionCost: CONNECTION_COST,
  });
  console.log(`results: ${file}, docs/perf/connections.json`);
  await processes.killAll();
}

main().catch(async (e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  await processes.killAll();
  process.exitCode = 1;
});
