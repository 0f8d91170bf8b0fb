import { TLSSocket, connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConnectionListener } from "../../../src/transport/listener.ts";
import type { NamedServerTls } from "../../../src/transport/server-names.ts";
import { selfSignedCertificate } from "../../helpers/certificates.ts";
import { loopbackTlsListener, tlsOptions } from "../../helpers/stream-listener.ts";

// Each handshake is counted under the key type of the certificate it was shown. Asking the
// socket which one (getX509Certificate) copies the certificate into C memory that lives until
// V8 collects it; a listener whose certificates all share one key type knows the answer.

const listeners: ConnectionListener[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "sipedge-rsa");

async function listener(named: readonly NamedServerTls[] = []): Promise<ConnectionListener> {
  const l = await loopbackTlsListener({ named });
  listeners.push(l);
  return l;
}

/** A full handshake asking for `servername`; resolves once the listener has counted it. */
async function handshake(l: ConnectionListener, servername = "sipedge.test"): Promise<void> {
  const before = counted(l);
  const s = tlsConnect({ host: "127.0.0.1", port: l.port, servername, rejectUnauthorized: false });
  await new Promise((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
  for (let i = 0; i < 40 && counted(l) === before; i++) await new Promise((r) => setTimeout(r, 25));
  s.destroy();
}

const counted = (l: ConnectionListener) => (l.handshakes?.all() ?? []).reduce((n, h) => n + h.ok, 0);
const byKeyType = (l: ConnectionListener) =>
  Object.fromEntries((l.handshakes?.all() ?? []).filter((h) => h.ok > 0).map((h) => [h.keyType, h.ok]));

describe("the key type a TLS handshake is counted under", () => {
  it("is the listener's own when all its certificates share it: no handshake's certificate is copied", async () => {
    const asked = vi.spyOn(TLSSocket.prototype, "getX509Certificate");
    const l = await listener();
    for (let i = 0; i < 3; i++) await handshake(l);
    expect(byKeyType(l)).toEqual({ ec: 3 });
    expect(asked).not.toHaveBeenCalled();
  });

  it("follows a reload to certificates of another key type", async () => {
    const l = await listener();
    await handshake(l);
    l.setSecureContext(tlsOptions(rsa));
    await handshake(l);
    expect(byKeyType(l)).toEqual({ ec: 1, rsa: 1 });
  });

  it("is asked of each handshake when a name shows a certificate of another key type", async () => {
    const l = await listener([{ names: ["rsa.test"], options: tlsOptions(rsa) }]);
    await handshake(l, "rsa.test");
    await handshake(l, "ec.test");
    expect(byKeyType(l)).toEqual({ ec: 1, rsa: 1 });
  });
});
