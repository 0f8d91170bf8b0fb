import type { ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnRegistered, stop } from "./processes.ts";

/** A port the OS says is free for both UDP and TCP on 127.0.0.1. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

/**
 * Child processes a group of tests started, for killing some of them
 * mid-test; all are stopped when their test (or file) ends anyway
 * (test/helpers/processes.ts).
 */
export class Processes {
  readonly #children = new Set<ChildProcess>();

  /** `stdin`: a pipe the test writes commands to; `env`: the child's whole environment. */
  spawn(
    command: string,
    args: readonly string[],
    cwd?: string,
    more: { stdin?: boolean; env?: NodeJS.ProcessEnv } = {},
  ): ChildProcess {
    const child = spawnRegistered(command, args, {
      cwd,
      env: more.env,
      stdio: [more.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    });
    child.stdout?.resume();
    child.stderr?.resume();
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
    return child;
  }

  kill(child: ChildProcess): Promise<void> {
    return stop(child);
  }

  /** The children running now: a mark for killSince. */
  mark(): ReadonlySet<ChildProcess> {
    return new Set(this.#children);
  }

  /** Kills the children started after `mark` was taken. */
  async killSince(mark: ReadonlySet<ChildProcess>): Promise<void> {
    await Promise.all([...this.#children].filter((c) => !mark.has(c)).map((c) => this.kill(c)));
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.#children].map((c) => this.kill(c)));
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A UDP link that loses chosen datagrams on their way to a peer: it stands
 * between sipedge and a real backend, relaying both ways, and drops the
 * datagrams `lose` picks (a lossy network, not a fake peer).
 */
export async function lossyLink(peerPort: number, lose: (datagram: Buffer, index: number) => boolean) {
  const socket = createSocket("udp4");
  let index = 0;
  let client: { address: string; port: number } | undefined;
  socket.on("message", (msg, rinfo) => {
    if (rinfo.port === peerPort) {
      if (client !== undefined) socket.send(msg, client.port, client.address);
      return;
    }
    client = { address: rinfo.address, port: rinfo.port };
    if (!lose(msg, index++)) socket.send(msg, peerPort, "127.0.0.1");
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return { port: socket.address().port, close: () => socket.close() };
}

/** stunnel in server mode: TLS on acceptPort (with the given certificate), plain TCP to connectPort. */
export function startStunnel(
  p: Processes,
  acceptPort: number,
  connectPort: number,
  cert: { cert: string; key: string },
  /** client: accept plain TCP and connect with TLS (a TLS front for sipp, whose Debian build has none). */
  mode: "server" | "client" = "server",
) {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-stunnel-"));
  const conf = join(dir, "stunnel.conf");
  writeFileSync(
    conf,
    [
      "foreground = yes",
      "pid =",
      "[sip]",
      `client = ${mode === "client" ? "yes" : "no"}`,
      `accept = 127.0.0.1:${acceptPort}`,
      `connect = 127.0.0.1:${connectPort}`,
      `cert = ${cert.cert}`,
      `key = ${cert.key}`,
    ].join("\n"),
  );
  return p.spawn("stunnel", [conf], dir);
}
