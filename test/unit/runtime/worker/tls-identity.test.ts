import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TlsOptions } from "node:tls";
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../../src/config/validate.ts";
import { TlsIdentity } from "../../../../src/runtime/worker/tls-identity.ts";
import type { ConnectionListener } from "../../../../src/transport/listener.ts";
import { firstTicketKeys } from "../../../../src/transport/ticket-keys.ts";
import { chainPki, renewableCertificate } from "../../../helpers/certificates.ts";
import { unwrapConfig } from "../../../helpers/config.ts";

function configOf(files: ReturnType<typeof renewableCertificate>) {
  const other = files.two;
  return unwrapConfig(
    validateConfig({
      listen: [
        { transport: "udp", address: "127.0.0.1", port: 0 },
        { transport: "tls", address: "127.0.0.1", port: 0, cert: files.live.cert, key: files.live.key },
        { transport: "wss", address: "127.0.0.1", port: 0, cert: other.cert, key: other.key },
      ],
      backends: [{ name: "core", members: [{ name: "pbx", uri: "sip:127.0.0.1:5070;transport=tls" }] }],
      sip: { backendTls: { verify: true, ca: files.one.cert } },
    }),
  );
}

/** A listener that only records the certificates it is given. */
function recording(): ConnectionListener & { readonly given: TlsOptions[] } {
  const given: TlsOptions[] = [];
  return { given, setSecureContext: (o: TlsOptions) => given.push(o) } as unknown as ConnectionListener & {
    readonly given: TlsOptions[];
  };
}

const pem = (path: string) => readFileSync(path);
const pemFiles = (f: { cert: string; key: string }) => ({ cert: pem(f.cert), key: pem(f.key) });

describe("TlsIdentity", () => {
  it("serves each listener its own files, and shows backends the first TLS listener's certificate", () => {
    const files = renewableCertificate();
    const identity = new TlsIdentity(configOf(files), firstTicketKeys());
    expect(identity.clientListener(1).options.cert).toEqual([pem(files.one.cert)]);
    expect(identity.clientListener(2).options.cert).toEqual([pem(files.two.cert)]);
    expect(() => identity.clientListener(0)).toThrow("listen[0] is no TLS listener");
    expect(identity.backendListener?.options.cert).toEqual([pem(files.one.cert)]);
    // Spread, as BackendLinks spreads it into tls.connect.
    expect({ ...identity.backendClient }).toEqual({
      rejectUnauthorized: true,
      ca: pem(files.one.cert),
      cert: pem(files.one.cert),
      key: pem(files.one.key),
    });
  });

  it("has no backend-side certificate without a TLS listener", () => {
    const config = unwrapConfig(
      validateConfig({
        listen: [{ transport: "udp", address: "127.0.0.1", port: 0 }],
        backends: [{ name: "core", members: [{ name: "pbx", uri: "sip:127.0.0.1:5070" }] }],
      }),
    );
    const identity = new TlsIdentity(config, firstTicketKeys());
    expect(identity.backendListener).toBeUndefined();
    expect({ ...identity.backendClient }).toEqual({ rejectUnauthorized: true });
  });

  it("swaps all three on reload: client listeners, the backend-side listener and the backend client", () => {
    const files = renewableCertificate();
    const config = configOf(files);
    const identity = new TlsIdentity(config, firstTicketKeys());
    const [tls, wss, backend] = [recording(), recording(), recording()];
    const clientBefore = identity.backendClient;

    files.renew();
    identity.reload(config, {
      clients: new Map([
        [1, tls],
        [2, wss],
      ]),
      backend,
    });
    expect(tls.given.map((o) => o.cert)).toEqual([[pem(files.two.cert)]]);
    expect(wss.given.map((o) => o.cert)).toEqual([[pem(files.two.cert)]]);
    expect(backend.given.map((o) => o.cert)).toEqual([[pem(files.two.cert)]]);
    expect(identity.backendListener?.options.key).toEqual([pem(files.two.key)]);
    // The object the links were given at start now reads as the new identity.
    expect(clientBefore).toBe(identity.backendClient);
    expect({ ...clientBefore }).toMatchObject({ cert: pem(files.two.cert), key: pem(files.two.key) });
  });

  it("changes nothing when a file of the new config cannot be read", () => {
    const files = renewableCertificate();
    const config = configOf(files);
    const identity = new TlsIdentity(config, firstTicketKeys());
    const [tls, backend] = [recording(), recording()];
    rmSync(files.two.cert);
    expect(() => identity.reload(config, { clients: new Map([[1, tls]]), backend })).toThrow(/ENOENT/);
    expect([tls.given, backend.given]).toEqual([[], []]);
    expect({ ...identity.backendClient }).toMatchObject({ cert: pem(files.one.cert) });
  });

  it("checks a client chain against every CRL of the listener's crl file: node loads one CRL per PEM given, so the file's are given one by one", async () => {
    const pki = chainPki();
    const files = renewableCertificate();
    const dir = mkdtempSync(join(tmpdir(), "sipedge-crls-"));
    // One from each CA of the chain (node checks every certificate of it: X509_V_FLAG_CRL_CHECK_ALL).
    const crl = join(dir, "crl.pem");
    writeFileSync(crl, Buffer.concat([pem(pki.intermediateCrl), pem(pki.rootCrl)]));
    const config = unwrapConfig(
      validateConfig({
        listen: [
          { transport: "udp", address: "127.0.0.1", port: 0 },
          {
            ...{ transport: "tls", address: "127.0.0.1", port: 0, cert: files.live.cert, key: files.live.key },
            ...{ clientAuth: "request", ca: pki.bundle, crl },
          },
        ],
        backends: [{ name: "core", members: [{ name: "pbx", uri: "sip:127.0.0.1:5070" }] }],
      }),
    );
    const server = createServer(new TlsIdentity(config, firstTicketKeys()).clientListener(1).options);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const verdict = new Promise<string>((resolve) =>
        server.once("secureConnection", (s) => resolve(s.authorized ? "authorized" : String(s.authorizationError))),
      );
      const { port } = server.address() as AddressInfo;
      const client = connect({ port, host: "127.0.0.1", rejectUnauthorized: false, ...pemFiles(pki.client) });
      client.on("error", () => {});
      // On main the file's second CRL was never loaded: UNABLE_TO_GET_CRL for the root's.
      expect(await verdict).toBe("authorized");
      client.destroy();
    } finally {
      server.close();
    }
  });
});
