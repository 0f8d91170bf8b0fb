import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep } from "./net.ts";
import { spawnRegistered } from "./processes.ts";

/** The sipedge command, run from source by the test's own Node 24. */
export const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli.ts");

/** A config file in a fresh temporary folder. */
export function configFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "sipedge-cli-")), "sipedge.yaml");
  writeFileSync(path, text);
  return path;
}

/**
 * The YAML of a config with one backend pool, "core": `io` is its value,
 * `listen` and `members` one entry each, `lines` more top-level lines.
 * Health is lenient (its probes may be answered by busy test processes:
 * no flapping under a loaded CI run).
 */
export function onePoolConfig(o: {
  readonly io: string;
  readonly listen: readonly string[];
  readonly members: readonly string[];
  readonly admin: number;
  readonly lines?: readonly string[];
}): string {
  return [
    `io: ${o.io}`,
    "listen:",
    ...o.listen.map((l) => `  - ${l}`),
    "backends:",
    "  - name: core",
    "    members:",
    ...o.members.map((m) => `      - ${m}`),
    `admin: { listen: "127.0.0.1:${o.admin}" }`,
    "health: { interval: 1s, timeout: 900ms, downAfter: 5, upAfter: 1 }",
    ...(o.lines ?? []),
  ].join("\n");
}

/**
 * One IO worker with one TLS listener (`files`' certificate) and a backend
 * member nothing answers: for handshakes only, from clients all on
 * 127.0.0.1; its admin API on `admin`.
 */
export async function handshakesOnlyConfig(files: { cert: string; key: string }, admin: number): Promise<string> {
  return configFile(
    onePoolConfig({
      io: "{ threads: 1, pin: false }",
      listen: [`{ transport: tls, address: 127.0.0.1, port: 0, cert: ${files.cert}, key: ${files.key} }`],
      members: [`{ name: a, uri: "sip:127.0.0.1:${await freePort()}" }`], // nothing there: no call is made
      admin,
      lines: ["limits: { maxConnectionsPerIp: 2000 }"], // every client is on 127.0.0.1
    }),
  );
}

/**
 * One IO worker with a UDP listener in front of a backend that answers its
 * probes and nothing else (no failover: each INVITE stays a transaction
 * awaiting its answer), its admin API on `admin`; `lines` are more YAML
 * lines (limits, more listeners under `extraListen`).
 */
export function silentBackendConfig(
  backendPort: number,
  admin: number,
  o: { readonly extraListen?: readonly string[]; readonly sip?: string; readonly lines?: readonly string[] } = {},
): string {
  return configFile(
    onePoolConfig({
      io: "{ threads: 1, pin: false }",
      listen: ["{ transport: udp, address: 127.0.0.1, port: 0 }", ...(o.extraListen ?? [])],
      members: [`{ name: silent, uri: "sip:127.0.0.1:${backendPort}" }`],
      admin,
      lines: [`sip: { failoverOn: [], ${o.sip ?? "firstResponseTimeout: 60s"} }`, ...(o.lines ?? [])],
    }),
  );
}

/**
 * A two-worker sipedge in front of one registrar backend, its admin API on
 * `admin`: `listen` and `more.lines` are YAML lines.
 */
export function registrarConfig(
  listen: readonly string[],
  registrarPort: number,
  admin: number,
  more: { readonly backendPort?: number; readonly lines?: readonly string[] } = {},
): string {
  return configFile(
    onePoolConfig({
      io: `{ threads: 2, pin: false, grace: 1s, backendPort: ${more.backendPort ?? 0} }`,
      listen,
      members: [`{ name: registrar, uri: "sip:127.0.0.1:${registrarPort}" }`],
      admin,
      lines: more.lines ?? [],
    }),
  );
}

/** The port sipedge said it listens on for `transport` on `address` (an IPv4 one), from its output. */
export function listeningPort(out: string, transport: string, address = "127.0.0.1"): number {
  return Number(new RegExp(`listening on ${transport} ${address.replaceAll(".", "\\.")}:(\\d+)`).exec(out)?.[1]);
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
}

/**
 * `sipedge --config FILE` in the background, its output collected; resolves once `readyText` was printed.
 * `launcher`: a command sipedge's Node is run by (its arguments after these), e.g. a shell that raises a limit.
 * `options`: more arguments after `--config FILE` (`--log-format json`).
 */
export async function startCli(
  config: string,
  readyText = "io worker 0",
  env: NodeJS.ProcessEnv = process.env,
  launcher: readonly string[] = [],
  options: readonly string[] = [],
): Promise<RunningCli> {
  let out = "";
  let err = "";
  const [command = process.execPath, ...args] = [...launcher, process.execPath, CLI, "--config", config, ...options];
  // Registered: stopped when the test (or, started outside one, its file) ends.
  const child = spawnRegistered(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  // Up to 10 s, or until it exits: a Node start with the TypeScript loader took over 5 s on a loaded 2-core CI machine.
  for (let i = 0; i < 200 && !out.includes(readyText) && child.exitCode === null; i++) await sleep(50);
  return { child, out: () => out, err: () => err };
}

/** What a finished sipedge command printed, and its exit status. */
export interface Finished {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `sipedge ARGS` as an operator runs it, to its end: a child process of the
 * test's own Node 24, registered like every other (stopped if the test ends first).
 */
export function runCommand(args: readonly string[]): Promise<Finished> {
  const child = spawnRegistered(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.once("close", (status) => resolve({ status, stdout, stderr })));
}
