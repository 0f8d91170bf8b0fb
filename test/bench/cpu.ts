/**
 * Who used the machine during a benchmark step: sipedge, or the load tool
 * (sipp) beside it on the same cores. Read from /proc in ticks (USER_HZ,
 * 100 a second); /proc/stat's machine totals are not trustworthy inside
 * this sandbox, so the load tool is counted process by process.
 */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * /proc/…/stat fields after the command name (of a process, "PID", or of
 * one of its threads, "PID/task/TID"): state is index 0, utime 11, stime
 * 12, cutime 13, cstime 14.
 */
function statFields(path: string): string[] {
  try {
    return readFileSync(`/proc/${path}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  } catch {
    return []; // already gone
  }
}

function ownTicks(f: readonly string[]): number {
  return Number(f[11] ?? 0) + Number(f[12] ?? 0);
}

/** utime + stime of a running process. */
export function processTicks(pid: number | undefined): number {
  return pid === undefined ? 0 : ownTicks(statFields(String(pid)));
}

/** utime + stime of the thread of process `pid` named `name` (as top -H shows it). */
export function threadTicks(pid: number, name: string): number {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim() === name) {
      return ownTicks(statFields(`${pid}/task/${tid}`));
    }
  }
  throw new Error(`no thread ${name} in ${pid}`);
}

/**
 * The load tool's ticks: the sipp processes this process has waited for
 * (its cutime + cstime) and the long-running ones (`running`, the UASs).
 */
export function loadTicks(running: readonly number[]): number {
  const self = statFields("self");
  return Number(self[13] ?? 0) + Number(self[14] ?? 0) + running.reduce((n, pid) => n + processTicks(pid), 0);
}

/** Ticks the whole machine had over `seconds`: every core, the whole time. */
export function machineTicks(seconds: number): number {
  return seconds * 100 * availableParallelism();
}
