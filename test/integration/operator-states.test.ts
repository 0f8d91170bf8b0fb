import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Finished, runCommand, startCli } from "../helpers/cli.ts";
import { exited, freePort, Processes, sleep } from "../helpers/net.ts";
import { startUas } from "../helpers/sipp.ts";

/**
 * The operator's drain kept in admin.stateFile: a real sipedge child
 * process, stopped and started again, and reloaded with another member
 * list, in front of a sipp UAS every member names (its probes keep them up).
 */
const processes = new Processes();

interface Setup {
  readonly config: string;
  readonly stateFile: string;
  readonly admin: number;
  /** Rewrites the config with these members of pool "core". */
  members(names: readonly string[]): void;
}

async function setup(): Promise<Setup> {
  const backend = await freePort();
  startUas(processes, backend);
  const admin = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "sipedge-states-"));
  const config = join(dir, "sipedge.yaml");
  const members = (names: readonly string[]) =>
    writeFileSync(
      config,
      [
        "io: { threads: 1, pin: false, grace: 1s }",
        "listen:",
        "  - { transport: udp, address: 127.0.0.1, port: 0 }",
        "backends:",
        "  - name: core",
        "    members:",
        ...names.map((n) => `      - { name: ${n}, uri: "sip:127.0.0.1:${backend}" }`),
        `admin: { listen: "127.0.0.1:${admin}", stateFile: operator-states.json }`,
        "health: { interval: 1s, timeout: 900ms, downAfter: 5, upAfter: 1 }",
      ].join("\n"),
    );
  members(["pbx-a"]);
  return { config, stateFile: join(dir, "operator-states.json"), admin, members };
}

function sipedge(s: Setup, ...args: string[]): Promise<Finished> {
  return runCommand([...args, "--config", s.config]);
}

/** Each backend's state as GET /status gives it. */
async function states(s: Setup): Promise<Record<string, string>> {
  const res = await fetch(`http://127.0.0.1:${s.admin}/status`);
  const body = (await res.json()) as { backends: { name: string; state: string }[] };
  return Object.fromEntries(body.backends.map((b) => [b.name, b.state]));
}

async function stop(running: Awaited<ReturnType<typeof startCli>>): Promise<void> {
  running.child.kill("SIGTERM");
  expect(await exited(running.child)).toBe(0);
}

describe("operator states (admin.stateFile)", () => {
  it("a drained member stays drained across a restart and a reload that adds a member; a removed one's state goes", async () => {
    const s = await setup();
    let running = await startCli(s.config, "admin API on");
    expect((await sipedge(s, "drain", "pbx-a")).stdout).toBe("pbx-a: draining\n");
    expect(JSON.parse(readFileSync(s.stateFile, "utf8"))).toEqual({
      version: 1,
      members: [{ pool: "core", member: "pbx-a", state: "draining" }],
    });
    await stop(running);

    running = await startCli(s.config, "admin API on");
    expect(await states(s)).toEqual({ "pbx-a": "draining" });
    expect(running.err()).toContain(
      '<6>backend.states-restored: operator states restored members=["core/pbx-a=draining"]\n',
    );

    // A new member list gives the health table a fresh start: the drain is put back into it.
    s.members(["pbx-a", "pbx-b"]);
    expect((await sipedge(s, "reload")).status).toBe(0);
    expect(await states(s)).toEqual({ "pbx-a": "draining", "pbx-b": "up" });
    // Probes do not undo an operator's word.
    await sleep(1500);
    expect(await states(s)).toEqual({ "pbx-a": "draining", "pbx-b": "up" });

    // pbx-a removed, then back: it comes back as a new member, up.
    s.members(["pbx-b"]);
    expect((await sipedge(s, "reload")).status).toBe(0);
    expect(JSON.parse(readFileSync(s.stateFile, "utf8")).members).toEqual([]);
    s.members(["pbx-a", "pbx-b"]);
    expect((await sipedge(s, "reload")).status).toBe(0);
    expect(await states(s)).toEqual({ "pbx-a": "up", "pbx-b": "up" });
    await stop(running);
  });

  it("a corrupt state file is a warning: sipedge starts with no states, and the next drain writes a good file", async () => {
    const s = await setup();
    writeFileSync(s.stateFile, '{ "version": 1, "members": [ { "pool": "co');
    const running = await startCli(s.config, "admin API on");
    expect(running.out()).toContain("admin API on");
    expect(running.err()).toMatch(
      /^<4>backend\.states-unreadable: operator state file ignored: starting with no drained or disabled member file=\S+operator-states\.json problem="not JSON: /m,
    );
    expect(await states(s)).toEqual({ "pbx-a": "up" });
    expect((await sipedge(s, "disable", "pbx-a")).status).toBe(0);
    expect(JSON.parse(readFileSync(s.stateFile, "utf8")).members).toEqual([
      { pool: "core", member: "pbx-a", state: "disabled" },
    ]);
    await stop(running);
  });
});
