import { execFileSync } from "node:child_process";
import { readlinkSync } from "node:fs";

/** The kernel's id of the calling thread (what top -H and taskset show). */
export function threadId(): number {
  return Number(readlinkSync("/proc/thread-self").split("/").pop());
}

/**
 * Pins the calling thread to one core (DESIGN.md principle 2) with
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
