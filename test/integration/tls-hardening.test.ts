import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { noFailures } from "../../src/transport/handshake-failures.ts";
import { type CertificateFiles, privatePki } from "../helpers/certificates.ts";
import { invite } from "../helpers/dialog.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { handshake, renegotiate } from "../helpers/s-client.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { CERT_DIR, perTest, type Running, startSipedge } from "../helpers/sipedge.ts";

// The hardened defaults (src/transport/tls-policy.ts) as the system's openssl
// meets them: a real peer, on every kind of TLS listener sipedge has.
const scope = perTest();
const { processes } = scope;

/** CBC with a SHA-1 MAC: accepted on TLS 1.2 before the defaults were hardened. */
const CBC_SHA1 = ["-cipher", "ECDHE-ECDSA-AES128-SHA", "-tls1_2"];

/** sipedge with a TLS, a WSS and (a TLS backend being configured) a backend-side TLS listener. */
async function sipedgeWithEveryTlsListener(): Promise<{ sipedge: Running; ports: Record<string, number> }> {
  const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, backendTransport: "tls" }));
  const backendSide = sipedge.worker.backendTlsPort;
  expect(backendSide).toBeGreaterThan(0);
  return { sipedge, ports: { tls: sipedge.tls, wss: sipedge.wss, "backend-side tls": backendSide } };
}

/**
 * Whether sipedge sends an INVITE to an openssl TLS backend (s_server, which
 * prints what it receives) with these options and certificate (the test
 * certificate, for 127.0.0.1, by default), sipedge checking it as `backendTls` says.
 */
async function reached(o: {
  serverArgs: readonly string[];
  cert?: CertificateFiles;
  backendTls?: { verify: boolean; ca?: string };
}): Promise<boolean> {
  const port = await freePort();
  const cert = o.cert ?? { cert: `${CERT_DIR}/cert.pem`, key: `${CERT_DIR}/key.pem` };
  const args = ["s_server", "-accept", `127.0.0.1:${port}`, "-cert", cert.cert, "-key", cert.key, ...o.serverArgs];
  // s_server ends when its stdin does.
  const server = processes.spawn("openssl", args, undefined, { stdin: true });
  let out = "";
  server.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  await sleep(300);
  const backendTls = o.backendTls ?? { verify: false };
  const sipedge = await startSipedge([port], { backendTransport: "tls", sip: { backendTls } });
  try {
    const client = await StreamClient.connect(sipedge.tcp, false);
    client.send(invite("TCP", client.localPort, `hardened-backend-${port}`));
    for (let i = 0; i < 30 && !out.includes("INVITE sip:"); i++) await sleep(100);
    client.close();
    return out.includes("INVITE sip:");
  } finally {
    await sipedge.worker.close();
    await processes.kill(server);
  }
}

describe("TLS defaults", () => {
  it("refuse TLS 1.1 and TLS 1.2's CBC suites, and negotiate TLS 1.3 with a default client, on every TLS listener", async () => {
    const { sipedge, ports } = await sipedgeWithEveryTlsListener();
    for (const [listener, port] of Object.entries(ports)) {
      const cbc = await handshake(processes, port, CBC_SHA1);
      expect({ listener, code: cbc.code, protocol: cbc.protocol }).toEqual({ listener, code: 1, protocol: undefined });
      const old = await handshake(processes, port, ["-tls1_1"]);
      expect({ listener, code: old.code, protocol: old.protocol }).toEqual({ listener, code: 1, protocol: undefined });
      const best = await handshake(processes, port);
      expect({ listener, code: best.code, protocol: best.protocol }).toEqual({
        listener,
        code: 0,
        protocol: "TLSv1.3",
      });
      // TLS 1.2 still works, with an AEAD suite.
      const tls12 = await handshake(processes, port, ["-tls1_2"]);
      expect(tls12.protocol).toBe("TLSv1.2");
      expect(tls12.out).toMatch(/^Ciphersuite: ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/m);
    }
    // The client-facing listeners count what they agreed on (sipedge_tls_handshakes_by_version_total),
    // and why the others failed (sipedge_tls_handshake_failures_total).
    const failed = { ...noFailures(), no_shared_cipher: 1, protocol_version: 1 };
    expect(sipedge.worker.stats(0).clients.handshakes.map((h) => [h.ok, h.failures, h.versions])).toEqual([
      [2, failed, { "TLSv1.3": 1, "TLSv1.2": 1 }],
      [2, failed, { "TLSv1.3": 1, "TLSv1.2": 1 }],
    ]);
  });

  it("refuse a client's renegotiation", async () => {
    const { ports } = await sipedgeWithEveryTlsListener();
    for (const [listener, port] of Object.entries(ports)) {
      const r = await renegotiate(processes, port);
      expect({ listener, ended: r.code !== null }).toEqual({ listener, ended: true });
      expect(r.out).toMatch(/no renegotiation/);
    }
  });

  it("keep holding after a reload gives the listeners new contexts", async () => {
    const { sipedge, ports } = await sipedgeWithEveryTlsListener();
    sipedge.worker.reconfigure(sipedge.config);
    for (const port of Object.values(ports)) {
      expect((await handshake(processes, port, CBC_SHA1)).code).toBe(1);
      expect((await renegotiate(processes, port)).code).not.toBeNull();
    }
  });

  it("hold towards TLS backends: sipedge does not talk to a backend offering only CBC suites", async () => {
    // The same backend with OpenSSL's defaults is reached: the test can tell.
    expect(await reached({ serverArgs: [] })).toBe(true);
    expect(await reached({ serverArgs: CBC_SHA1 })).toBe(false);
  });
});

describe("listen[].tls", () => {
  it("sets the minimum version and the groups of TLS and WSS listeners, and the backend side's", async () => {
    const tls = { minVersion: "TLSv1.3", groups: "P-384" };
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, backendTransport: "tls", tls }));
    // The backend side shows backends the first TLS listener's certificate, with its settings.
    for (const port of [sipedge.tls, sipedge.wss, sipedge.worker.backendTlsPort]) {
      expect((await handshake(processes, port, ["-tls1_2"])).code).toBe(1);
      const best = await handshake(processes, port);
      expect([best.protocol, best.group]).toEqual(["TLSv1.3", "secp384r1"]);
    }
  });

  it("narrows TLS 1.2 to the configured suites, and a reload changes them for new handshakes", async () => {
    const sipedge = scope.use(
      await startSipedge([await freePort()], { tls: { ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384" } }),
    );
    const suite = async () =>
      /^Ciphersuite: (\S+)/m.exec((await handshake(processes, sipedge.tls, ["-tls1_2"])).out)?.[1];
    expect(await suite()).toBe("ECDHE-ECDSA-AES256-GCM-SHA384");
    const [udp, tcp, listener, ...rest] = sipedge.config.listen;
    const chacha = {
      ...listener,
      tls: { ...(listener as { tls: object }).tls, ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305" },
    };
    sipedge.worker.reconfigure({
      ...sipedge.config,
      listen: [udp, tcp, chacha, ...rest] as typeof sipedge.config.listen,
    });
    expect(await suite()).toBe("ECDHE-ECDSA-CHACHA20-POLY1305");
  });
});

describe("TLS backends", () => {
  it("are checked for the name sipedge reaches them by, their address: a certificate for another host is refused", async () => {
    const pki = privatePki();
    const backendTls = { verify: true, ca: pki.ca };
    // Signed by the trusted CA and naming 127.0.0.1: reached.
    expect(await reached({ serverArgs: [], cert: pki.pbx, backendTls })).toBe(true);
    // Signed by the same CA but for other.test: not.
    expect(await reached({ serverArgs: [], cert: pki.other, backendTls })).toBe(false);
  });
});

/** What a `ws` client's upgrade to the WSS listener gets: 101 when it opened, else the HTTP status. */
async function upgrade(port: number, origin: string | undefined): Promise<number> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}`, ["sip"], {
    rejectUnauthorized: false,
    ...(origin === undefined ? {} : { origin }),
  });
  const status = await new Promise<number>((resolve, reject) => {
    ws.once("open", () => resolve(101));
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.once("error", reject);
  });
  ws.terminate();
  return status;
}

describe("WSS allowedOrigins", () => {
  it("refuses a page from another origin with 403, and lets in a listed one and a client that names none", async () => {
    const allowedOrigins = ["https://phone.example.com", "HTTPS://Softphone.Example.com:443/"];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, allowedOrigins }));
    expect(await upgrade(sipedge.wss, "https://evil.example.net")).toBe(403);
    // Same host, another port: another origin (RFC 6454 §5).
    expect(await upgrade(sipedge.wss, "https://phone.example.com:8443")).toBe(403);
    expect(await upgrade(sipedge.wss, "https://phone.example.com")).toBe(101);
    // Written in the config with capitals, the default port and a slash: a browser sends it bare.
    expect(await upgrade(sipedge.wss, "https://softphone.example.com")).toBe(101);
    expect(await upgrade(sipedge.wss, undefined)).toBe(101);
  });

  it("lets any origin in when none is listed", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true }));
    expect(await upgrade(sipedge.wss, "https://evil.example.net")).toBe(101);
  });
});
