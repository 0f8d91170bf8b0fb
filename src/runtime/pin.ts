import { execFileSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The kernel's id of the calling thread (what top -H and taskset show). */
export function threadId(): number {
  return Number(readlinkSync("/proc/thread-self").split("/").pop());
}

/**
 * The health thread's head start over the IO threads (nice levels): on a
 * saturated machine the scheduler then runs its probe timers on time.
 */
export const HEALTH_NICE = -10;

/**
 * Gives the calling thread scheduling priority `nice` (on Linux
 * setpriority(2) on pid 0 is per thread). Lowering the value needs root or
 * CAP_SYS_NICE, unless the process already started there (the unit's Nice=);
 * raising it never does. False when refused.
 */
export function niceThread(nice: number): boolean {
  try {
    if (getPriority() !== nice) setPriority(nice);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins the calling thread to one core (principle 2) with
 * util-linux taskset. Returns the core, or undefined when pinning failed
 * (the thread then runs unpinned, and says so).
 */
export function pinTo(cpu: number): number | undefined {
  try {
    execFileSync("taskset", ["-pc", String(cpu), String(threadId())], { stdio: "ignore" });
    return cpu;
  } catch {
    return undefined;
  }
}
