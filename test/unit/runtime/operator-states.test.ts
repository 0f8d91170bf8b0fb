import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BackendState, HealthTable } from "../../../src/health/state.ts";
import { OperatorStates } from "../../../src/runtime/operator-states.ts";

function stateFile(text?: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "sipedge-states-")), "operator-states.json");
  if (text !== undefined) writeFileSync(file, text);
  return file;
}

/** Pools as the config names them: `{ core: ["a", "b"] }`. */
function backends(pools: Record<string, string[]>) {
  return {
    backends: Object.entries(pools).map(([name, members]) => ({
      name,
      algorithm: "round-robin" as const,
      members: members.map((m) => ({
        name: m,
        uri: "sip:127.0.0.1:9",
        host: "127.0.0.1",
        port: 9,
        transport: "udp" as const,
        weight: 1,
      })),
    })),
  };
}

/** What sipedge logged to stderr meanwhile. */
function logged(): () => string[] {
  const spy = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  return () => spy.mock.calls.map((c) => String(c[0]));
}

afterEach(() => vi.restoreAllMocks());

describe("operator states (admin.stateFile)", () => {
  it("keeps drain and disable in the file, lets go on enable, and reads them back", () => {
    const file = stateFile();
    const states = OperatorStates.load(file);
    states.set("core", "a", "draining");
    states.set("core", "b", "disabled");
    states.set("core", "b", "up");
    states.set("core", "a", "disabled");
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({
      version: 1,
      members: [{ pool: "core", member: "a", state: "disabled" }],
    });
    // Renamed into place: no temporary file left beside it.
    expect(readdirSync(join(file, ".."))).toEqual(["operator-states.json"]);
    expect(OperatorStates.load(file).held).toEqual([{ pool: "core", member: "a", state: "disabled" }]);
  });

  it("keeps the states of members still configured in the same pool, drops the others, and saves that", () => {
    const lines = logged();
    const file = stateFile();
    const states = OperatorStates.load(file);
    states.set("core", "a", "draining");
    states.set("core", "b", "draining");
    states.set("spare", "c", "disabled");
    // b removed, c moved to another pool, d added.
    states.keepFor(backends({ core: ["a", "c", "d"] }));
    expect(states.held).toEqual([{ pool: "core", member: "a", state: "draining" }]);
    expect(OperatorStates.load(file).held).toEqual(states.held);
    expect(lines()).toContain(
      '<6>backend.states-dropped: operator states of members no longer configured dropped members=["core/b=draining","spare/c=disabled"]\n',
    );
  });

  it("writes the held states into a fresh health table", () => {
    const states = OperatorStates.load(undefined);
    states.set("core", "b", "draining");
    const table = new HealthTable(["a", "b"]);
    states.applyTo(table);
    expect([table.state("a"), table.state("b")]).toEqual([BackendState.Up, BackendState.Draining]);
  });

  it("a drain the health thread reads after a reload reordered the members drains that member, not the one now at its index", () => {
    const states = OperatorStates.load(undefined);
    // The supervisor's table and the health thread's, over the same memory, for members [a, b].
    const supervisor = new HealthTable(["a", "b"]);
    const health = new HealthTable(["a", "b"], supervisor.buffer, supervisor.generation);
    // POST /backends/a/drain: held, and posted to the health thread...
    states.set("core", "a", "draining");
    // ...which reads it only after the supervisor's reload to [b, a]: reset, and the held states again.
    HealthTable.reset(supervisor.buffer);
    const reloaded = new HealthTable(["b", "a"], supervisor.buffer);
    states.applyTo(reloaded);
    health.setState("a", BackendState.Draining);
    // The thread's probes before it reads the reload land nowhere either.
    health.setState("b", BackendState.Down);
    expect([reloaded.state("a"), reloaded.state("b")]).toEqual([BackendState.Draining, BackendState.Up]);
    // Once it has read the reload (the supervisor's generation with it), its writes land again.
    const next = new HealthTable(["b", "a"], supervisor.buffer, reloaded.generation);
    next.setState("b", BackendState.Down);
    expect(reloaded.state("b")).toBe(BackendState.Down);
  });

  it("starts with none when there is no file yet, quietly", () => {
    const lines = logged();
    expect(OperatorStates.load(stateFile()).held).toEqual([]);
    expect(lines()).toEqual([]);
  });

  it.each([
    ["not JSON", "{ drained: pbx-a", /problem="not JSON: /],
    ["another version", '{ "version": 2, "members": [] }', /problem="not a version 1 state file"/],
    [
      "an entry of the wrong shape",
      '{ "version": 1, "members": [{ "pool": "core", "member": "a", "state": "up" }] }',
      /problem="an entry is not/,
    ],
    ["too big", " ".repeat((1 << 20) + 1), /problem="larger than 1048576 bytes"/],
  ])("a file that is %s: a warning and no states, never a failure", (_what, text, problem) => {
    const lines = logged();
    expect(OperatorStates.load(stateFile(text)).held).toEqual([]);
    expect(lines()).toContainEqual(
      expect.stringMatching(
        /^<4>backend\.states-unreadable: operator state file ignored: starting with no drained or disabled member file=\S+ /,
      ),
    );
    expect(lines().join("")).toMatch(problem);
  });

  it("a file it cannot write: a warning, and the state still holds until a restart", () => {
    const lines = logged();
    const states = OperatorStates.load(join(stateFile(), "nowhere", "states.json"));
    states.set("core", "a", "draining");
    expect(states.held).toEqual([{ pool: "core", member: "a", state: "draining" }]);
    expect(lines()).toContainEqual(
      expect.stringMatching(
        /^<4>backend\.states-not-saved: operator states not saved: they last until a restart file=\S+ error=/,
      ),
    );
  });
});
