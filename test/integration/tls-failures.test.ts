import { describe, expect, it } from "vitest";
import { type HandshakeFailure, noFailures } from "../../src/transport/handshake-failures.ts";
import { datedCertificate, privatePki, sniPki } from "../helpers/certificates.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { handshake } from "../helpers/s-client.ts";
import { CERT_DIR, perTest, type Running, startSipedge } from "../helpers/sipedge.ts";

// Failed TLS handshakes counted by reason (sipedge_tls_handshake_failures_total), each produced by the
// system's openssl: a client certificate we refuse, and our certificate the client refuses.
const scope = perTest();
const { processes } = scope;

/** The TLS listener's failures by reason, once they add up to `total` (or after 3 s). */
async function failures(sipedge: Running, total: number): Promise<Record<HandshakeFailure, number>> {
  const read = () => sipedge.worker.stats(0).clients.handshakes[0]?.failures ?? noFailures();
  for (let i = 0; i < 60 && Object.values(read()).reduce((n, f) => n + f, 0) < total; i++) await sleep(50);
  return read();
}

describe("TLS handshake failures", () => {
  it("on a clientAuth: require listener: a certificate from a CA it does not trust, and none at all", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()], { clientAuth: "require" }));
    const { other } = privatePki();
    await handshake(processes, sipedge.tls, ["-cert", other.cert, "-key", other.key]);
    await handshake(processes, sipedge.tls, ["-tls1_2"]);
    expect(await failures(sipedge, 2)).toEqual({ ...noFailures(), unknown_ca: 1, no_certificate: 1 });
    // One the listener trusts is no failure.
    const ok = await handshake(processes, sipedge.tls, [
      "-cert",
      `${CERT_DIR}/cert.pem`,
      "-key",
      `${CERT_DIR}/key.pem`,
    ]);
    expect(ok.code).toBe(0);
    expect(sipedge.worker.stats(0).clients.handshakes[0]).toMatchObject({ ok: 1 });
  });

  it("a client certificate past its notAfter, from the CA a server name trusts", async () => {
    const day = 86_400_000;
    const expired = datedCertificate(new Date(Date.now() - 3 * day), new Date(Date.now() - day));
    const { a } = sniPki();
    // The expired certificate is its own CA: a chain that verifies, but for its dates.
    const certificates = [{ ...a, clientAuth: "require", ca: expired.cert }];
    const sipedge = scope.use(await startSipedge([await freePort()], { certificates }));
    const r = await handshake(processes, sipedge.tls, [
      ...["-servername", "a.test", "-tls1_2", "-cert", expired.cert, "-key", expired.key],
    ]);
    expect(r.code).toBe(1);
    expect(await failures(sipedge, 1)).toEqual({ ...noFailures(), expired: 1 });
  });

  it("a client that does not trust our certificate's CA, or finds another name in it", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()]));
    // Verified against no CA that signed it (the test certificate is its own), then against a name it lacks.
    const verify = ["-verify_return_error", "-CAfile", privatePki().ca];
    const unknown = await handshake(processes, sipedge.tls, verify);
    expect(unknown.code).toBe(1);
    const trusted = ["-verify_return_error", "-CAfile", `${CERT_DIR}/cert.pem`];
    const misnamed = await handshake(processes, sipedge.tls, [...trusted, "-verify_hostname", "elsewhere.test"]);
    expect(misnamed.code).toBe(1);
    expect(await failures(sipedge, 2)).toEqual({ ...noFailures(), unknown_ca: 1, name_mismatch: 1 });
  });
});
