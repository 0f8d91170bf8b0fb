import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../../../src/config/validate.ts";
import { demoCertificate } from "../../../../src/runtime/demo.ts";
import { type ClientListeners, openClientListeners } from "../../../../src/runtime/worker/client-listeners.ts";
import { listenerOptions, streamOptions } from "../../../../src/runtime/worker/stream-options.ts";
import { TlsIdentity } from "../../../../src/runtime/worker/tls-identity.ts";
import type { Flow } from "../../../../src/transport/flow.ts";
import { noFailures } from "../../../../src/transport/handshake-failures.ts";
import { type ListenerAdmission, noRefusals } from "../../../../src/transport/listener.ts";
import { BufferPool } from "../../../../src/transport/pool.ts";
import { firstTicketKeys } from "../../../../src/transport/ticket-keys.ts";
import { unwrapConfig } from "../../../helpers/config.ts";
import { sleep } from "../../../helpers/net.ts";
import { CERT_DIR } from "../../../helpers/sipedge.ts";

let clients: ClientListeners | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const u of clients?.udp ?? []) u.close();
  await Promise.all(clients?.streams.map((s) => s.close()) ?? []);
  clients = undefined;
});

/** A UDP, a TCP and a TLS listener on 127.0.0.1, admitting everyone. */
async function open(): Promise<ClientListeners> {
  const config = unwrapConfig(
    validateConfig({
      listen: [
        { transport: "udp", address: "127.0.0.1", port: 0 },
        { transport: "tcp", address: "127.0.0.1", port: 0 },
        { transport: "tls", address: "127.0.0.1", port: 0, ...demoCertificate(CERT_DIR) },
      ],
      backends: [{ name: "core", members: [{ name: "pbx", uri: "sip:127.0.0.1:5070" }] }],
    }),
  );
  const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: config.sip.maxMessageSize });
  const admission: ListenerAdmission = {
    gate: { enter: () => undefined, leave: () => {}, trusted: () => false },
    maxHandshakes: 10,
    refused: noRefusals(),
    handshakeRation: undefined,
  };
  clients = await openClientListeners({
    identify: () => undefined,
    config,
    reusePort: false,
    listening: listenerOptions(config, streamOptions(config, { pool, counters: { slowReaders: 0, slowSenders: 0 } })),
    admission,
    tls: new TlsIdentity(config, firstTicketKeys()),
    pool,
    onMessage: () => {},
  });
  return clients;
}

function tcp(port: number): Promise<Socket> {
  const s = connect({ host: "127.0.0.1", port });
  sockets.push(s);
  return new Promise((resolve) => s.once("connect", () => resolve(s)));
}

function tls(port: number): Promise<Socket> {
  const s = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false });
  sockets.push(s);
  return new Promise((resolve) => s.once("secureConnect", () => resolve(s)));
}

describe("ClientListeners.stats", () => {
  it("counts connections, flows by transport, handshakes under way, paused and per-trunk connections", async () => {
    const c = await open();
    const [tcpPort, tlsPort] = c.streams.map((s) => s.port) as [number, number];
    const trunk = await tcp(tcpPort);
    await tcp(tcpPort);
    await tls(tlsPort);
    // A TCP connection to the TLS port that never says hello: a handshake under way, not yet a flow.
    await tcp(tlsPort);
    while (c.streams.reduce((n, s) => n + s.connectionCount, 0) < 3 || c.streams[1]?.handshaking !== 1) await sleep(10);
    const trunkOf = (f: Flow) => (f.remotePort === trunk.localPort ? "carrier" : undefined);
    expect(c.stats(trunkOf)).toMatchObject({
      connections: 3,
      handshaking: 1,
      paused: 0,
      flows: { tcp: 2, tls: 1 },
      trunkConnections: { carrier: 1 },
    });
    // Shedding pauses the new connections it is not told to keep: the trunk's is kept.
    for (const s of c.streams) s.shed((f) => trunkOf(f) !== undefined);
    expect(c.stats(trunkOf).paused).toBe(2);
  });

  it("gives each TLS listener's handshake figures, none for TCP or UDP", async () => {
    const c = await open();
    expect(c.stats(() => undefined).handshakes).toMatchObject([{ ok: 0, resumed: 0, failures: noFailures() }]);
    await tls(c.streams[1]?.port as number);
    while ((c.tls.get(2)?.handshakes?.all()[0]?.ok ?? 0) < 1) await sleep(10);
    expect(c.stats(() => undefined).handshakes).toMatchObject([{ ok: 1, resumed: 0, failures: noFailures() }]);
  });
});
