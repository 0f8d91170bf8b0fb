/**
 * `npm run soak`: the storm test's load, kept up for SOAK_MINUTES (10 by
 * default) to show what a short test cannot: that nothing grows. Each
 * minute: sipp UACs offering SOAK_CPS calls per second (test/fixtures/sipp/
 * uac_accepts_503.xml, so a 503 ends a call), SOAK_SLOW TLS clients that
 * drip a byte a second and a storm of SOAK_STORM handshakes
 * (test/fixtures/storm/tls-clients.ts), calls held SOAK_HOLD_MS each, and
 * an OPTIONS probe to sipedge every 500 ms; sipedge's RSS is sampled every
 * second. Per minute it prints calls offered, set up, refused and lost, the
 * slowest OPTIONS answer, RSS and the pool's lowest free share. At the end,
 * with the load gone: the pool must be back, new calls must go through, RSS
 * must have stayed under the budget plus the documented overhead, and the
 * last minute's peak RSS must not be more than SOAK_GROWTH (10 %) above the
 * middle minute's. A leak shows as steady growth, so it shows in the second
 * half too; the first minutes are the heaps and allocator settling to their
 * working size (an hour's soak: 293 MiB at the first minute's peak, 320 by
 * the eighteenth, 329 by the thirty-fifth, then 328-329 to the sixtieth),
 * which is not a leak. Exits 1 when any of these fail.
 * Bounded: every minute is a fixed number of calls with a deadline.
 */
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { metricByLabel, metricSum, metricValues, scrape } from "../helpers/metrics.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { runUac, startUas } from "../helpers/sipp.ts";
import { BUDGET, FIXED_OVERHEAD, flood, MiB, probing, rssOf, stormConfig, tlsClients } from "../helpers/storm.ts";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const CPS = Number(process.env.SOAK_CPS ?? 4000);
const SLOW = Number(process.env.SOAK_SLOW ?? 500);
const STORM = Number(process.env.SOAK_STORM ?? 300);
const HOLD_MS = Number(process.env.SOAK_HOLD_MS ?? 2000);
const GROWTH = Number(process.env.SOAK_GROWTH ?? 0.1);
/** What one sipp UAC offers at most; more UACs for more. */
const PER_UAC = 2000;

const processes = new Processes();

interface Minute {
  offered: number;
  lost: number;
  setUp: number;
  refused: number;
  worstProbe: number;
  rssMin: number;
  rssMax: number;
  /** The IO workers' V8 heaps in use together, at the minute's peak: a leak in JavaScript grows this. */
  heapMax: number;
  poolLow: number;
  restarts: number;
}

async function minute(udp: number, tls: number, admin: number, pid: number): Promise<Minute> {
  const before = await scrape(admin);
  const rss: number[] = [];
  let poolLow = 1;
  let heapMax = 0;
  const sampler = setInterval(async () => {
    rss.push(rssOf(pid));
    const text = await scrape(admin).catch(() => "");
    poolLow = Math.min(poolLow, ...metricValues(text, "sipedge_buffer_pool_free_ratio"));
    heapMax = Math.max(heapMax, metricByLabel(text, "sipedge_heap_bytes", "stat").get("used") ?? 0);
  }, 1000);
  const prober = probing(udp, 500);
  const clients = tlsClients(processes, tls, SLOW, STORM);
  const uacs = Math.max(1, Math.ceil(CPS / PER_UAC));
  const runs = await flood(processes, udp, {
    uacs,
    rate: CPS,
    seconds: 60,
    timeoutSeconds: 100,
    extra: ["-l", String(Math.round(CPS / uacs) * 10), "-d", String(HOLD_MS)],
  });
  clients.stop();
  const probes = await prober.stop();
  clearInterval(sampler);
  const after = await scrape(admin);
  const delta = (name: string) => metricSum(after, name) - metricSum(before, name);
  return {
    offered: runs.reduce((n, r) => n + r.calls, 0),
    lost: runs.reduce((n, r) => n + r.failed, 0),
    setUp: delta("sipedge_backend_calls_total"),
    refused: delta("sipedge_overload_rejected_total") + delta("sipedge_no_backend_total"),
    worstProbe: Math.max(...probes),
    rssMin: Math.min(...rss),
    rssMax: Math.max(...rss),
    heapMax,
    poolLow,
    restarts: delta("sipedge_worker_restarts_total"),
  };
}

async function main(): Promise<number> {
  console.log(
    `soak: ${MINUTES} min, ${CPS} cps offered, ${SLOW} slow TLS clients and ${STORM} handshakes a minute, ` +
      `calls held ${HOLD_MS} ms; budget ${BUDGET / MiB} MiB + overhead ${FIXED_OVERHEAD / MiB} MiB`,
  );
  const backends = [await freePort(), await freePort()];
  for (const p of backends) startUas(processes, p);
  const admin = await freePort();
  const cli = await startCli(configFile(stormConfig(backends, admin, demoCertificate(CERT_DIR))), "admin API");
  const pid = cli.child.pid as number;
  const udp = listeningPort(cli.out(), "udp");
  const tls = listeningPort(cli.out(), "tls");
  await sleep(2500); // backends probed up
  const minutes: Minute[] = [];
  for (let i = 0; i < MINUTES && cli.child.exitCode === null; i++) {
    const m = await minute(udp, tls, admin, pid);
    minutes.push(m);
    console.log(
      `  min ${String(i + 1).padStart(3)}: ${m.offered} offered, ${m.setUp} set up, ${m.refused} refused (503), ` +
        `${m.lost} lost; OPTIONS worst ${m.worstProbe} ms; RSS ${(m.rssMin / MiB).toFixed(0)}-${(m.rssMax / MiB).toFixed(0)} MiB ` +
        `(heaps ≤ ${(m.heapMax / MiB).toFixed(0)} MiB); ` +
        `pool low ${(m.poolLow * 100).toFixed(0)} % free` +
        (m.restarts > 0 ? `; ${m.restarts} IO worker restart(s)` : ""),
    );
  }
  await sleep(3000); // the last calls' transactions wind down
  const text = await scrape(admin);
  const pools = metricValues(text, "sipedge_buffer_pool_free_ratio");
  const after = await runUac(processes, `127.0.0.1:${udp}`, { calls: 20, rate: 20 });
  const middle = minutes[Math.floor((minutes.length - 1) / 2)]?.rssMax ?? 0;
  const last = minutes.at(-1)?.rssMax ?? 0;
  const peak = Math.max(...minutes.map((m) => m.rssMax));
  const checks: [string, boolean][] = [
    [
      "sipedge stayed up, no IO worker restarted",
      cli.child.exitCode === null && minutes.every((m) => m.restarts === 0),
    ],
    [
      `peak RSS ${(peak / MiB).toFixed(0)} MiB under ${(BUDGET + FIXED_OVERHEAD) / MiB} MiB`,
      peak < BUDGET + FIXED_OVERHEAD,
    ],
    [
      `last minute's peak RSS ${(last / MiB).toFixed(0)} MiB within ${GROWTH * 100} % of the middle minute's ${(middle / MiB).toFixed(0)} MiB`,
      last <= middle * (1 + GROWTH),
    ],
    [`every OPTIONS answered within 2 s`, minutes.every((m) => m.worstProbe < 2000)],
    [`pool back above 75 % free (${pools.map((p) => p.toFixed(2)).join(", ")})`, pools.every((p) => p > 0.75)],
    [`20/20 new calls afterwards (${after.successful})`, after.successful === 20],
  ];
  for (const [what, ok] of checks) console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  await processes.killAll();
  cli.child.kill("SIGKILL");
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: unknown) => {
    console.error(e);
    await processes.killAll();
    process.exitCode = 1;
  },
);
