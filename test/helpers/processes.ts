/**
 * Every process a test starts (sipedge, sipp, stunnel, prometheus, …) is
 * spawned here and registered, so that it is stopped by PID however the test
 * ends: an `expect` failing before the test's own kill, a start that throws
 * after spawning, a `beforeAll` failing half-way. No test has to remember.
 *
 * - Each child leads its own process group, and is stopped by SIGKILL to
 *   the whole group: a launcher shell's or `ip netns exec`'s
 *   grandchildren go with it, and nothing can ignore the signal (a SIGTERM
 *   would need a SIGKILL after it anyway; what the test wanted to see of a
 *   graceful stop it asked for itself).
 * - Scope: a child started inside a test (or its beforeEach) is stopped
 *   after that test, one started outside (beforeAll, describe) after its
 *   file: test/helpers/stop-processes.ts calls `beginTest`, `endTest` and
 *   `stopAll` from vitest's hooks, after the test file's own.
 * - Last resort: when SIPEDGE_TEST_PIDS names a folder (vitest's
 *   globalSetup, test/helpers/stop-processes-global.ts, makes it), each group
 *   also has a file there until it is stopped, so a worker that dies before
 *   its hooks ran leaves nothing running after the run.
 * - Signals: a child's group is out of reach of the SIGINT a terminal's ^C
 *   sends to ours (and of vitest's SIGTERM to a worker), so ours kills the
 *   groups when it gets either, or exits.
 * - A command that cannot be run exits 127 (as from a shell) rather than
 *   failing the spawn: the group is made by a perl exec hop (OWN_GROUP).
 *
 * Plain Node (no vitest import): the benchmark scripts spawn through it too.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

interface Registered {
  readonly scope: "test" | "file";
  /** The last resort's record of the group, when there is a folder for them. */
  readonly file: string | undefined;
}

const running = new Map<ChildProcess, Registered>();
let inTest = false;
let guarded = false;

/**
 * Puts itself in a process group of its own, then becomes the command (same
 * PID). Not Node's `detached`: that is setsid(), a new session, and with the
 * kernel's autogroup scheduling each session gets an equal share of the CPU
 * whatever its nice value, so 16 niced sipp UACs starved sipedge in the
 * storm test (421 calls lost, OPTIONS unanswered; none on main).
 */
const OWN_GROUP = ["-e", 'setpgrp(0, 0); exec { $ARGV[0] } @ARGV or do { print STDERR "$ARGV[0]: $!\\n"; exit 127 }'];

/** `spawn`, the child leading a new process group that is registered until it is stopped. */
export function spawnRegistered(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn("perl", [...OWN_GROUP, command, ...args], options);
  const pid = child.pid;
  // No PID: the spawn failed ("error" follows) and there is nothing to stop.
  if (pid === undefined) return child;
  guardOurExit();
  running.set(child, { scope: inTest ? "test" : "file", file: record(pid) });
  child.once("exit", () => {
    // Grandchildren left in the group keep it registered: they are stopped with the rest.
    if (!groupAlive(pid)) forget(child);
  });
  return child;
}

/** SIGKILL to the child's whole process group; resolves once the child itself has exited. */
export async function stop(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once("exit", () => resolve()));
  killGroup(pid);
  await exited;
  forget(child);
}

/** Kills every registered group at once, for a process about to end. */
function killRegistered(): void {
  for (const child of running.keys()) {
    if (child.pid !== undefined) killGroup(child.pid);
    forget(child);
  }
}

/** Our SIGINT, SIGTERM and exit kill the groups first; then the signal takes its course. */
function guardOurExit(): void {
  if (guarded) return;
  guarded = true;
  const onSignal = (signal: NodeJS.Signals) => {
    killRegistered();
    // No one else listens (ours was a `once`): the signal's own default, as if we had not listened.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", killRegistered);
}

/** From here on, spawns belong to the running test. */
export function beginTest(): void {
  inTest = true;
}

/** Stops what the test that ends started. */
export async function endTest(): Promise<void> {
  inTest = false;
  await Promise.all([...running].filter(([, r]) => r.scope === "test").map(([child]) => stop(child)));
}

/** Stops everything still registered (a test file's end). */
export async function stopAll(): Promise<void> {
  inTest = false;
  await Promise.all([...running.keys()].map(stop));
}

/**
 * Whether `pid` is a live process. A zombie counts as gone: an orphaned
 * grandchild killed with its group waits as one for a reaper this
 * machine's PID 1 may never be.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return stat(pid)?.state !== "Z";
}

/** The last resort (globalSetup's teardown): stops every group a worker recorded in `dir` and did not stop. */
export function stopRecorded(dir: string): void {
  for (const name of readdirSync(dir)) {
    const [pid, start] = name.split("-").map(Number);
    if (pid === undefined || start === undefined) continue;
    // The leader still there with another start time: the PID was reused, that group is not ours.
    const now = stat(pid);
    if (now === undefined || now.start === start) killGroup(pid);
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // ESRCH: the group is gone already.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Fields of /proc/PID/stat after the command name: state (3rd) and start time in clock ticks (22nd). */
function stat(pid: number): { state: string; start: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: Number(fields[19]) };
}

/** A file named for the group in SIPEDGE_TEST_PIDS, if set: PID and start time (told apart from a reused PID). */
function record(pid: number): string | undefined {
  const dir = process.env.SIPEDGE_TEST_PIDS;
  const start = stat(pid)?.start;
  if (dir === undefined || start === undefined) return undefined;
  const file = join(dir, `${pid}-${start}`);
  writeFileSync(file, "");
  return file;
}

function forget(child: ChildProcess): void {
  const file = running.get(child)?.file;
  running.delete(child);
  if (file !== undefined) rmSync(file, { force: true });
}
