import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import type { Config, Trunk } from "../../src/config/schema.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { IoWorker } from "../../src/runtime/worker.ts";
import { type CertificateFiles, type TrunkPki, trunkPki } from "../helpers/certificates.ts";
import { unwrapConfig } from "../helpers/config.ts";
import { Processes, sleep } from "../helpers/net.ts";
import { handshake, holdOpen } from "../helpers/s-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";

// Mutual TLS as identity (issue 18): a client connection is its certificate's trunk, decided at the
// handshake; nothing it writes in a message, nor the address it comes from, makes it another's.
// Client certificates from the system's openssl (s_client) and Node's TLS client sending SIP.
const processes = new Processes();
let worker: IoWorker | undefined;

afterEach(async () => {
  await worker?.close();
  worker = undefined;
});

interface Started {
  readonly worker: IoWorker;
  readonly config: Config;
  readonly tls: number;
  readonly tcp: number;
}

/** One IO worker: a TCP listener and a TLS one asking for client certificates of `pki`'s CA. */
async function start(pki: TrunkPki, trunks: unknown[], tls: Record<string, unknown> = {}): Promise<Started> {
  const server = demoCertificate(CERT_DIR);
  const config = unwrapConfig(
    validateConfig({
      listen: [
        { transport: "tcp", address: "127.0.0.1", port: 0 },
        {
          ...{ transport: "tls", address: "127.0.0.1", port: 0, cert: server.cert, key: server.key },
          ...{ ca: pki.ca, clientAuth: "request", ...tls },
        },
      ],
      backends: [{ name: "core", members: [{ name: "pbx", uri: "sip:127.0.0.1:9;transport=udp" }] }],
      trunks,
    }),
  );
  worker = await IoWorker.start(config);
  const port = (t: string) => worker?.listeners.find((l) => l.transport === t)?.port ?? 0;
  return { worker, config, tls: port("tls"), tcp: port("tcp") };
}

/** A TLS connection showing `cert` (none: no client certificate). */
async function tlsClient(port: number, cert?: CertificateFiles): Promise<TLSSocket> {
  const socket = connect({
    host: "127.0.0.1",
    port,
    ...(cert === undefined ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }),
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  return socket;
}

/** Resolves with the first bytes the peer sends, or "closed" once it closes without any (3 s at most). */
function reply(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once("data", (d: Buffer) => resolve(d.toString("latin1")));
    socket.once("close", () => resolve("closed"));
    setTimeout(() => resolve("timeout"), 3000).unref();
  });
}

/** An OPTIONS claiming trunk B sent on `socket`, and what came back. */
function keepalive(socket: Socket, port: number, tag: string): Promise<string> {
  socket.write(claimingB("OPTIONS", port, tag));
  return reply(socket);
}

/** A request to sipedge itself claiming, in every header a peer writes, to come from carrier-b. */
function claimingB(method: "OPTIONS" | "INVITE", port: number, tag: string): string {
  return (
    `${method} sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK-${tag}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:carrier-b@b.trunk.test>;tag=${tag}\r\nTo: <sip:127.0.0.1:${port}>\r\n` +
    "P-Asserted-Identity: <sip:carrier-b@b.trunk.test>\r\nX-Trunk: carrier-b\r\n" +
    `Call-ID: ${tag}\r\nCSeq: 1 ${method}\r\nContact: <sip:b.trunk.test>\r\nContent-Length: 0\r\n\r\n`
  );
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 60 && !done(); i++) await sleep(50);
}

describe("a TLS connection bound to its certificate's trunk", () => {
  it("counts trunk A's certificate as trunk A, never as B: not by B's source address, nor by what it writes", async () => {
    const pki = trunkPki();
    // carrier-b is known by this address and comes first: on the old first-match order every
    // connection from 127.0.0.1, carrier-a's certificate or not, was carrier-b's.
    const s = await start(pki, [
      { name: "carrier-b", sources: ["127.0.0.1/32"], certNames: ["b.trunk.test"] },
      { name: "carrier-a", certNames: ["a.trunk.test"] },
    ]);
    const a = await tlsClient(s.tls, pki.a);
    try {
      expect(await keepalive(a, s.tls, "ka-a")).toMatch(/^SIP\/2\.0 200 /);
      a.write(claimingB("INVITE", s.tls, "call-a"));
      await until(() => (s.worker.stats(0).proxy.counters.trunks["carrier-a"]?.calls ?? 0) > 0);
      const stats = s.worker.stats(0);
      expect(stats.proxy.counters.trunks["carrier-a"]).toMatchObject({ requests: 2, keepalives: 1, calls: 1 });
      expect(stats.proxy.counters.trunks["carrier-b"]).toBeUndefined();
      expect(stats.clients.trunkConnections).toEqual({ "carrier-a": 1 });
    } finally {
      a.destroy();
    }
  });

  it("maps a certificate that names no trunk to none, or refuses it with unknownClient: refuse", async () => {
    const pki = trunkPki();
    const trunks = [{ name: "carrier-a", certNames: ["a.trunk.test"] }];
    const anonymous = await start(pki, trunks);
    const kept = await tlsClient(anonymous.tls, pki.stranger);
    expect(await keepalive(kept, anonymous.tls, "ka-c")).toMatch(/^SIP\/2\.0 200 /);
    expect(anonymous.worker.stats(0).proxy.counters.trunks).toEqual({});
    kept.destroy();
    await anonymous.worker.close();

    const refusing = await start(pki, trunks, { unknownClient: "refuse" });
    const out = await handshake(processes, refusing.tls, ["-cert", pki.stranger.cert, "-key", pki.stranger.key]);
    expect(out.protocol).toBe("TLSv1.3"); // the certificate verified: refused for whom it is, not how it is
    await until(() => refusing.worker.stats(0).admission.refused.unknown_client > 0);
    expect(refusing.worker.stats(0).admission.refused.unknown_client).toBe(1);
    const refused = await tlsClient(refusing.tls, pki.stranger);
    expect(await reply(refused)).toBe("closed");
    // carrier-a's own certificate comes in.
    const a = await tlsClient(refusing.tls, pki.a);
    expect(await keepalive(a, refusing.tls, "ka-a")).toMatch(/^SIP\/2\.0 200 /);
    a.destroy();
    expect(refusing.worker.stats(0).admission.refused.unknown_client).toBe(2);
  });
});

describe("a requireCert trunk", () => {
  it("made so by a reload closes the connections from its address that showed no certificate", async () => {
    const pki = trunkPki();
    const trunk = { name: "carrier-a", sources: ["127.0.0.1/32"], certNames: ["a.trunk.test"] };
    const s = await start(pki, [trunk]);
    const tcp = netConnect({ host: "127.0.0.1", port: s.tcp });
    tcp.on("error", () => {});
    expect(await keepalive(tcp, s.tcp, "ka-before")).toMatch(/^SIP\/2\.0 200 /);
    const a = await tlsClient(s.tls, pki.a);
    const closed = new Promise<string>((resolve) => {
      tcp.once("close", () => resolve("closed"));
      setTimeout(() => resolve("still open"), 5000);
    });
    s.worker.reconfigure({ ...s.config, trunks: [{ ...(s.config.trunks[0] as Trunk), requireCert: true }] });
    expect(await closed).toBe("closed");
    expect(s.worker.stats(0).admission.refused.certificate_required).toBe(1);
    // The trunk's own certificate stays.
    expect(await keepalive(a, s.tls, "ka-a")).toMatch(/^SIP\/2\.0 200 /);
    a.destroy();
  });

  it("refuses a connection from its address without its certificate, over TLS and plain TCP", async () => {
    const pki = trunkPki();
    const s = await start(pki, [
      { name: "carrier-a", sources: ["127.0.0.1/32"], certNames: ["a.trunk.test"], requireCert: true },
    ]);
    const bare = await tlsClient(s.tls);
    expect(await keepalive(bare, s.tls, "ka-bare")).toBe("closed");
    // Another trunk's certificate is no carrier-a's either: a stranger, here kept as no trunk.
    const other = await tlsClient(s.tls, pki.b);
    expect(await keepalive(other, s.tls, "ka-b")).toMatch(/^SIP\/2\.0 200 /);
    other.destroy();
    const tcp = netConnect({ host: "127.0.0.1", port: s.tcp });
    tcp.on("error", () => {});
    expect(await keepalive(tcp, s.tcp, "ka-tcp")).toBe("closed");
    const a = await tlsClient(s.tls, pki.a);
    expect(await keepalive(a, s.tls, "ka-a")).toMatch(/^SIP\/2\.0 200 /);
    a.destroy();
    const stats = s.worker.stats(0);
    expect(stats.admission.refused.certificate_required).toBe(2);
    expect(stats.proxy.counters.trunks["carrier-a"]).toMatchObject({ requests: 1, keepalives: 1 });
  });
});

/** carrier-a's listener requiring client certificates, its CRL in a file that still revokes nothing; `live` is that file. */
async function withRenewableCrl(): Promise<{ pki: TrunkPki; live: string; s: Started }> {
  const pki = trunkPki();
  const live = join(mkdtempSync(join(tmpdir(), "sipedge-crl-")), "crl.pem");
  copyFileSync(pki.crlBefore, live);
  const s = await start(pki, [{ name: "carrier-a", certNames: ["a.trunk.test"] }], {
    clientAuth: "require",
    crl: live,
  });
  return { pki, live, s };
}

describe("a listener's CRL", () => {
  it("refuses a revoked client certificate in the handshake, counted as revoked; one not revoked comes in", async () => {
    const pki = trunkPki();
    const s = await start(pki, [{ name: "carrier-a", certNames: ["a.trunk.test"] }], {
      clientAuth: "require",
      crl: pki.crl,
    });
    const revoked = await handshake(processes, s.tls, ["-cert", pki.revoked.cert, "-key", pki.revoked.key]);
    expect(revoked.protocol).toBe("TLSv1.3"); // TLS 1.3: the client is done before the server checks its certificate
    const failures = () => s.worker.stats(0).clients.handshakes[0]?.failures;
    await until(() => (failures()?.revoked ?? 0) > 0);
    expect(failures()).toMatchObject({ revoked: 1, unknown_ca: 0, other: 0 });
    expect(s.worker.stats(0).clients.handshakes[0]?.ok).toBe(0);
    const a = await tlsClient(s.tls, pki.a);
    expect(await keepalive(a, s.tls, "ka-a")).toMatch(/^SIP\/2\.0 200 /);
    a.destroy();
    expect(s.worker.stats(0).proxy.counters.trunks["carrier-a"]).toMatchObject({ keepalives: 1 });
  });

  it("renewed on SIGHUP: the next handshake is checked against the new one", async () => {
    const { pki, live, s } = await withRenewableCrl();
    const args = ["-cert", pki.revoked.cert, "-key", pki.revoked.key];
    await handshake(processes, s.tls, args);
    const stats = () => s.worker.stats(0).clients.handshakes[0];
    await until(() => (stats()?.ok ?? 0) > 0);
    expect(stats()).toMatchObject({ ok: 1, failures: { revoked: 0 } });
    copyFileSync(pki.crl, live);
    s.worker.reconfigure(s.config);
    await handshake(processes, s.tls, args);
    await until(() => (stats()?.failures.revoked ?? 0) > 0);
    expect(stats()).toMatchObject({ ok: 1, failures: { revoked: 1 } });
  });

  it("a session from before the certificate was revoked does not resume after: its ticket is good for the CRL it was judged by", async () => {
    const { pki, live, s } = await withRenewableCrl();
    const sessionFile = join(mkdtempSync(join(tmpdir(), "sipedge-session-")), "session.pem");
    const args = ["-tls1_2", "-cert", pki.revoked.cert, "-key", pki.revoked.key];
    const first = await holdOpen(processes, s.tls, [...args, "-sess_out", sessionFile]);
    expect(first.reused, first.out()).toBe(false);
    await first.end();
    const stats = () => s.worker.stats(0).clients.handshakes[0];
    await until(() => (stats()?.ok ?? 0) > 0);
    copyFileSync(pki.crl, live);
    s.worker.reconfigure(s.config);
    const again = await holdOpen(processes, s.tls, [...args, "-sess_in", sessionFile]);
    expect(again.reused, again.out()).toBe(false);
    await again.end();
    await until(() => (stats()?.failures.revoked ?? 0) > 0);
    expect(stats()).toMatchObject({ ok: 1, resumed: 0, failures: { revoked: 1 } });
  });
});
