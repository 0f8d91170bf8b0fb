import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../src/admin/status.ts";
import { configFile, type Finished, type RunningCli, runCommand, startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { startUas } from "../helpers/sipp.ts";

/**
 * The operator commands against a running sipedge, each a real `sipedge`
 * child process: one IO worker in front of one sipp UAS ("pbx-a"), its
 * admin API on a port chosen before start (the commands read it from the
 * config) and behind a token.
 */
const processes = new Processes();
let admin = 0;
let backend = 0;
let token = "";
let config = "";
let running: RunningCli;

/** The YAML of the running sipedge's config: `health` is appended (a broken value makes a reload refuse). */
function configText(health = "{ interval: 1s, timeout: 900ms, downAfter: 5, upAfter: 1 }"): string {
  return [
    "io: { threads: 1, pin: false }",
    "listen:",
    "  - { transport: udp, address: 127.0.0.1, port: 0 }",
    "backends:",
    "  - name: core",
    "    members:",
    `      - { name: pbx-a, uri: "sip:127.0.0.1:${backend}" }`,
    `admin: { listen: "127.0.0.1:${admin}", tokenFile: ${token} }`,
    `health: ${health}`,
  ].join("\n");
}

function file(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "sipedge-cli-")), name);
  writeFileSync(path, text);
  return path;
}

function sipedge(...args: string[]): Promise<Finished> {
  return runCommand([...args, "--config", config]);
}

/** The backend's row of `sipedge status`, its cells split. */
async function backendRow(): Promise<string[]> {
  const r = await sipedge("status");
  expect(r.status, r.stderr).toBe(0);
  return (r.stdout.split("\n").find((l) => l.startsWith("pbx-a ")) ?? "").split(/\s{2,}/);
}

beforeAll(async () => {
  // Started with the file, not in a test: the registry stops what a test started when that test ends.
  backend = await freePort();
  startUas(processes, backend);
  admin = await freePort();
  token = file("admin.token", "0123456789abcdef-cli-test\n");
  config = file("sipedge.yaml", configText());
  running = await startCli(config, "admin API on");
  expect(running.out()).toContain(`admin API on http://127.0.0.1:${admin}`);
  // The UAS answers the first probe within a second.
  for (let i = 0; i < 40 && (await backendRow())[2] !== "up"; i++) await sleep(250);
});

describe("sipedge status", () => {
  it("prints the version, uptime, the backend with its state and calls, and the worker", async () => {
    const r = await sipedge("status");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^sipedge \d+\.\d+\.\d+ \(node v24\.\S+, openssl \S+\), up (\d+m )?\d+s, 0 thread restarts\n/,
    );
    expect(r.stdout).toMatch(/^listening: udp 127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toMatch(/^BACKEND +POOL +STATE +ACTIVE CALLS +CALLS +RTT +SINCE$/m);
    expect(await backendRow()).toEqual([
      "pbx-a",
      "core",
      "up",
      "0",
      "0",
      expect.stringMatching(/ ms$/),
      expect.any(String),
    ]);
    expect(r.stdout).toMatch(/^WORKER +THREAD +CPU +BACKEND PORT\n0 +\d+ +- +\d+$/m);
  });
  it("prints the admin API's report as JSON with --json, for scripts (health.yml's fleet table)", async () => {
    const r = await sipedge("status", "--json");
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.backends.map((b) => [b.name, b.pool, b.state])).toEqual([["pbx-a", "core", "up"]]);
    expect(report.workers).toHaveLength(1);
  });
});

describe("sipedge drain, disable, enable", () => {
  it("drains a backend (status shows it), then enables it again", async () => {
    const drained = await sipedge("drain", "pbx-a");
    expect([drained.status, drained.stdout, drained.stderr]).toEqual([0, "pbx-a: draining\n", ""]);
    for (let i = 0; i < 40 && (await backendRow())[2] !== "draining"; i++) await sleep(50);
    expect((await backendRow())[2]).toBe("draining");
    const enabled = await sipedge("enable", "pbx-a");
    expect([enabled.status, enabled.stdout]).toEqual([0, "pbx-a: up\n"]);
    for (let i = 0; i < 40 && (await backendRow())[2] !== "up"; i++) await sleep(50);
    expect((await backendRow())[2]).toBe("up");
  });

  it("names an unknown backend on one line and exits 1", async () => {
    const r = await sipedge("disable", "nope");
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", "sipedge: no backend nope\n"]);
  });
});

describe("sipedge reload", () => {
  it("waits for the reload and says it is done (exit 0)", async () => {
    const r = await sipedge("reload");
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "reloaded\n", ""]);
    await sleep(200);
    expect(running.err()).toContain(`<6>reload.ok: reloaded file=${config}`);
  });

  it("prints why a broken config is refused and exits 1; sipedge runs on with the old one", async () => {
    writeFileSync(config, configText("{ timeout: never }"));
    try {
      const r = await sipedge("reload");
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `sipedge: reload refused, the running config stays:\n  ${config}:9:20 health.timeout: must be a duration like "500ms", "2s" or "3m"\n`,
      );
    } finally {
      writeFileSync(config, configText());
    }
    expect(running.child.exitCode).toBeNull();
    expect((await backendRow())[2]).toBe("up");
  });
});

describe("operator command failures: one line, an exit status that says what", () => {
  it("a wrong token: 77 (EX_NOPERM)", async () => {
    const wrong = file("admin.token", "fedcba9876543210-wrong\n");
    const r = await runCommand(["status", `--config=${configFile(configText().replace(token, wrong))}`]);
    expect([r.status, r.stdout]).toEqual([77, ""]);
    expect(r.stderr).toBe(`sipedge: admin API at http://127.0.0.1:${admin} refused the token in ${wrong} (401)\n`);
  });

  it("no sipedge on the address: 69 (EX_UNAVAILABLE)", async () => {
    const elsewhere = await freePort();
    const r = await runCommand([
      "drain",
      "pbx-a",
      "--config",
      configFile(configText().replace(`:${admin}"`, `:${elsewhere}"`)),
    ]);
    expect(r.status).toBe(69);
    expect(r.stderr).toBe(`sipedge: admin API at http://127.0.0.1:${elsewhere} not reachable: ECONNREFUSED\n`);
  });

  it("a config that names no usable admin API: 78 (EX_CONFIG)", async () => {
    const r = await runCommand(["status", "--config", "/nonexistent/sipedge.yaml"]);
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(
      /^sipedge: \/nonexistent\/sipedge\.yaml: cannot read \/nonexistent\/sipedge\.yaml: ENOENT[^\n]*\n$/,
    );
  });
});
