import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, type TLSSocket } from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { runUac, startUas } from "../helpers/sipp.ts";

const processes = new Processes();
let sipedge: ChildProcess;
let out = "";
let admin: number;

function listening(transport: string): number {
  return listeningPort(out, transport);
}

/** comm, allowed CPUs and nice value of every thread of a process, from /proc. */
function threads(pid: number): { name: string; cpus: string; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => ({
    name: readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(),
    cpus: /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? "",
    // stat field 19, counted after the parenthesised command name (field 2).
    nice: Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]?.split(" ")[16]),
  }));
}

/** Open TCP/TLS connections per IO worker, from sipedge_connections{worker}. */
async function connectionsPerWorker(): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const per = [0, 0];
  for (const m of text.matchAll(/^sipedge_connections\{worker="(\d)"\} (\d+)$/gm)) per[Number(m[1])] = Number(m[2]);
  return per;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

async function until(what: string, timeoutMs: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

beforeAll(async () => {
  const backends = [await freePort(), await freePort()];
  for (const p of backends) startUas(processes, p);
  const tls = demoCertificate(CERT_DIR);
  admin = await freePort();
  const config = configFile(
    [
      "io: { threads: 2, pin: true, grace: 2s }",
      "listen:",
      "  - { transport: udp, address: 127.0.0.1, port: 0 }",
      "  - { transport: tcp, address: 127.0.0.1, port: 0 }",
      `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${tls.cert}, key: ${tls.key} }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
      // Every test client comes from 127.0.0.1: one address for 200 connections.
      "limits: { maxConnectionsPerIp: 1000 }",
      "backends:",
      "  - name: core",
      "    members:",
      ...backends.map((p, i) => `      - { name: b${i}, uri: "sip:127.0.0.1:${p}" }`),
    ].join("\n"),
  );
  const cli = await startCli(config, "admin API", { ...process.env, SIPEDGE_TEST_FAULTS: "1" });
  sipedge = cli.child;
  out = cli.out();
});

describe("pinned IO worker threads", () => {
  it("runs one named thread per configured worker, each pinned to its own core", () => {
    const io = threads(sipedge.pid as number).filter((t) => t.name.startsWith("sipedge-io-"));
    expect(io.map((t) => t.name).sort()).toEqual(["sipedge-io-0", "sipedge-io-1"]);
    expect(io.map((t) => t.cpus).sort()).toEqual(["0", "1"]);
  });

  it("runs the health thread ahead of the IO threads in the scheduler, so probes are on time on a busy host", () => {
    const all = threads(sipedge.pid as number);
    // The tests run as root, which may lower a thread's nice value (systemd's Nice= does it for the appliance).
    expect(all.find((t) => t.name === "sipedge-health")?.nice).toBe(-10);
    expect(all.filter((t) => t.name.startsWith("sipedge-io-")).map((t) => t.nice)).toEqual([0, 0]);
  });

  it("serves calls on the shared UDP and TCP ports", async () => {
    expect(await runUac(processes, `127.0.0.1:${listening("udp")}`, { calls: 30, rate: 30 })).toEqual({
      calls: 30,
      successful: 30,
      failed: 0,
    });
    expect(await runUac(processes, `127.0.0.1:${listening("tcp")}`, { calls: 20, rate: 20, transport: "t1" })).toEqual({
      calls: 20,
      successful: 20,
      failed: 0,
    });
  });

  it("spreads 200 TLS connections over both workers, neither with under 25 %", async () => {
    const port = listening("tls");
    const sockets = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<TLSSocket>((resolve, reject) => {
            const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
            s.once("secureConnect", () => resolve(s));
            s.once("error", reject);
          }),
      ),
    );
    try {
      await until(
        "200 connections counted",
        5000,
        async () => (await connectionsPerWorker()).reduce((a, b) => a + b) === 200,
      );
      const per = await connectionsPerWorker();
      console.log(`200 TLS connections over 2 workers: ${per.join(" / ")}`);
      expect(Math.min(...per)).toBeGreaterThanOrEqual(50);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await until("connections closed", 5000, async () => (await connectionsPerWorker()).every((n) => n === 0));
  });

  it("replaces a worker that throws under sipp load: the other worker's calls carry on, new calls succeed at once", async () => {
    const tcp = `127.0.0.1:${listening("tcp")}`;
    const load = { calls: 80, rate: 10, transport: "t1" as const, timeoutSeconds: 30 };
    // One sipp UAC holds one TCP connection, owned by one worker; find a second on the other worker.
    const steady = runUac(processes, tcp, load);
    await until("first UAC connected", 5000, async () => (await connectionsPerWorker()).some((n) => n === 1));
    const steadyWorker = (await connectionsPerWorker()).indexOf(1);
    let doomedWorker = -1;
    let before = processes.mark();
    for (let attempt = 0; attempt < 12 && doomedWorker < 0; attempt++) {
      before = processes.mark();
      const doomed = runUac(processes, tcp, load);
      await until(
        "second UAC connected",
        5000,
        async () => (await connectionsPerWorker()).reduce((a, b) => a + b) === 2,
      );
      const per = await connectionsPerWorker();
      if (per[steadyWorker] === 1) doomedWorker = 1 - steadyWorker;
      else {
        await processes.killSince(before);
        await doomed;
        await until("retried UAC gone", 5000, async () => (await connectionsPerWorker()).reduce((a, b) => a + b) === 1);
      }
    }
    expect(doomedWorker).toBeGreaterThanOrEqual(0);

    const restarts = await metric("sipedge_worker_restarts_total");
    const fault = await fetch(`http://127.0.0.1:${admin}/test/workers/${doomedWorker}/fault`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    expect(fault.status).toBe(202);
    // New calls from the moment the supervisor has seen the worker die.
    await until("worker replaced", 2000, async () => (await metric("sipedge_worker_restarts_total")) === restarts + 1);
    const started = Date.now();
    const fresh = await runUac(processes, `127.0.0.1:${listening("udp")}`, { calls: 5, rate: 50 });
    const freshMs = Date.now() - started;
    console.log(`worker ${doomedWorker} crashed: 5 new calls done ${freshMs} ms later`);
    expect(fresh).toEqual({ calls: 5, successful: 5, failed: 0 });
    expect(freshMs).toBeLessThan(1000);
    await until("two workers again", 2000, async () => (await metric("sipedge_io_workers")) === 2);

    expect(await steady).toEqual({ calls: 80, successful: 80, failed: 0 });
    await processes.killSince(before);
  });

  it("stops cleanly on SIGTERM", async () => {
    const exit = new Promise<number | null>((resolve) => sipedge.once("exit", (code) => resolve(code)));
    sipedge.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});
