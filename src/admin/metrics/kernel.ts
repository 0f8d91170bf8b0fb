import { readFileSync } from "node:fs";

/** The kernel TCP counters a SIP edge's operators watch (names as in /proc/net/netstat and /proc/net/snmp). */
export const TCP_COUNTERS = [
  "ListenOverflows",
  "ListenDrops",
  "SyncookiesSent",
  "SyncookiesRecv",
  "SyncookiesFailed",
  "TCPTimeouts",
  "TW",
  "PruneCalled",
  "RetransSegs",
  "AttemptFails",
  "EstabResets",
] as const;

/**
 * Reads `Prefix: name name …` / `Prefix: value value …` line pairs, the
 * format of /proc/net/netstat and /proc/net/snmp, for the TCP sections.
 */
export function tcpCounters(files: readonly string[] = ["/proc/net/netstat", "/proc/net/snmp"]): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of files) {
    let lines: string[];
    try {
      lines = readFileSync(file, "utf8").split("\n");
    } catch {
      continue;
    }
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = (lines[i] as string).split(/\s+/);
      const values = (lines[i + 1] as string).split(/\s+/);
      if (names[0] !== "TcpExt:" && names[0] !== "Tcp:") continue;
      names.forEach((n, k) => {
        if ((TCP_COUNTERS as readonly string[]).includes(n)) out.set(n, Number(values[k]));
      });
    }
  }
  return out;
}

/**
 * Connections waiting in the accept queue of each listening port of ours:
 * for a socket in LISTEN (state 0A), /proc/net/tcp's rx_queue is that queue.
 */
export function listenQueues(ports: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== "0A") continue;
      const port = Number.parseInt(f[1]?.split(":")[1] ?? "", 16);
      if (!ports.includes(port)) continue;
      const rx = Number.parseInt(f[4]?.split(":")[1] ?? "0", 16);
      out.set(port, (out.get(port) ?? 0) + rx);
    }
  }
  return out;
}
