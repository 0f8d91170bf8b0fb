/**
 * The hostile-traffic test's world (test/integration/hostile.test.ts): a
 * network namespace of its own, with sipedge on 127.0.0.1, its backend on
 * 127.0.0.3 and the attackers on 127.0.0.2, and an nftables table that
 * counts every packet sipedge must never send. Half of this runs in the
 * test (host side: Netns), half inside the namespace (the fixtures in
 * test/fixtures/hostile: snapshot(), optionsStatus()); no vitest here.
 *
 * How a stray send is seen. The namespace has a catch-all route (a veth
 * pair whose two ends both stay inside it, with a permanent neighbour
 * entry) and route_localnet, so a send to any address at all, 127.0.0.9,
 * 192.0.2.9, a DNS server, an IPv6 host, makes a packet that passes the
 * output hook, also from a socket bound to 127.0.0.1; with only `lo` the
 * kernel would refuse most of them before any hook (ENETUNREACH, EINVAL)
 * and a stray send would go unseen. The output chain then counts, and drops
 * (nothing leaves the namespace either way):
 * - anyone's packet to an IPv4 address other than 127.0.0.1/2/3, and any
 *   IPv6 packet but the kernel's own neighbour discovery;
 * - anyone's packet to 127.0.0.3 other than UDP to the backend's port;
 * - sipedge's own packets, told apart by the group its sockets belong to
 *   (it runs as root with group SIPEDGE_GID: `meta skgid`): any to
 *   127.0.0.1 (itself: a loop), any TCP SYN (it has no stream backend, so
 *   no connection of its own to open), and any to 127.0.0.2 at a port
 *   127.0.0.2 never started a flow from (a set the chain fills with the
 *   source port of every UDP datagram and TCP SYN the attackers send):
 *   that is not a client flow.
 * Two more counters prove the group match sees sipedge at all: its packets
 * to the backend and to the clients must not be 0.
 * Unbound sockets that send to 127.0.0.1 get 127.0.0.2 as their source (a
 * route's preferred source), so tools that cannot be told which address to
 * send from still attack from 127.0.0.2.
 */
import { execFile, execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { metricByLabel, metricSum } from "./metrics.ts";

export const EDGE = "127.0.0.1";
export const ATTACKER = "127.0.0.2";
export const BACKEND = "127.0.0.3";

/** Fixed ports: the namespace's port space is the test's alone. */
export const PORTS = {
  udp: 5060,
  tcp: 5060,
  tls: 5061,
  wss: 8443,
  admin: 9091,
  /** io.backendPort: worker i's backend-side port is this + i. */
  backendSide: [5070, 5071],
  backend: 5080,
} as const;

/** The group sipedge runs with (still as root): its sockets' `meta skgid`. */
export const SIPEDGE_GID = 4747;

export const TABLE = "sipedge_hostile";

/** The counters that must stay 0: each a way of sending where no one configured. */
export const STRAYS = [
  "stray_address",
  "stray_ipv6",
  "stray_backend_port",
  "sipedge_to_self",
  "sipedge_connects",
  "sipedge_to_stranger_port",
] as const;

/** The nftables table: see the file comment. */
export function nftRules(): string {
  const g = SIPEDGE_GID;
  const counters = [...STRAYS, "sipedge_packets", "sipedge_to_backend", "sipedge_to_clients"];
  return `
table inet ${TABLE} {
  set clients { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 262144; }
${counters.map((c) => `  counter ${c} {}`).join("\n")}
  chain out {
    type filter hook output priority 0; policy accept;
    ip saddr ${ATTACKER} meta l4proto udp update @clients { ip saddr . meta l4proto . th sport }
    ip saddr ${ATTACKER} tcp flags & (syn | ack) == syn update @clients { ip saddr . meta l4proto . th sport }
    meta skgid ${g} counter name sipedge_packets
    meta skgid ${g} ip daddr ${BACKEND} udp dport ${PORTS.backend} counter name sipedge_to_backend
    meta skgid ${g} ip daddr ${ATTACKER} counter name sipedge_to_clients
    meta skgid ${g} ip daddr ${EDGE} counter name sipedge_to_self
    meta skgid ${g} tcp flags & (syn | ack) == syn counter name sipedge_connects
    meta skgid ${g} ip daddr ${ATTACKER} meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport != @clients counter name sipedge_to_stranger_port
    ip daddr != { ${EDGE}, ${ATTACKER}, ${BACKEND} } counter name stray_address drop
    meta nfproto ipv6 meta l4proto != ipv6-icmp counter name stray_ipv6 drop
    meta skgid ${g} meta nfproto ipv6 counter name stray_ipv6 drop
    ip daddr ${BACKEND} udp dport != ${PORTS.backend} counter name stray_backend_port
    ip daddr ${BACKEND} meta l4proto tcp counter name stray_backend_port
  }
}
`;
}

const LOCALNET =
  "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && echo 1 > /proc/sys/net/ipv4/conf/default/route_localnet";

function ip(args: readonly string[], input?: string): string {
  return execFileSync("ip", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** The test's network namespace (host side). */
export class Netns {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates the namespace with its addresses, catch-all route and counters (as root). */
  static create(): Netns {
    Netns.removeStale();
    const ns = new Netns(`sipedge-hostile-${process.pid}`);
    const n = ["-n", ns.name];
    ip(["netns", "add", ns.name]);
    try {
      ip([...n, "link", "set", "lo", "up"]);
      // Unbound senders to 127.0.0.1 (sipsak, sipvicious) come from the attacker's address.
      ip([
        ...n,
        "route",
        "replace",
        "local",
        EDGE,
        "dev",
        "lo",
        "table",
        "local",
        "proto",
        "kernel",
        "scope",
        "host",
        "src",
        ATTACKER,
      ]);
      // The catch-all: any other destination is routable (so a stray send makes a packet to count),
      // also from a socket bound to 127.0.0.1, as all of sipedge's are (without route_localnet the
      // kernel refuses a loopback source on another device: EINVAL, and no packet).
      execFileSync("ip", ["netns", "exec", ns.name, "sh", "-c", LOCALNET], { stdio: ["ignore", "pipe", "pipe"] });
      ip([...n, "link", "add", "stray0", "type", "veth", "peer", "name", "stray1"]);
      ip([...n, "link", "set", "stray0", "up"]);
      ip([...n, "link", "set", "stray1", "up"]);
      ip([...n, "addr", "add", "192.0.2.1/24", "dev", "stray0"]);
      ip([...n, "route", "add", "default", "via", "192.0.2.254", "dev", "stray0"]);
      ip([...n, "neigh", "add", "192.0.2.254", "lladdr", "02:00:00:00:00:fe", "nud", "permanent", "dev", "stray0"]);
      ip([...n, "-6", "addr", "add", "2001:db8:ffff::1/64", "dev", "stray0", "nodad"]);
      ip([...n, "-6", "route", "add", "default", "via", "2001:db8:ffff::fe", "dev", "stray0"]);
      ip([
        ...n,
        "-6",
        "neigh",
        "add",
        "2001:db8:ffff::fe",
        "lladdr",
        "02:00:00:00:00:fe",
        "nud",
        "permanent",
        "dev",
        "stray0",
      ]);
      execFileSync("ip", ["netns", "exec", ns.name, "nft", "-f", "-"], {
        input: nftRules(),
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      ns.destroy();
      throw e;
    }
    return ns;
  }

  /** Namespaces an earlier run of this test left behind (its process gone). */
  static removeStale(): void {
    for (const line of ip(["netns", "list"]).split("\n")) {
      const m = /^sipedge-hostile-(\d+)/.exec(line);
      if (m === null) continue;
      let alive = true;
      try {
        process.kill(Number(m[1]), 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        try {
          ip(["netns", "del", `sipedge-hostile-${m[1]}`]);
        } catch {}
      }
    }
  }

  /** A command line run inside the namespace. */
  command(command: string, args: readonly string[]): [string, string[]] {
    return ["ip", ["netns", "exec", this.name, command, ...args]];
  }

  /** Runs a command inside the namespace to its end (killed after timeoutMs). */
  run(
    command: string,
    args: readonly string[],
    timeoutMs = 30_000,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        "ip",
        ["netns", "exec", this.name, command, ...args],
        { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  destroy(): void {
    try {
      ip(["netns", "del", this.name]);
    } catch {}
  }
}

/* ---- inside the namespace (the fixtures) ---- */

/** sipedge's /metrics, asked from the attacker's address (a client flow, not a send to a stranger). */
export function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: EDGE, port: PORTS.admin, path: "/metrics", localAddress: ATTACKER, timeout: 5000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve(text));
      },
    );
    req.on("timeout", () => req.destroy(new Error("metrics: timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** The table's counters (packets), by name. */
export function firewall(): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    execFile("nft", ["-j", "list", "counters", "table", "inet", TABLE], { encoding: "utf8" }, (err, out) => {
      if (err !== null) return reject(err);
      const counters: Record<string, number> = {};
      for (const item of (JSON.parse(out) as { nftables: { counter?: { name: string; packets: number } }[] })
        .nftables) {
        if (item.counter !== undefined) counters[item.counter.name] = item.counter.packets;
      }
      resolve(counters);
    });
  });
}

export interface Snapshot {
  readonly internalErrors: number;
  readonly internalByWhere: Record<string, number>;
  readonly restarts: number;
  readonly ioWorkers: number;
  readonly counters: Record<string, number>;
  /** The sum of the STRAYS counters. */
  readonly strays: number;
}

export async function snapshot(): Promise<Snapshot> {
  const [text, counters] = await Promise.all([scrape(), firewall()]);
  return {
    internalErrors: metricSum(text, "sipedge_internal_errors_total"),
    internalByWhere: Object.fromEntries(metricByLabel(text, "sipedge_internal_errors_total", "where")),
    restarts: metricSum(text, "sipedge_worker_restarts_total"),
    ioWorkers: metricSum(text, "sipedge_io_workers"),
    counters,
    strays: STRAYS.reduce((n, c) => n + (counters[c] ?? 0), 0),
  };
}

function options(port: number, localPort: number, transport: "UDP" | "TCP", n: string): Buffer {
  return Buffer.from(
    `OPTIONS sip:${EDGE}:${port} SIP/2.0\r\nVia: SIP/2.0/${transport} ${ATTACKER}:${localPort};branch=z9hG4bK-alive-${n};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:monitor@${ATTACKER}>;tag=${n}\r\nTo: <sip:${EDGE}>\r\nCall-ID: alive-${n}\r\n` +
      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    "latin1",
  );
}

/** An OPTIONS to sipedge itself over UDP (sent up to 3 times) or TCP: the status of its answer, 0 for none in 3 s. */
export async function optionsStatus(transport: "udp" | "tcp"): Promise<number> {
  const n = `${transport}-${Date.now()}`;
  if (transport === "udp") {
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, ATTACKER, () => r()));
    const msg = options(PORTS.udp, s.address().port, "UDP", n);
    const status = await new Promise<number>((resolve) => {
      const timers = [0, 500, 1500].map((t) => setTimeout(() => s.send(msg, PORTS.udp, EDGE), t));
      const done = setTimeout(() => resolve(0), 3000);
      s.on("message", (m) => {
        const code = /^SIP\/2\.0 (\d{3})/.exec(m.toString("latin1"))?.[1];
        if (code === undefined || code.startsWith("1")) return;
        for (const t of [...timers, done]) clearTimeout(t);
        resolve(Number(code));
      });
    });
    s.close();
    return status;
  }
  return new Promise<number>((resolve) => {
    const c = netConnect({ host: EDGE, port: PORTS.tcp, localAddress: ATTACKER });
    let got = "";
    const done = (status: number) => {
      clearTimeout(timer);
      c.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(0), 3000);
    c.on("connect", () => c.write(options(PORTS.tcp, c.localPort ?? 0, "TCP", n)));
    c.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      for (const m of got.matchAll(/SIP\/2\.0 (\d{3})/g)) if (!m[1]?.startsWith("1")) done(Number(m[1]));
    });
    c.on("error", () => done(0));
  });
}
