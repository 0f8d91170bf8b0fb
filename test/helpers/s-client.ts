import type { ChildProcess } from "node:child_process";
import { exited, type Processes, sleep } from "./net.ts";

/** What `openssl s_client -brief` told of one handshake. */
export interface SClientResult {
  /** Its exit code: 0 once a handshake was done and stdin ended, else 1. */
  readonly code: number | null;
  /** "TLSv1.3", …; undefined when no handshake was done. */
  readonly protocol: string | undefined;
  /** The group the key exchange used ("X25519", …), as s_client names it. */
  readonly group: string | undefined;
  /** stdout and stderr together. */
  readonly out: string;
}

function sClient(p: Processes, port: number, args: readonly string[], stdin: boolean): ChildProcess {
  return p.spawn("openssl", ["s_client", "-brief", "-connect", `127.0.0.1:${port}`, ...args], undefined, { stdin });
}

/** Collects a child's output from now on; `text()` is all of it so far. */
function collect(child: ChildProcess): () => string {
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  return () => out;
}

function result(code: number | null, out: string): SClientResult {
  return {
    code,
    protocol: /^Protocol version: (\S+)/m.exec(out)?.[1],
    // -brief (TLS 1.2 and 1.3 alike in OpenSSL 3.0): "Server Temp Key: X25519, 253 bits", "… ECDH, secp384r1, 384 bits".
    group: /^Server Temp Key: (?:ECDH, )?([^,\s]+)/m.exec(out)?.[1],
    out,
  };
}

/**
 * One handshake by the system's openssl (a real peer, not Node's own TLS)
 * to 127.0.0.1:port with the given s_client options; stdin is empty, so it
 * ends as soon as the handshake is done or failed.
 */
export async function handshake(p: Processes, port: number, args: readonly string[] = []): Promise<SClientResult> {
  const child = sClient(p, port, args, false);
  const text = collect(child);
  return result(await exited(child), text());
}

/**
 * A TLS 1.2 handshake, then s_client's `R` command (a client-initiated
 * renegotiation), then a CRLF keep-alive. Resolves once s_client has ended
 * or `ms` have passed: `code` null means it still ran, the connection alive
 * and the renegotiation gone through.
 */
export async function renegotiate(
  p: Processes,
  port: number,
  args: readonly string[] = [],
  ms = 3000,
): Promise<SClientResult> {
  const child = sClient(p, port, ["-tls1_2", ...args], true);
  const text = collect(child);
  for (let i = 0; i < 100 && !text().includes("CONNECTION ESTABLISHED"); i++) await sleep(50);
  child.stdin?.write("R\n");
  await sleep(200);
  child.stdin?.write("\r\n\r\n");
  const code = await Promise.race([exited(child), sleep(ms).then(() => null)]);
  if (code === null) await p.kill(child);
  return result(code, text());
}

/** An s_client connection held open (its stdin a pipe): what it printed, whether it resumed a session, and its end. */
export interface HeldConnection {
  /** s_client said "Reused" (a resumed session), not "New". */
  readonly reused: boolean;
  readonly out: () => string;
  /** Stops it, and so its connection (an end of its stdin left a TLS 1.3 s_client running for seconds). */
  end(): Promise<void>;
}

/**
 * A handshake by openssl s_client kept open, without -brief (which does
 * not say whether the session was reused). Resolves once the handshake is
 * done, or after 5 s. A TLS 1.3 ticket comes after it: a `-sess_out` file
 * is written when it does.
 */
export async function holdOpen(p: Processes, port: number, args: readonly string[]): Promise<HeldConnection> {
  const child = p.spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args], undefined, { stdin: true });
  const text = collect(child);
  for (let i = 0; i < 100 && !/^(New|Reused), /m.test(text()) && child.exitCode === null; i++) await sleep(50);
  return {
    reused: /^Reused, /m.test(text()),
    out: text,
    end: () => p.kill(child),
  };
}
