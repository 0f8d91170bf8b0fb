import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sniPki } from "../helpers/certificates.ts";
import { freePort } from "../helpers/net.ts";
import { handshake, renegotiate } from "../helpers/s-client.ts";
import { perTest, startSipedge } from "../helpers/sipedge.ts";

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
