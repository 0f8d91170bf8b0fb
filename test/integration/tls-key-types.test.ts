import { describe, expect, it } from "vitest";
import { selfSignedCertificate } from "../helpers/certificates.ts";
import { freePort } from "../helpers/net.ts";
import { handshake } from "../helpers/s-client.ts";
import { perTest, startSipedge } from "../helpers/sipedge.ts";

// An ECDSA and an RSA certificate side by side on one TLS or WSS listener
// (`cert` and `alternative`): OpenSSL shows each client the one its
// signature algorithms (RFC 8446 §4.2.3) or TLS 1.2 suites take, as the
// system's openssl meets them.
const scope = perTest();
const { processes } = scope;
const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "sipedge-rsa");

/** ECDSA only: TLS 1.3 and 1.2 by signature algorithms, TLS 1.2 by suite. */
const ECDSA_ONLY = [
  ["-sigalgs", "ECDSA+SHA256"],
  ["-tls1_2", "-sigalgs", "ECDSA+SHA256"],
  ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
];
const RSA_ONLY = [
  ["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"],
  ["-tls1_2", "-sigalgs", "RSA+SHA256"],
  ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
];

/** The CN of the certificate a handshake with these s_client options was shown; undefined: none (a failed handshake). */
async function shown(port: number, args: readonly string[]): Promise<string | undefined> {
  const r = await handshake(processes, port, args);
  return /^Peer certificate: .*CN = ([^,\n]+)/m.exec(r.out)?.[1];
}

describe("an ECDSA and an RSA certificate on one listener", () => {
  it("shows an ECDSA-only client the ECDSA one and an RSA-only client the RSA one, on TLS and WSS", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, alternative: rsa }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      for (const args of ECDSA_ONLY) expect(await shown(port, args), args.join(" ")).toBe("sipedge-demo");
      for (const args of RSA_ONLY) expect(await shown(port, args), args.join(" ")).toBe("sipedge-rsa");
    }
    // Each handshake counted under the key type of the certificate it showed.
    const counted = sipedge.worker.stats(0).clients.handshakes.map((h) => [h.listener.split(":")[1], h.keyType, h.ok]);
    for (const port of [sipedge.tls, sipedge.wss])
      expect(counted).toEqual(
        expect.arrayContaining([
          [String(port), "ec", ECDSA_ONLY.length],
          [String(port), "rsa", RSA_ONLY.length],
        ]),
      );
  });

  it("counts a handshake under the key type of the SNI certificate it showed, not the default's", async () => {
    const certificates = [{ cert: rsa.cert, key: rsa.key, names: ["r.test"] }];
    const sipedge = scope.use(await startSipedge([await freePort()], { certificates }));
    expect(await shown(sipedge.tls, ["-servername", "r.test"])).toBe("sipedge-rsa");
    expect(await shown(sipedge.tls, [])).toBe("sipedge-demo");
    const counted = sipedge.worker.stats(0).clients.handshakes.map((h) => [h.keyType, h.ok]);
    expect(counted).toEqual([
      ["ec", 1],
      ["rsa", 1],
    ]);
  });

  it("shows a server name's ECDSA or RSA certificate as the client takes, on TLS and WSS", async () => {
    const ec = selfSignedCertificate(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "sipedge-ec-r");
    const certificates = [{ cert: ec.cert, key: ec.key, names: ["r.test"], alternative: rsa }];
    const sipedge = scope.use(await startSipedge([await freePort()], { wss: true, certificates }));
    for (const port of [sipedge.tls, sipedge.wss]) {
      for (const args of ECDSA_ONLY) expect(await shown(port, ["-servername", "r.test", ...args])).toBe("sipedge-ec-r");
      for (const args of RSA_ONLY) expect(await shown(port, ["-servername", "r.test", ...args])).toBe("sipedge-rsa");
      // The listener's own default holds no RSA certificate: an RSA-only client asking for no name is refused.
      expect(await shown(port, RSA_ONLY[0] as string[])).toBeUndefined();
    }
  });

  it("without an alternative, refuses an RSA-only client: one certificate, one key type", async () => {
    const sipedge = scope.use(await startSipedge([await freePort()]));
    expect(await shown(sipedge.tls, RSA_ONLY[0] as string[])).toBeUndefined();
    expect(await shown(sipedge.tls, ECDSA_ONLY[0] as string[])).toBe("sipedge-demo");
  });
});
