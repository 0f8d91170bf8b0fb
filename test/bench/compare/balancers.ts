/**
 * The three balancers bench:compare puts between sipp's UAC and the two
 * UASs, each with the same job: a UDP listener (and a TLS one, but for the
 * relay), the two UASs as one pool picked by Call-ID hash. Each reports the
 * PIDs whose CPU is its cost (sipedge and the relay: one process, all its
 * threads; Kamailio: its main process and every worker it forked) and
 * stops by PID.
 */
import type { ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoCertificate } from "../../../src/runtime/demo.ts";
import { metricSum, scrape } from "../../helpers/metrics.ts";
import { exited, freePort, type Processes, sleep } from "../../helpers/net.ts";

export type BalancerName = "sipedge" | "kamailio" | "relay";

export interface Balancer {
  readonly name: BalancerName;
  /** What the table calls it. */
  readonly label: string;
  readonly udp: number;
  /** 0: no TLS listener (the relay). */
  readonly tls: number;
  /** The processes whose ticks are its CPU. */
  pids(): number[];
  /** The end of what it printed (Kamailio's errors, sipedge's notes). */
  log(): string;
  /** sipedge: the 503s it has answered so far for overload, from its /metrics (the others: undefined). */
  refused?(): Promise<number>;
  stop(): Promise<void>;
}

/** The certificate every TLS listener here serves (the tests' own, made once with openssl). */
export function certificate(): { cert: string; key: string } {
  return demoCertificate("/tmp/sipedge-test-cert");
}

/**
 * Waits until an OPTIONS with a user part, sent to the balancer's UDP port,
 * is answered: it went through to a UAS (sipp -aa answers it), so the
 * balancer listens and has a backend up.
 */
async function ready(name: string, port: number, child: ChildProcess, log: () => string): Promise<void> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const local = socket.address().port;
  let answered = false;
  socket.on("message", () => {
    answered = true;
  });
  try {
    for (let i = 0; i < 100 && !answered; i++) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const id = `ready-${process.pid}-${i}`;
      socket.send(
        `OPTIONS sip:ready@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-${id};rport\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=${id}\r\nTo: <sip:ready@127.0.0.1>\r\nCall-ID: ${id}\r\n` +
          "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        port,
        "127.0.0.1",
      );
      await sleep(200);
    }
  } finally {
    socket.close();
  }
  if (!answered) throw new Error(`${name} did not come up on udp ${port}:\n${log().slice(-3000)}`);
}

function capture(child: ChildProcess): () => string {
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => out;
}

/** sipedge on one IO thread, UDP and TLS listeners, the UASs as a hash-callid pool; otherwise its defaults. */
export async function startSipedge(p: Processes, backends: readonly number[]): Promise<Balancer> {
  const [udp, tls, admin] = [await freePort(), await freePort(), await freePort()];
  const cert = certificate();
  const dir = mkdtempSync(join(tmpdir(), "sipedge-compare-"));
  const config = join(dir, "sipedge.yaml");
  writeFileSync(
    config,
    [
      "io: { threads: 1 }",
      "listen:",
      `  - { transport: udp, address: 127.0.0.1, port: ${udp} }`,
      `  - { transport: tls, address: 127.0.0.1, port: ${tls}, cert: ${cert.cert}, key: ${cert.key} }`,
      "backends:",
      "  - name: bench",
      "    algorithm: hash-callid",
      "    members:",
      ...backends.map((port, i) => `      - { name: uas${i}, uri: "sip:127.0.0.1:${port}" }`),
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ].join("\n"),
  );
  // BENCH_SIPEDGE_CLI: another checkout's src/cli.ts, for a before/after pair against the same Kamailio and relay.
  const cli = process.env.BENCH_SIPEDGE_CLI ?? join(import.meta.dirname, "..", "..", "..", "src", "cli.ts");
  const child = p.spawn(process.execPath, [cli, "--config", config]);
  const log = capture(child);
  await ready("sipedge", udp, child, log);
  return {
    name: "sipedge",
    log,
    label: "sipedge, 1 IO thread",
    udp,
    tls,
    pids: () => [child.pid ?? 0],
    refused: async () => metricSum(await scrape(admin), "sipedge_overload_rejected_total"),
    stop: () => p.kill(child),
  };
}

/** The parent PID of a process, from /proc (-1: gone). */
function parentOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1] ?? -1);
  } catch {
    return -1;
  }
}

/** SIGKILL to one process of ours, by PID, if it is still a kamailio (not a reused PID). */
function killPid(pid: number): void {
  try {
    if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "kamailio") process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** The processes `root` forked, and theirs. */
function descendants(root: number): number[] {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  const found: number[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const next = all.filter((pid) => frontier.includes(parentOf(pid)));
    found.push(...next);
    frontier = next;
  }
  return found;
}

/**
 * Kamailio with test/bench/compare/kamailio.cfg: 1 UDP worker, 1 TCP/TLS
 * worker, the f_malloc shared-memory manager (-x fm). Shared memory
 * BENCH_KAMAILIO_SHM_MB (3072): tm keeps a finished transaction 5 s (its
 * wait timer), two a call, each a cell of ~8 KB (build_cell's allocation in
 * its log) and the request cloned (~4 KB), so 4 000 calls/s hold ~500 MB
 * and a 10 000 calls/s step over 1 GB, fragmented by f_malloc: with -m 512
 * it answered 500 "out of mem" from 4 000 calls/s. Pages are touched only
 * as they are used.
 */
export async function startKamailio(p: Processes, backends: readonly number[]): Promise<Balancer> {
  const [udp, tls] = [await freePort(), await freePort()];
  const cert = certificate();
  const dir = mkdtempSync(join(tmpdir(), "sipedge-compare-kamailio-"));
  writeFileSync(join(dir, "dispatcher.list"), backends.map((port) => `1 sip:127.0.0.1:${port} 0\n`).join(""));
  writeFileSync(
    join(dir, "tls.cfg"),
    [
      "[server:default]",
      "method = TLSv1.2+",
      "verify_certificate = no",
      "require_certificate = no",
      `private_key = ${cert.key}`,
      `certificate = ${cert.cert}`,
      "",
    ].join("\n"),
  );
  const child = p.spawn(
    "kamailio",
    [
      "-DD", // foreground, no daemon: the main process stays our child and its workers its own
      "-E",
      "-x",
      "fm",
      "-m",
      process.env.BENCH_KAMAILIO_SHM_MB ?? "3072",
      "-M",
      "16",
      "-Y",
      dir,
      "-w",
      dir,
      "-P",
      join(dir, "kamailio.pid"),
      "-f",
      join(import.meta.dirname, "kamailio.cfg"),
      "-A",
      `DS_LIST="${join(dir, "dispatcher.list")}"`,
      "-A",
      `TLS_CFG="${join(dir, "tls.cfg")}"`,
      "-A",
      "WITH_TLS",
      "-l",
      `udp:127.0.0.1:${udp}`,
      "-l",
      `tls:127.0.0.1:${tls}`,
    ],
    dir,
  );
  const main = child.pid ?? 0;
  const log = capture(child);
  try {
    await ready("kamailio", udp, child, log);
  } catch (e) {
    for (const pid of descendants(main)) killPid(pid);
    await p.kill(child);
    throw e;
  }
  // Its workers are all forked at start-up and live as long as it does.
  const workers = descendants(main);
  return {
    name: "kamailio",
    log,
    label: "Kamailio 5.6, 1 UDP + 1 TLS worker",
    udp,
    tls,
    pids: () => [main, ...workers],
    async stop() {
      // SIGTERM: the main process stops its workers; any that outlive 3 s are killed by PID.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited(child), sleep(3000)]);
      }
      for (const pid of workers) {
        if (parentOf(pid) === main || parentOf(pid) === 1) {
          killPid(pid);
        }
      }
      await p.kill(child);
    },
  };
}

/** The bare Node UDP relay (relay.ts): UDP only. */
export async function startRelay(p: Processes, backends: readonly number[]): Promise<Balancer> {
  const child = p.spawn(process.execPath, [join(import.meta.dirname, "relay.ts"), ...backends.map(String)]);
  const log = capture(child);
  for (let i = 0; i < 100 && !/relay port \d+/.test(log()); i++) await sleep(50);
  const udp = Number(/relay port (\d+)/.exec(log())?.[1] ?? 0);
  await ready("relay", udp, child, log);
  return {
    name: "relay",
    log,
    label: "bare Node 24 UDP relay",
    udp,
    tls: 0,
    pids: () => [child.pid ?? 0],
    stop: () => p.kill(child),
  };
}
