import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFile, startCli } from "../helpers/cli.ts";
import { freePort, Processes } from "../helpers/net.ts";
import { runUac, startUas } from "../helpers/sipp.ts";

const processes = new Processes();
let sipedge: ChildProcess;
let out = "";

function listening(transport: string): number {
  return Number(new RegExp(`listening on ${transport} 127\\.0\\.0\\.1:(\\d+)`).exec(out)?.[1]);
}

/** comm and allowed CPUs of every thread of a process, from /proc. */
function threads(pid: number): { name: string; cpus: string }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => ({
    name: readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(),
    cpus: /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? "",
  }));
}

beforeAll(async () => {
  const backends = [await freePort(), await freePort()];
  for (const p of backends) startUas(processes, p);
  const config = configFile(
    [
      "io: { threads: 2, pin: true }",
      "listen:",
      "  - { transport: udp, address: 127.0.0.1, port: 0 }",
      "  - { transport: tcp, address: 127.0.0.1, port: 0 }",
      "backends:",
      "  - name: core",
      "    members:",
      ...backends.map((p, i) => `      - { name: b${i}, uri: "sip:127.0.0.1:${p}" }`),
    ].join("\n"),
  );
  const cli = await startCli(config, "io worker 1");
  sipedge = cli.child;
  out = cli.out();
});

afterAll(async () => {
  sipedge?.kill("SIGKILL");
  await processes.killAll();
});

describe("pinned IO worker threads", () => {
  it("runs one named thread per configured worker, each pinned to its own core", () => {
    const io = threads(sipedge.pid as number).filter((t) => t.name.startsWith("sipedge-io-"));
    expect(io.map((t) => t.name).sort()).toEqual(["sipedge-io-0", "sipedge-io-1"]);
    expect(io.map((t) => t.cpus).sort()).toEqual(["0", "1"]);
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

  it("stops cleanly on SIGTERM", async () => {
    const exit = new Promise<number | null>((resolve) => sipedge.once("exit", (code) => resolve(code)));
    sipedge.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});
