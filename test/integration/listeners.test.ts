import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ConnectionOptions, connect, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLI, configFile } from "../helpers/cli.ts";
import { exited } from "../helpers/net.ts";
import { spawnRegistered } from "../helpers/processes.ts";
import { CERT_DIR, perTest, startSipedge } from "../helpers/sipedge.ts";

const scope = perTest();

/** Connects with Node's TLS client; resolves with the socket once the handshake is done, or the error. */
function handshake(port: number, options: ConnectionOptions = {}): Promise<TLSSocket | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options });
    socket.once("secureConnect", () => {
      // A server that rejects the client certificate closes right after the handshake (TLS 1.3).
      socket.once("close", () => resolve(new Error("closed by the server")));
      socket.write("\r\n\r\n");
      socket.once("data", () => resolve(socket));
    });
    socket.once("error", (e) => resolve(e));
  });
}

describe("stream listeners", () => {
  it("listen with the kernel's whole backlog (net.core.somaxconn), not Node's 511", async () => {
    // In a network namespace of its own, where somaxconn can be set without touching the host.
    const config = configFile(
      "listen:\n  - { transport: tcp, address: 127.0.0.1, port: 5070 }\n" +
        "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9' }\n",
    );
    const script = [
      "ip link set lo up",
      "sysctl -qw net.core.somaxconn=1234",
      `"${process.execPath}" "${CLI}" --config "${config}" & pid=$!`,
      "for i in $(seq 50); do ss -ltnH 'sport = :5070' | grep -q . && break; sleep 0.1; done",
      "ss -ltnH 'sport = :5070'",
      "kill $pid; wait $pid",
    ].join("; ");
    // Registered: if the script fails or hangs, the sipedge it put in the background (its group) goes with it.
    const shell = spawnRegistered("unshare", ["--net", "bash", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    shell.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    expect(await exited(shell), out).toBe(0);
    // For a listening socket, ss shows the backlog in the Send-Q column.
    const listening = out.split("\n").find((l) => l.startsWith("LISTEN")) ?? "";
    expect(Number(listening.split(/\s+/)[2])).toBe(1234);
  });
});

describe("TLS listener", () => {
  it("speaks TLS 1.2 and 1.3 but not older", async () => {
    const sipedge = scope.use(await startSipedge([9]));
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      const s = await handshake(sipedge.tls, { minVersion: version, maxVersion: version });
      expect(s instanceof Error ? s.message : s.getProtocol()).toBe(version);
      if (!(s instanceof Error)) s.destroy();
    }
    const old = await handshake(sipedge.tls, {
      minVersion: "TLSv1",
      maxVersion: "TLSv1.1",
      ciphers: "DEFAULT@SECLEVEL=0",
    });
    expect(old).toBeInstanceOf(Error);
  });

  it("resumes sessions with tickets", async () => {
    const sipedge = scope.use(await startSipedge([9]));
    const first = await handshake(sipedge.tls, { maxVersion: "TLSv1.2" });
    if (first instanceof Error) throw first;
    const session = first.getSession();
    first.destroy();
    const second = await handshake(sipedge.tls, {
      maxVersion: "TLSv1.2",
      ...(session === undefined ? {} : { session }),
    });
    if (second instanceof Error) throw second;
    expect(second.isSessionReused()).toBe(true);
    second.destroy();
  });

  it("answers CRLFCRLF keep-alive pings with a CRLF pong (RFC 5626 §4.4.1)", async () => {
    const sipedge = scope.use(await startSipedge([9]));
    const s = await handshake(sipedge.tls);
    if (s instanceof Error) throw s;
    const pong = await new Promise<Buffer>((resolve) => {
      s.once("data", resolve);
      s.write("\r\n\r\n");
    });
    expect(pong.toString()).toBe("\r\n");
    s.destroy();
  });

  it("with clientAuth require, refuses a client without a trusted certificate and admits one with it", async () => {
    const sipedge = scope.use(await startSipedge([9], { clientAuth: "require" }));
    expect(await handshake(sipedge.tls)).toBeInstanceOf(Error);
    const withCert = await handshake(sipedge.tls, {
      cert: readFileSync(join(CERT_DIR, "cert.pem")),
      key: readFileSync(join(CERT_DIR, "key.pem")),
    });
    expect(withCert).not.toBeInstanceOf(Error);
    if (!(withCert instanceof Error)) withCert.destroy();
  });
});

describe("idle flows", () => {
  it("close a client connection silent for limits.idleTimeout, and keep one that sends keep-alives", async () => {
    const sipedge = scope.use(await startSipedge([9], { limits: { idleTimeout: "600ms" } }));
    const silent = await handshake(sipedge.tls);
    const chatty = await handshake(sipedge.tls);
    if (silent instanceof Error || chatty instanceof Error) throw new Error("no handshake");
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      silent.once("close", () => resolve(Date.now() - started));
    });
    // RFC 5626 §4.4.1 pings every 200 ms keep the other flow alive past the timeout.
    const pinger = setInterval(() => chatty.write("\r\n\r\n"), 200);
    try {
      expect(await closed).toBeLessThan(1500);
      await new Promise((r) => setTimeout(r, 900));
      expect(chatty.destroyed).toBe(false);
      expect(chatty.readyState).toBe("open");
    } finally {
      clearInterval(pinger);
      chatty.destroy();
    }
  });
});

describe("UDP listener", () => {
  it("answers a STUN keep-alive on the SIP port with the client's mapped address (RFC 5626 §8)", async () => {
    const sipedge = scope.use(await startSipedge([9]));
    // coturn's STUN client: a Binding request, and it prints the reflexive address it was told
    // (asynchronously: sipedge runs in this test's own event loop).
    const { stdout } = await promisify(execFile)("turnutils_stunclient", ["-p", String(sipedge.udp), "127.0.0.1"], {
      timeout: 10_000,
    });
    expect(stdout).toMatch(/UDP reflexive addr: 127\.0\.0\.1:\d+/);
  });

  it("lets the kernel queue limits.udpReceiveBuffer for it, not more (a deep queue only holds requests already sent again)", async () => {
    const sipedge = scope.use(await startSipedge([9], { limits: { udpReceiveBuffer: "192KiB" } }));
    // ss's skmem rb: the socket's SO_RCVBUF, which Linux sets to twice the size asked for.
    const out = execFileSync("ss", ["-uamnH", `sport = :${sipedge.udp}`], { encoding: "utf8" });
    expect(/\brb(\d+)/.exec(out)?.[1]).toBe(String(2 * 192 * 1024));
  });
});
