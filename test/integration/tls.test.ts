import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ConnectionOptions, connect, type TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
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
