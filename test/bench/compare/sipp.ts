/**
 * sipp as bench:compare drives it: test/helpers/sipp.ts's UAC and UAS with
 * 4 MiB socket buffers on every one (-buff_size 4194304, issue 16: a burst
 * at 2 000 calls/s overflows the default ~200 KiB and reads as lost calls),
 * the UAS without any trace (no -trace_msg, no -trace_stat), and the UAC over TCP to
 * stunnel for the TLS runs.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exited, type Processes } from "../../helpers/net.ts";
import { type CallCounts, readCounts, SCENARIOS } from "../../helpers/sipp.ts";

const BUFF = ["-buff_size", "4194304"];
/** How long a UAC call waits for an answer (-recv_timeout) before it fails. */
export const RECV_TIMEOUT_S = 5;

/** A sipp UAS (uas_rr.xml: 180, 200, copies Record-Route) on 127.0.0.1:port over UDP; -aa answers OPTIONS probes. */
export function startUas(p: Processes, port: number) {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-compare-uas-"));
  const child = p.spawn(
    "sipp",
    [
      "-sf",
      join(SCENARIOS, "uas_rr.xml"),
      "-i",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      "u1",
      "-aa",
      "-nostdin",
      ...BUFF,
    ],
    dir,
  );
  return { child, port };
}

export interface Uac {
  readonly calls: number;
  readonly rate: number;
  /** UDP (u1), or TCP on one connection (t1) to a stunnel client in front of a TLS listener. */
  readonly transport: "u1" | "t1";
  readonly timeoutSeconds: number;
}

/**
 * Runs sipp's UAC (uac_rr.xml: INVITE, 200, ACK, BYE, follows Record-Route)
 * to completion: -m calls, then exits; -timeout bounds the whole run and a
 * call waits at most 5 s for an answer (its INVITE is retransmitted every
 * 500 ms meanwhile), so a lost call costs the run seconds, not minutes.
 */
export async function runUac(p: Processes, target: string, o: Uac): Promise<CallCounts> {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-compare-uac-"));
  const child = p.spawn(
    "sipp",
    [
      "-sf",
      join(SCENARIOS, "uac_rr.xml"),
      target,
      "-i",
      "127.0.0.1",
      "-p",
      "0",
      "-t",
      o.transport,
      "-m",
      String(o.calls),
      "-r",
      String(o.rate),
      // At most 4 s of calls open at once (cps.bench.ts's bound): a stalled balancer fails calls instead of piling them up.
      "-l",
      String(o.rate * 4),
      "-nostdin",
      ...BUFF,
      "-trace_stat",
      "-stf",
      join(dir, "stat.csv"),
      "-timeout",
      `${o.timeoutSeconds}s`,
      "-timeout_error",
      "-recv_timeout",
      String(RECV_TIMEOUT_S * 1000),
    ],
    dir,
  );
  await exited(child);
  return readCounts(join(dir, "stat.csv"), "outgoing");
}
