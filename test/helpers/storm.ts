/**
 * What the storm test and the soak script share: sipedge's process memory,
 * an OPTIONS probe sent the way a UDP client sends it, the slow TLS
 * clients and handshake storm (test/fixtures/storm/tls-clients.ts), and
 * the config they run sipedge with.
 */
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { onePoolConfig } from "./cli.ts";
import type { Processes } from "./net.ts";
import { type CallCounts, FIXTURE_SCENARIOS, niced, runUac } from "./sipp.ts";

export const MiB = 1024 * 1024;

/** limits.memory the storm and the soak run sipedge with. */
export const BUDGET = 256 * MiB;

/**
 * What sipedge's process holds beyond limits.memory whatever the load: Node
 * and V8 for the main thread, two IO workers and the health thread, the
 * code and its TypeScript loader (about 210 MiB idle on this machine), the
 * IO workers' young generations (16 MiB semi-spaces), and their old
 * generation floor of 128 MiB each beyond the budget's quarter.
 */
export const FIXED_OVERHEAD = 320 * MiB;

/** Resident memory of a process (0 once it is gone). */
export function rssOf(pid: number): number {
  try {
    const line = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(line?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Samples the kernel's queues of the UDP sockets bound to `port` (one per
 * IO worker with reusePort) from /proc/net/udp every 100 ms until stopped:
 * each socket's deepest receive queue (bytes) and the datagrams it dropped
 * for want of room. Which worker a flood lands on is the kernel's hash of
 * the peers' addresses; these say how it fell.
 */
export function udpQueues(port: number): { stop: () => { peak: number; drops: number }[] } {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const sockets = new Map<string, { peak: number; drops: number }>();
  const sample = () => {
    for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
      // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref pointer drops
      const f = line.trim().split(/\s+/);
      if (!f[1]?.endsWith(local) || f[9] === undefined) continue;
      const queued = Number.parseInt(f[4]?.split(":")[1] ?? "0", 16);
      const seen = sockets.get(f[9]) ?? { peak: 0, drops: 0 };
      sockets.set(f[9], { peak: Math.max(seen.peak, queued), drops: Number(f[12] ?? 0) });
    }
  };
  const timer = setInterval(sample, 100);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return [...sockets.values()];
    },
  };
}

/**
 * An OPTIONS to sipedge itself, sent the way a SIP client sends it over UDP
 * (RFC 3261 §17.1.2.2: again after 500 ms, then 1 s later): how long (ms)
 * from the first copy to an answer, or Infinity without one within 3 s.
 * Datagrams can be lost to a full socket queue in a flood; a retransmission
 * is how UDP makes up for it.
 */
export async function probe(port: number, n: number): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const message =
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${socket.address().port};branch=z9hG4bK-storm-${n}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:monitor@127.0.0.1>;tag=${n}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: storm-probe-${n}\r\n` +
    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
  const started = Date.now();
  const send = () => socket.send(message, port, "127.0.0.1");
  const retransmits = [setTimeout(send, 500), setTimeout(send, 1500)];
  const ms = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), 3000);
    socket.once("message", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    send();
  });
  for (const t of retransmits) clearTimeout(t);
  socket.close();
  return ms;
}

/** OPTIONS probes (probe() above) one after another, `pauseMs` apart, until stopped: resolves with their times. */
export function probing(port: number, pauseMs: number): { stop: () => Promise<number[]> } {
  let running = true;
  const times: number[] = [];
  const loop = (async () => {
    for (let n = 0; running; n++) {
      times.push(await probe(port, n));
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return times;
    },
  };
}

/** Starts the TLS clients (test/fixtures/storm/tls-clients.ts) and resolves at each stage it reports. */
export function tlsClients(
  processes: Processes,
  port: number,
  slow: number,
  storm: number,
): { slowUp: Promise<void>; stormDone: Promise<void>; stop: () => void } {
  const child = processes.spawn(
    ...niced(true, process.execPath, [
      join(import.meta.dirname, "..", "fixtures", "storm", "tls-clients.ts"),
      String(port),
      String(slow),
      String(storm),
    ]),
  );
  // One reader of its output; each stage waits for its word in it (or for the exit).
  let out = "";
  const waiting = new Set<() => void>();
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    for (const check of waiting) check();
  });
  const stage = (word: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!out.includes(word)) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      child.once("exit", () => resolve());
    });
  return { slowUp: stage("slow"), stormDone: stage("storm"), stop: () => child.kill("SIGKILL") };
}

/**
 * A flood of calls at `rate` per second from `uacs` sipp UACs (the
 * test/fixtures/sipp/uac_accepts_503.xml scenario: a 503 ends a call),
 * each offering its share for `seconds`; resolves with each UAC's counts.
 */
export function flood(
  processes: Processes,
  port: number,
  o: {
    readonly uacs: number;
    readonly rate: number;
    readonly seconds: number;
    readonly timeoutSeconds: number;
    readonly extra: readonly string[];
    readonly niced?: boolean;
  },
): Promise<CallCounts[]> {
  const each = Math.round(o.rate / o.uacs);
  return Promise.all(
    Array.from({ length: o.uacs }, () =>
      runUac(processes, `127.0.0.1:${port}`, {
        calls: each * o.seconds,
        rate: each,
        scenario: join(FIXTURE_SCENARIOS, "uac_accepts_503.xml"),
        timeoutSeconds: o.timeoutSeconds,
        extra: o.extra,
        niced: o.niced === true,
      }),
    ),
  );
}

/** sipedge's config for a storm: 2 IO workers, UDP and TLS listeners, the sipp UASs as one pool. */
export function stormConfig(backends: readonly number[], admin: number, cert: { cert: string; key: string }): string {
  return onePoolConfig({
    io: "{ threads: 2, pin: false }",
    listen: [
      "{ transport: udp, address: 127.0.0.1, port: 0 }",
      `{ transport: tls, address: 127.0.0.1, port: 0, cert: ${cert.cert}, key: ${cert.key} }`,
    ],
    members: backends.map((p, i) => `{ name: uas${i}, uri: "sip:127.0.0.1:${p}" }`),
    admin,
    // Every test client comes from 127.0.0.1. Each TLS handshake costs the worker's loop a
    // millisecond or two: on two cores shared with the load tool, 32 at a time per worker
    // keeps OPTIONS answered within 2 s while the rest of a storm is refused at once.
    lines: [
      `limits: { memory: ${BUDGET / MiB}MiB, maxConnectionsPerIp: 10000, maxHandshakes: 32, handshakeTimeout: 5s, messageTimeout: 5s }`,
    ],
  });
}

/**
 * parseMessage + checkMessage of a small INVITE per second on the machine
 * the storm's flood was sized on. Machines of the same kind have been seen
 * from that down to half as fast, and one machine wander between the two
 * within minutes (other tenants), so a flood is scaled by how fast this
 * one is when the test starts.
 */
const REFERENCE_PARSE_RATE = 260_000;

/** This machine's speed against the reference (at most 1), from test/fixtures/storm/parse-rate.ts. */
export function machineSpeed(): number {
  const rate = Number(
    execFileSync(process.execPath, [join(import.meta.dirname, "..", "fixtures", "storm", "parse-rate.ts")], {
      encoding: "utf8",
    }).trim(),
  );
  return Math.min(1, rate / REFERENCE_PARSE_RATE);
}
