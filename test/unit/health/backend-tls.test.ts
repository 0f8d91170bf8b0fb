import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/validate.ts";
import { backendClientTls } from "../../../src/health/backend-tls.ts";
import { BackendState, HealthTable } from "../../../src/health/state.ts";
import type { HealthInit } from "../../../src/runtime/channel.ts";
import { type PrivatePki, privatePki } from "../../helpers/certificates.ts";
import { unwrapConfig } from "../../helpers/config.ts";
import { sleep } from "../../helpers/net.ts";

const HEALTH_THREAD = new URL("../../../src/runtime/health-thread.ts", import.meta.url);

/** A SIP backend over TLS that answers every OPTIONS 200, and only talks to clients the private CA vouches for. */
async function tlsBackend(pki: PrivatePki) {
  const clients: string[] = [];
  const server: Server = createServer(
    {
      cert: readFileSync(pki.pbx.cert),
      key: readFileSync(pki.pbx.key),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket: TLSSocket) => {
      clients.push(String(socket.getPeerCertificate().subject?.CN));
      let text = "";
      socket.on("error", () => {});
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        for (let end = text.indexOf("\r\n\r\n"); end >= 0; end = text.indexOf("\r\n\r\n")) {
          const request = text.slice(0, end);
          text = text.slice(end + 4);
          const header = (name: string) => new RegExp(`^${name}:.*$`, "mi").exec(request)?.[0] ?? "";
          socket.write(
            `SIP/2.0 200 OK\r\n${header("Via")}\r\n${header("From")}\r\n${header("To")};tag=pbx\r\n` +
              `${header("Call-ID")}\r\n${header("CSeq")}\r\nContent-Length: 0\r\n\r\n`,
          );
        }
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, clients };
}

let cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe("the health thread's probes of a TLS backend", () => {
  it("trust sip.backendTls.ca and show the first TLS listener's certificate, as the IO workers do", async () => {
    const pki = privatePki();
    const backend = await tlsBackend(pki);
    cleanup.push(() => new Promise((resolve) => backend.server.close(resolve)));
    const config = unwrapConfig(
      validateConfig({
        listen: [
          { transport: "udp", address: "127.0.0.1", port: 0 },
          { transport: "tls", address: "127.0.0.1", port: 0, cert: pki.edge.cert, key: pki.edge.key },
        ],
        backends: [{ name: "core", members: [{ name: "pbx", uri: `sip:127.0.0.1:${backend.port};transport=tls` }] }],
        health: { interval: "200ms", timeout: "150ms", downAfter: 2, upAfter: 2 },
        sip: { backendTls: { verify: true, ca: pki.ca } },
      }),
    );
    const table = new HealthTable(["pbx"]);
    const init: HealthInit = {
      config,
      health: table.buffer,
      tls: backendClientTls(config),
      generation: table.generation,
    };
    const health = new Worker(HEALTH_THREAD, { workerData: init });
    cleanup.push(() => health.terminate());

    // Several rounds: time for downAfter failures, had the handshake failed.
    const deadline = Date.now() + 10_000;
    while (table.rttMicros("pbx") === undefined && Date.now() < deadline) await sleep(50);
    await sleep(1000);
    expect(table.rttMicros("pbx")).toBeGreaterThan(0);
    expect(table.state("pbx")).toBe(BackendState.Up);
    expect(backend.clients).toContain("edge");
  });
});
