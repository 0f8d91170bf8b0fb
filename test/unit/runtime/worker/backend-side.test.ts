import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PoolDispatcher } from "../../../../src/balance/dispatcher.ts";
import type { Config } from "../../../../src/config/schema.ts";
import { validateConfig } from "../../../../src/config/validate.ts";
import { demoCertificate } from "../../../../src/runtime/demo.ts";
import { BACKEND_PORTS } from "../../../../src/runtime/shared-memory.ts";
import { BackendSide } from "../../../../src/runtime/worker/backend-side.ts";
import { reloadable } from "../../../../src/runtime/worker/reloadable.ts";
import { listenerOptions, streamOptions } from "../../../../src/runtime/worker/stream-options.ts";
import { TlsIdentity } from "../../../../src/runtime/worker/tls-identity.ts";
import { noRefusals } from "../../../../src/transport/listener.ts";
import { BufferPool } from "../../../../src/transport/pool.ts";
import { firstTicketKeys } from "../../../../src/transport/ticket-keys.ts";
import { unwrapConfig } from "../../../helpers/config.ts";
import { sleep } from "../../../helpers/net.ts";
import { CERT_DIR } from "../../../helpers/sipedge.ts";

const opened: BackendSide[] = [];

afterEach(async () => {
  for (const side of opened.splice(0)) await side.close();
});

function configWith(backend: "udp" | "tls", tlsListener: boolean): Config {
  const cert = demoCertificate(CERT_DIR);
  return unwrapConfig(
    validateConfig({
      listen: [
        { transport: "udp", address: "127.0.0.1", port: 0 },
        ...(tlsListener ? [{ transport: "tls", address: "127.0.0.1", port: 0, ...cert }] : []),
      ],
      backends: [{ name: "core", members: [{ name: "pbx", uri: `sip:127.0.0.1:5070;transport=${backend}` }] }],
    }),
  );
}

async function open(config: Config, index = 0, backendPorts?: Int32Array): Promise<BackendSide> {
  const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: config.sip.maxMessageSize });
  const streams = streamOptions(config, { pool, counters: { slowReaders: 0, slowSenders: 0 } });
  const settings = reloadable(config, 1);
  const side = await BackendSide.open({
    config,
    threading: { index, backendPorts },
    streams,
    listening: listenerOptions(config, streams),
    tls: new TlsIdentity(config, firstTicketKeys()),
    dispatcher: new PoolDispatcher(settings.backends, settings.passiveHealth),
    refused: noRefusals(),
    onMessage: () => {},
    onClosed: () => {},
  });
  opened.push(side);
  return side;
}

describe("BackendSide", () => {
  it("listens over TLS only when a backend is reached over TLS", async () => {
    const udpOnly = await open(configWith("udp", true));
    expect(udpOnly.tls).toBeUndefined();
    expect(udpOnly.port("tls")).toBe(0);
    expect(udpOnly.listeners).toEqual([udpOnly.tcp]);
    const tls = await open(configWith("tls", true));
    expect(tls.port("tls")).toBe(tls.tls?.port);
    expect(tls.port("tls")).toBeGreaterThan(0);
    expect(tls.port("udp")).toBe(tls.udp.port);
    expect(tls.port("tcp")).toBe(tls.tcp.port);
  });

  it("refuses a TLS backend when no TLS listener holds the certificate to show it", async () => {
    await expect(open(configWith("tls", false))).rejects.toThrow(
      "backend pbx: a TLS backend needs a tls listener, whose certificate sipedge presents",
    );
  });

  it("publishes its ports for the other workers, and owns theirs too", async () => {
    const ports = new Int32Array(2 * BACKEND_PORTS);
    Atomics.store(ports, 0, 40_001); // worker 0's UDP port, as worker 0 would write it
    const side = await open(configWith("tls", true), 1, ports);
    expect([...ports.subarray(BACKEND_PORTS)]).toEqual([side.udp.port, side.tcp.port, side.port("tls")]);
    expect(side.owns(side.tcp.port)).toBe(true);
    expect(side.owns(40_001)).toBe(true);
    expect(side.owns(40_002)).toBe(false);
    expect(side.owns(0)).toBe(false);
    expect(side.owns(undefined)).toBe(false);
  });
});

describe("BackendSide.stats", () => {
  it("counts the connections backends opened to its listeners", async () => {
    const side = await open(configWith("udp", false));
    expect(side.stats()).toEqual({ connections: 0 });
    // A member's address (127.0.0.1): the backend gate lets it in.
    const sockets = [
      connect({ host: "127.0.0.1", port: side.tcp.port }),
      connect({ host: "127.0.0.1", port: side.tcp.port }),
    ];
    try {
      while (side.tcp.connectionCount < 2) await sleep(10);
      expect(side.stats()).toEqual({ connections: 2 });
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
