/**
 * `npm run bench:threads`: where sipedge's CPU per call goes, thread by
 * thread. sipedge on one IO thread between a sipp UAC and two sipp UASs
 * (bench:compare's setup), a warm-up, then BENCH_RATE calls/s (1 000) for
 * BENCH_SECONDS (12) and a 6 s tail; printed: CPU-s per 1 000 calls of the
 * whole process and of each thread by name (the IO thread, V8's helper
 * threads "V8Worker", the main and health threads), the IO thread's user and
 * kernel time, and its context switches per call. Slow spells of this VM
 * show as user and kernel time both up ~1.5× with fewer context switches
 * (the same work on a slower vCPU); more work would bring more switches.
 * BENCH_TLS=1: over one TLS connection (a stunnel client in front of sipp).
 * BENCH_SIPEDGE_CLI: another tree, as in bench:compare. Bounded to 3 minutes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { freePort, Processes, sleep, startStunnel } from "../helpers/net.ts";
import { runBounded } from "./bounded.ts";
import { certificate, startSipedge } from "./compare/balancers.ts";
import { runUac, startUas } from "./compare/sipp.ts";

const RATE = Number(process.env.BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 12);
const TLS = process.env.BENCH_TLS === "1";
const processes = new Processes();

/** Ticks (USER_HZ) by thread name (digits dropped: one row for every V8Worker), the IO thread's split and switches. */
function threads(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      const [user, system] = [Number(f[11] ?? 0), Number(f[12] ?? 0)];
      const key = name.replace(/\d+$/, "");
      m.set(key, (m.get(key) ?? 0) + user + system);
      if (!name.startsWith("sipedge-io")) continue;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      m.set("io user", (m.get("io user") ?? 0) + user);
      m.set("io kernel", (m.get("io kernel") ?? 0) + system);
      const switches = (kind: string) => Number(new RegExp(`^${kind}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
      m.set("io switches", (m.get("io switches") ?? 0) + switches("voluntary_ctxt_switches"));
      m.set("io preempted", (m.get("io preempted") ?? 0) + switches("nonvoluntary_ctxt_switches"));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return m;
}

async function main(): Promise<void> {
  const uas = [startUas(processes, await freePort()), startUas(processes, await freePort())];
  await sleep(500);
  const b = await startSipedge(
    processes,
    uas.map((u) => u.port),
  );
  const pid = b.pids()[0] as number;
  let target = `127.0.0.1:${b.udp}`;
  if (TLS) {
    const port = await freePort();
    startStunnel(processes, port, b.tls, certificate(), "client");
    await sleep(500);
    target = `127.0.0.1:${port}`;
  }
  const transport = TLS ? "t1" : "u1";
  await runUac(processes, target, { calls: RATE * 3, rate: RATE, transport, timeoutSeconds: 20 }); // warm-up
  await sleep(3000);
  const before = threads(pid);
  const calls = RATE * SECONDS;
  const counts = await runUac(processes, target, { calls, rate: RATE, transport, timeoutSeconds: SECONDS + 20 });
  await sleep(6000);
  const after = threads(pid);
  const per1000 = (ticks: number) => ((ticks / 100 / calls) * 1000).toFixed(3);
  let total = 0;
  const rows: string[] = [];
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (k === "io switches" || k === "io preempted") rows.push(`${k} ${(d / calls).toFixed(2)}/call`);
    else if (k.startsWith("io ")) rows.push(`${k} ${per1000(d)}`);
    else if (d > 0) {
      total += d;
      rows.push(`${k} ${per1000(d)}`);
    }
  }
  console.log(
    `threads benchmark: sipedge ${TLS ? "over TLS" : "over UDP"} at ${RATE} calls/s for ${SECONDS} s; ` +
      `${counts.successful} of ${counts.calls} calls ok`,
  );
  console.log(`  CPU-s per 1 000 calls: the process ${per1000(total)}; ${rows.join(", ")}`);
}

runBounded("bench:threads", 180_000, main, () => processes.killAll());
