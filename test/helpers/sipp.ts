import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ASSETS } from "./corpus.ts";
import { exited, type Processes } from "./net.ts";

export const SCENARIOS = join(ASSETS, "sipp");
/** Scenarios of our own, for the call flows the shared ones do not cover. */
export const FIXTURE_SCENARIOS = join(import.meta.dirname, "..", "fixtures", "sipp");

export interface CallCounts {
  /** Calls placed (UAC) or received (UAS). */
  readonly calls: number;
  readonly successful: number;
  readonly failed: number;
}

/** A sipp UAS on 127.0.0.1:port (or `address`); `-aa` answers OPTIONS probes. */
export function startUas(
  p: Processes,
  port: number,
  options: { scenario?: string; transport?: "u1" | "t1"; address?: string } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-uas-"));
  const child = p.spawn(
    "sipp",
    [
      "-sf",
      options.scenario ?? join(SCENARIOS, "uas_rr.xml"),
      "-i",
      options.address ?? "127.0.0.1",
      "-p",
      String(port),
      "-t",
      options.transport ?? "u1",
      "-aa",
      "-nostdin",
      "-trace_stat",
      "-stf",
      join(dir, "stat.csv"),
      "-fd",
      "1",
    ],
    dir,
  );
  return { child, dir, counts: () => readCounts(join(dir, "stat.csv"), "incoming") };
}

export interface UacOptions {
  readonly calls: number;
  readonly rate: number;
  readonly transport?: "u1" | "t1";
  readonly scenario?: string;
  readonly timeoutSeconds?: number;
  readonly extra?: readonly string[];
  /** The loopback address to call from (a trunk's source address), 127.0.0.1 by default. */
  readonly from?: string;
  /** Run at a lower CPU priority (nice 10): a load that stands for other machines' traffic. */
  readonly niced?: boolean;
}

/** Runs a sipp UAC to completion (bounded by -m and -timeout) and returns its call counts. */
export async function runUac(p: Processes, target: string, options: UacOptions): Promise<CallCounts> {
  const uac = startUac(p, target, options);
  await exited(uac.child);
  return uac.counts();
}

/**
 * A sipp UAC placing calls in the background (bounded by -m and -timeout all
 * the same); `finish` asks it to place no more (SIGUSR1: sipp's soft exit),
 * waits for the calls under way to end and returns the counts.
 */
export function startUac(p: Processes, target: string, options: UacOptions) {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-uac-"));
  const child: ChildProcess = p.spawn(
    ...niced(options.niced === true, "sipp", [
      "-sf",
      options.scenario ?? join(SCENARIOS, "uac_rr.xml"),
      target,
      "-i",
      options.from ?? "127.0.0.1",
      "-p",
      "0",
      "-t",
      options.transport ?? "u1",
      "-m",
      String(options.calls),
      "-r",
      String(options.rate),
      "-nostdin",
      "-trace_stat",
      "-stf",
      join(dir, "stat.csv"),
      "-timeout",
      `${options.timeoutSeconds ?? 30}s`,
      "-timeout_error",
      "-recv_timeout",
      "10000",
      ...(options.extra ?? []),
    ]),
    dir,
  );
  const counts = () => readCounts(join(dir, "stat.csv"), "outgoing");
  return {
    child,
    counts,
    finish: async (): Promise<CallCounts> => {
      child.kill("SIGUSR1");
      await exited(child);
      return counts();
    },
  };
}

/**
 * A command line run at nice 10 when asked: on a machine the load tool
 * shares with sipedge, its CPU then goes to sipedge first, as if the load
 * came from elsewhere (nice execs the command: the PID is the command's).
 */
export function niced(nice: boolean, command: string, args: readonly string[]): [string, string[]] {
  return nice ? ["nice", ["-n", "10", command, ...args]] : [command, [...args]];
}

/** The last line of sipp's -trace_stat file holds cumulative counts (see test/fixtures/assets/sipp/README.md). */
export function readCounts(path: string, direction: "outgoing" | "incoming"): CallCounts {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { calls: 0, successful: 0, failed: 0 };
  }
  const lines = text.trim().split("\n");
  const header = (lines[0] ?? "").split(";");
  const last = (lines.at(-1) ?? "").split(";");
  const col = (name: string) => Number(last[header.indexOf(name)] ?? 0);
  return {
    // A UAS counts each OPTIONS probe it answers with -aa as an incoming call too.
    calls: direction === "outgoing" ? col("OutgoingCall(C)") : col("IncomingCall(C)") - col("AutoAnswered(C)"),
    successful: col("SuccessfulCall(C)"),
    failed: col("FailedCall(C)"),
  };
}
