import type { ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import type { SipMessage } from "../../src/sip/index.ts";
import { renewableCertificate } from "../helpers/certificates.ts";
import { startCli } from "../helpers/cli.ts";
import { request, respond } from "../helpers/dialog.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { onSipMessages, udpExchange } from "../helpers/sip-client.ts";

const closing: (() => void)[] = [];

afterAll(() => {
  for (const close of closing) close();
});

const fingerprint = (certFile: string) => new X509Certificate(readFileSync(certFile)).fingerprint256;

/**
 * A SIP backend over TLS that asks for a client certificate and answers
 * every request 200; it notes, per Call-ID, the certificate the connection
 * it came over showed, and the top Via (sipedge's backend-side address).
 */
async function tlsBackend(cert: { cert: string; key: string }) {
  const seen = new Map<string, { client: string | undefined; via: string }>();
  const sockets = new Set<TLSSocket>();
  const server = createServer(
    { cert: readFileSync(cert.cert), key: readFileSync(cert.key), requestCert: true, rejectUnauthorized: false },
    (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      onSipMessages(socket, (m: SipMessage) => {
        if (m.kind !== "request") return;
        const client = socket.getPeerX509Certificate()?.fingerprint256;
        seen.set(m.values("call-id")[0] ?? "", { client, via: m.values("via")[0] ?? "" });
        socket.write(respond(m, 200, "OK"));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closing.push(() => server.close());
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    /** Closes every connection sipedge opened, so that its next request opens a new one. */
    hangUp: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

/** Sends an OPTIONS through sipedge's UDP listener until the backend saw it; what the backend saw. */
async function through(udp: number, backend: Awaited<ReturnType<typeof tlsBackend>>, callId: string) {
  for (let i = 0; i < 20 && !backend.seen.has(callId); i++) {
    const options = request({
      method: "OPTIONS",
      uri: "sip:service@127.0.0.1",
      transport: "UDP",
      localPort: 5099,
      callId,
      cseq: 1 + i,
      branch: `${callId}-${i}`,
    });
    await udpExchange(udp, options, 250);
  }
  const seen = backend.seen.get(callId);
  expect(seen, `the backend never saw ${callId}`).toBeDefined();
  return seen as { client: string | undefined; via: string };
}

/** SIGHUP, and its answer in sipedge's log (stderr). */
async function reload(child: ChildProcess, log: () => string) {
  child.kill("SIGHUP");
  for (let i = 0; i < 100 && !log().includes("reload.ok"); i++) await sleep(20);
  expect(log()).toContain("reload.ok");
}

/** The certificate the TLS listener at port presents to a new handshake. */
function presented(port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()?.fingerprint256);
      s.destroy();
    });
    s.once("error", reject);
  });
}

describe("SIGHUP after a certificate renewal, towards TLS backends", () => {
  it("the backend-side listener and the links to backends show the new certificate", async () => {
    const { dir, one, two, live, renew } = renewableCertificate();
    const backend = await tlsBackend(demoCertificate(join(dir, "pbx")));
    const [udp, tls] = [await freePort(), await freePort()];
    const config = join(dir, "sipedge.yaml");
    writeFileSync(
      config,
      [
        "io: { threads: 1, pin: false }",
        "listen:",
        `  - { transport: udp, address: 127.0.0.1, port: ${udp} }`,
        `  - { transport: tls, address: 127.0.0.1, port: ${tls}, cert: ${live.cert}, key: ${live.key} }`,
        "backends:",
        "  - name: core",
        "    members:",
        `      - { name: pbx, uri: "sip:127.0.0.1:${backend.port};transport=tls" }`,
        "health: { interval: 1s, timeout: 900ms, downAfter: 5, upAfter: 1 }",
        "sip: { backendTls: { verify: false } }",
      ].join("\n"),
    );
    const { child, err } = await startCli(config);

    const before = await through(udp, backend, `before-${Date.now()}`);
    expect(before.client).toBe(fingerprint(one.cert));
    // RFC 3261 §18.2.2: responses come back to the sent-by of our Via, the backend-side TLS listener.
    const backendSide = Number(/^SIP\/2\.0\/TLS 127\.0\.0\.1:(\d+);/.exec(before.via)?.[1]);
    expect(backendSide).toBeGreaterThan(0);
    expect(await presented(backendSide)).toBe(fingerprint(one.cert));

    renew();
    await reload(child, err);
    const reloaded = Date.now();
    let shown = await presented(backendSide);
    while (shown !== fingerprint(two.cert) && Date.now() - reloaded < 1000) {
      await sleep(50);
      shown = await presented(backendSide);
    }
    expect(shown).toBe(fingerprint(two.cert));
    expect(await presented(tls)).toBe(fingerprint(two.cert));

    // Links up before the reload keep their handshake; the next one sipedge opens shows the new certificate.
    backend.hangUp();
    const after = await through(udp, backend, `after-${Date.now()}`);
    expect(after.client).toBe(fingerprint(two.cert));
  });
});

/**
 * sipedge probing a TLS backend that asks for client certificates, and a
 * dead UDP member, its TLS identity in renewable files; its config is
 * rewritten by `configure` (the TLS listener's files).
 */
async function probing() {
  const certificate = renewableCertificate();
  const { dir, live } = certificate;
  const backend = await tlsBackend(demoCertificate(join(dir, "pbx")));
  const [dead, admin] = [await freePort(), await freePort()];
  const config = join(dir, "sipedge.yaml");
  const configure = (files: { cert: string; key: string }) =>
    writeFileSync(
      config,
      [
        "io: { threads: 1, pin: false }",
        "listen:",
        `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${files.cert}, key: ${files.key} }`,
        "backends:",
        "  - name: core",
        "    members:",
        `      - { name: pbx, uri: "sip:127.0.0.1:${backend.port};transport=tls" }`,
        `      - { name: dead, uri: "sip:127.0.0.1:${dead}" }`,
        `admin: { listen: "127.0.0.1:${admin}" }`,
        "health: { interval: 1s, timeout: 500ms, downAfter: 1, upAfter: 1 }",
        "sip: { backendTls: { verify: false } }",
      ].join("\n"),
    );
  configure(live);
  const { child, err } = await startCli(config);
  const status = async () =>
    (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as {
      restarts: number;
      backends: { name: string; state: string; transitions: number }[];
    };
  /** Each backend's state and transitions. */
  const backends = async () =>
    Object.fromEntries((await status()).backends.map((b) => [b.name, [b.state, b.transitions]]));
  /** The client certificate of the first probe the backend sees from now on, and how long it took. */
  const nextProbe = async () => {
    const before = new Set(backend.seen.keys());
    const since = Date.now();
    for (;;) {
      const probe = [...backend.seen.keys()].find((id) => id.startsWith("probe-") && !before.has(id));
      if (probe !== undefined) return { client: backend.seen.get(probe)?.client, after: Date.now() - since };
      expect(Date.now() - since, "no probe reached the backend").toBeLessThan(3000);
      await sleep(20);
    }
  };
  expect((await nextProbe()).client).toBe(fingerprint(certificate.one.cert));
  let settled = await backends();
  for (let i = 0; i < 100 && settled.dead?.[0] !== "down"; i++) {
    await sleep(50);
    settled = await backends();
  }
  expect(settled).toEqual({ pbx: ["up", 0], dead: ["down", 1] });
  return { certificate, backend, child, err, configure, status, backends, settled, nextProbe };
}

describe("SIGHUP after a certificate renewal, the health thread's probes", () => {
  it("show the new client certificate from the next probe on, and no backend changes state", async () => {
    const { certificate, backend, child, err, backends, settled, nextProbe } = await probing();
    certificate.renew();
    await reload(child, err);
    // Its connection from before the reload is gone: whatever probes next must connect anew.
    backend.hangUp();
    const probe = await nextProbe();
    expect(probe.client).toBe(fingerprint(certificate.two.cert));
    // The next probe, within an interval (and a loaded machine's slack).
    expect(probe.after).toBeLessThan(1000 + 500);
    expect(await backends()).toEqual(settled);
  });

  it("keep the last good certificate when a reload's files cannot be read", async () => {
    const { certificate, backend, child, err, configure, status, backends, settled, nextProbe } = await probing();
    configure({ cert: join(certificate.dir, "gone.pem"), key: certificate.live.key });
    await reload(child, err);
    expect(err()).toContain("health: probes keep the previous TLS files");
    backend.hangUp();
    expect((await nextProbe()).client).toBe(fingerprint(certificate.one.cert));
    // A health thread that read the files itself would fail at every start, restarted over and over.
    await sleep(1000);
    expect((await status()).restarts).toBe(0);
    expect(await backends()).toEqual(settled);
  });
});
