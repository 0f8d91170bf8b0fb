import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { exited } from "../helpers/net.ts";
import { alive, spawnRegistered } from "../helpers/processes.ts";

const REPO = join(import.meta.dirname, "..", "..");
const FIXTURES = join(REPO, "test", "fixtures", "cleanup");

// The rule of test/helpers/processes.ts, seen from outside: a child vitest runs
// fixture tests that fail (an expect, a beforeAll half-way, a worker that dies)
// after starting sipedge, sipps and a process group; once it has exited, none
// of the processes they noted is alive, by PID.
it("leaves no process alive that a failing test started", async () => {
  const pids = join(mkdtempSync(join(tmpdir(), "sipedge-cleanup-")), "pids");
  let out = "";
  const vitest = spawnRegistered(
    process.execPath,
    [join(REPO, "node_modules", "vitest", "vitest.mjs"), "run", "--config", join(FIXTURES, "vitest.config.ts")],
    { cwd: REPO, env: { ...process.env, CLEANUP_PIDS: pids }, stdio: ["ignore", "pipe", "pipe"] },
  );
  vitest.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  vitest.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  expect(await exited(vitest), out).not.toBe(0);
  const noted = readFileSync(pids, "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(" "));
  // Each fixture got as far as starting what it should have (else the check below proves nothing).
  expect(noted.map(([what]) => what).sort(), out).toEqual([
    "grandchild",
    "sigterm-ignoring-parent",
    "sipedge",
    "sipp",
    "sipp-of-beforeAll",
    "sipp-of-dead-worker",
  ]);
  const survivors = noted.filter(([, pid]) => alive(Number(pid)));
  expect(survivors).toEqual([]);
});
