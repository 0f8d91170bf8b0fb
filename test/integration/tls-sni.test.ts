import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { privatePki, sniPki, trunkPki } from "../helpers/certificates.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { handshake, holdOpen, renegotiate } from "../helpers/s-client.ts";
import { perTest, type Running, startSipedge } from "../helpers/sipedge.ts";

// Several certificates per TLS and WSS listener, chosen by the server name
// the client asks for (SNI, RFC 6066 §3), as the system's openssl meets them.
const scope = perTest();
const { processes } = scope;
const pki = sniPki();

/** The CN of the certificate a handshake with these s_client options was shown ("sipedge-demo": the default). */
async function shown(port: number, args: readonly string[] = []): Promise<string | undefined> {
  const r = await handshake(processes, port, args);
  return /^Peer certificate: .*CN = ([^,\n]+)/m.exec(r.out)?.[1];
}

describe("SNI", () => {
  it("shows each name its certificate, a wildcard for one label, and the default for no name or another, on TLS and WSS", async () => {
    const certificates = [
      { cert: pki.a.cert, key: pki.a.key },
      { cert: pki.b.cert, key: pki.b.key, names: ["b.test", "B2.test."] },
      { cert: pki.wildcard.cert, key: pki.wildcard.key },
    ];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      expect(await shown(port, ["-servername", "a.test"])).toBe("a.test");
      expect(await shown(port, ["-servername", "b.test"])).toBe("b.test");
      expect(await shown(port, ["-servername", "b2.test"])).toBe("b.test");
      expect(await shown(port, ["-servername", "x.w.test"])).toBe("*.w.test");
      // One label only: neither the parent nor a name two labels down.
      expect(await shown(port, ["-servername", "w.test"])).toBe("sipedge-demo");
      expect(await shown(port, ["-servername", "y.x.w.test"])).toBe("sipedge-demo");
      expect(await shown(port, ["-servername", "c.test"])).toBe("sipedge-demo");
      expect(await shown(port, ["-noservername"])).toBe("sipedge-demo");
    }
  });

  it("keeps the hardened defaults for a name's certificate: no CBC suite, no renegotiation", async () => {
    const certificates = [{ cert: pki.a.cert, key: pki.a.key }];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      const cbc = await handshake(processes, port, [
        "-servername",
        "a.test",
        "-cipher",
        "ECDHE-ECDSA-AES128-SHA",
        "-tls1_2",
      ]);
      expect(cbc.code).toBe(1);
      const r = await renegotiate(processes, port, ["-servername", "a.test"]);
      expect(r.out).toMatch(/^Peer certificate: CN = a\.test$/m);
      expect(r.out).toMatch(/no renegotiation/);
    }
  });

  it("sends the chain a certificate file holds: a client that knows only the root CA verifies the leaf", async () => {
    const certificates = [{ cert: pki.a.cert, key: pki.a.key }];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      const r = await handshake(processes, port, ["-servername", "a.test", "-CAfile", pki.ca]);
      expect(r.out).toMatch(/^Peer certificate: CN = a\.test$/m);
      expect(r.out).toMatch(/^Verification: OK$/m);
    }
  });

  it("shows a name's new certificate after a reload, the other names theirs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipedge-sni-live-"));
    const live = { cert: join(dir, "a.pem"), key: join(dir, "a.key") };
    copyFileSync(pki.a.cert, live.cert);
    copyFileSync(pki.a.key, live.key);
    const certificates = [live, { cert: pki.b.cert, key: pki.b.key }];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) expect(await shown(port, ["-servername", "a.test"])).toBe("a.test");
    copyFileSync(pki.aRenewed.cert, live.cert);
    copyFileSync(pki.aRenewed.key, live.key);
    sipedge.worker.reconfigure(sipedge.config);
    for (const port of [sipedge.tls, sipedge.wss]) {
      expect(await shown(port, ["-servername", "a.test"])).toBe("a.test renewed");
      expect(await shown(port, ["-servername", "b.test"])).toBe("b.test");
      expect(await shown(port)).toBe("sipedge-demo");
    }
  });
});

describe("client certificates by server name", () => {
  const trunks = trunkPki();
  const { other } = privatePki();
  /** a.test requires a certificate from the trunks' CA; b.test and no name keep the listener's rules (none asked). */
  const certificates = [
    { cert: pki.a.cert, key: pki.a.key, clientAuth: "require", ca: trunks.ca },
    { cert: pki.b.cert, key: pki.b.key },
  ];

  /** Handshakes that failed on a listener, by reason (once `total` of them were counted, or after 3 s). */
  async function failed(sipedge: Running, listener: number, total: number): Promise<Record<string, number>> {
    const read = () => sipedge.worker.stats(0).clients.handshakes.filter((h) => h.listener.endsWith(`:${listener}`));
    const sum = () => read().reduce((n, h) => n + Object.values(h.failures).reduce((a, b) => a + b, 0), 0);
    for (let i = 0; i < 60 && sum() < total; i++) await sleep(50);
    const by: Record<string, number> = {};
    for (const h of read()) for (const [reason, n] of Object.entries(h.failures)) if (n > 0) by[reason] = n;
    return by;
  }

  it("asks for a certificate only for the name that requires one, checked against that name's CA, on TLS and WSS", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      const a = ["-servername", "a.test", "-tls1_2"];
      expect((await handshake(processes, port, a)).code, "a.test without a certificate").toBe(1);
      expect((await handshake(processes, port, [...a, "-cert", other.cert, "-key", other.key])).code).toBe(1);
      const trunk = await handshake(processes, port, [...a, "-cert", trunks.a.cert, "-key", trunks.a.key]);
      expect(trunk.code, trunk.out).toBe(0);
      expect(trunk.out).toMatch(/^Peer certificate: CN = a\.test$/m);
      // The other name, and none at all: the listener's own rules, no certificate asked for.
      expect((await handshake(processes, port, ["-servername", "b.test", "-tls1_2"])).code).toBe(0);
      expect((await handshake(processes, port, ["-tls1_2"])).code).toBe(0);
      expect(await failed(sipedge, port, 2)).toEqual({ no_certificate: 1, unknown_ca: 1 });
    }
  });

  it("does not resume a session made under a name that asks for nothing when it is offered for one that requires a certificate", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()], { certificates }));
    const dir = mkdtempSync(join(tmpdir(), "sipedge-sni-sessions-"));
    for (const version of ["-tls1_2", "-tls1_3"]) {
      const session = join(dir, `b${version}.pem`);
      const made = await holdOpen(processes, sipedge.tls, [version, "-servername", "b.test", "-sess_out", session]);
      await sleep(300); // a TLS 1.3 ticket comes after the handshake
      await made.end();
      // The session is good: offered for its own name, it resumes.
      const same = await holdOpen(processes, sipedge.tls, [version, "-servername", "b.test", "-sess_in", session]);
      await same.end();
      expect(same.reused, same.out()).toBe(true);
      const strict = await holdOpen(processes, sipedge.tls, [version, "-servername", "a.test", "-sess_in", session]);
      await sleep(300);
      await strict.end();
      expect(strict.reused, strict.out()).toBe(false);
    }
    // Each offer to a.test became a full handshake, and was refused for want of a certificate.
    expect(await failed(sipedge, sipedge.tls, 2)).toEqual({ no_certificate: 2 });
  });
});
