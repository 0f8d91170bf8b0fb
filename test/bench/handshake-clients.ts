/**
 * The handshake load of bench:tls: `count` client processes
 * (test/fixtures/storm/tls-handshake-client.ts), each closing every
 * connection once it is up, their figures summed.
 */
import { join } from "node:path";
import { exited, type Processes } from "../helpers/net.ts";
import { lineFrom } from "./child-output.ts";

const CLIENT = join(import.meta.dirname, "..", "fixtures", "storm", "tls-handshake-client.ts");

export interface HandshakeLoad {
  readonly mode: "full" | "resumed";
  readonly seconds: number;
  /** Handshakes at most, over all the clients. */
  readonly max: number;
  /** Handshakes under way at most, per client. */
  readonly parallel: number;
  /** Handshakes a second asked of all the clients together; undefined: as fast as `parallel` allows. */
  readonly rate?: number;
}

/** What the clients did, summed (seconds: the longest client's; group: the last handshake's key-exchange group). */
export interface HandshakeTotals {
  readonly handshakes: number;
  readonly resumed: number;
  readonly failed: number;
  readonly seconds: number;
  readonly group: string;
  readonly errors: Record<string, number>;
}

export interface RunningClients {
  /** The client processes, for their CPU while they run. */
  readonly pids: readonly number[];
  /** Resolves once every client has made its first connection ready (the resumed mode's ticket taken) and started. */
  readonly started: Promise<void>;
  readonly done: Promise<HandshakeTotals>;
}

export function startHandshakeClients(p: Processes, port: number, count: number, load: HandshakeLoad): RunningClients {
  const each = Math.ceil(load.max / count);
  const clients = Array.from({ length: count }, () => {
    const args = [`${port}`, load.mode, `${load.seconds}`, `${each}`, `${load.parallel}`];
    if (load.rate !== undefined) args.push(`${load.rate / count}`);
    const child = p.spawn(process.execPath, [CLIENT, ...args]);
    return {
      pid: child.pid ?? 0,
      started: lineFrom(child, /^started$/m, 15_000),
      // Exited too: a client reaped later would add its CPU to whatever its parent measures next.
      done: Promise.all([lineFrom(child, /^\{.*\}$/m, load.seconds * 1000 + 15_000), exited(child)]).then(
        ([m]) => JSON.parse(m[0]) as HandshakeTotals,
      ),
    };
  });
  const done = Promise.all(clients.map((c) => c.done)).then((all) => {
    const sum = (f: (r: HandshakeTotals) => number) => all.reduce((n, r) => n + f(r), 0);
    const errors: Record<string, number> = {};
    for (const [why, n] of all.flatMap((r) => Object.entries(r.errors))) errors[why] = (errors[why] ?? 0) + n;
    return {
      handshakes: sum((r) => r.handshakes),
      resumed: sum((r) => r.resumed),
      failed: sum((r) => r.failed),
      seconds: Math.max(...all.map((r) => r.seconds)),
      group: all.find((r) => r.group !== "")?.group ?? "",
      errors,
    };
  });
  const started = Promise.all(clients.map((c) => c.started)).then(() => {});
  started.catch(() => {}); // not every caller waits for it: a client that never started fails `done` too
  return { pids: clients.map((c) => c.pid), started, done };
}
