import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { demoCertificate } from "../../../src/runtime/demo.ts";
import { type Flow, secondsNow } from "../../../src/transport/flow.ts";
import {
  admissionStats,
  type ListenerAdmission,
  NEW_CONNECTION_SECONDS,
  noRefusals,
} from "../../../src/transport/listener.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { StreamListener } from "../../../src/transport/stream.ts";
import { firstTicketKeys, SessionTickets } from "../../../src/transport/ticket-keys.ts";
import { sleep } from "../../helpers/net.ts";
import { CERT_DIR } from "../../helpers/sipedge.ts";
import { loopbackListener } from "../../helpers/stream-listener.ts";

const OPTIONS =
  "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKshed\r\nFrom: <sip:a@b>;tag=1\r\n" +
  "To: <sip:c@d>\r\nCall-ID: shed\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

let listener: StreamListener | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await listener?.close();
});

function admission(trusted = false): ListenerAdmission {
  return {
    gate: { enter: () => undefined, leave: () => {}, trusted: () => trusted },
    maxHandshakes: 10,
    refused: noRefusals(),
    handshakeRation: undefined,
  };
}

const streamOptions = loopbackListener;

async function setup(): Promise<{ admission: ListenerAdmission; got: Map<number, number>; clients: Socket[] }> {
  const a = admission();
  const got = new Map<number, number>();
  const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
  const l = await StreamListener.listen({ ...streamOptions(pool), admission: a }, (_bytes, flow: Flow) =>
    got.set(flow.remotePort, (got.get(flow.remotePort) ?? 0) + 1),
  );
  listener = l;
  const clients: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = connect({ host: "127.0.0.1", port: l.port });
    await new Promise((r) => s.once("connect", r));
    sockets.push(s);
    clients.push(s);
  }
  while (l.connectionCount < 3) await sleep(10);
  return { admission: a, got, clients };
}

describe("shedding connections while buffers are critically low", () => {
  it("stops reading the new connections it is not told to keep, and reads them again afterwards", async () => {
    const { got, clients } = await setup();
    const l = listener as StreamListener;
    const kept = clients[1]?.localPort;
    l.shed((c) => c.remotePort === kept);
    expect(l.paused).toBe(2);
    for (const c of clients) c.write(OPTIONS);
    await sleep(300);
    expect([...got.keys()]).toEqual([kept]);
    l.unshed();
    expect(l.paused).toBe(0);
    await sleep(300);
    expect(clients.map((c) => got.get(c.localPort ?? 0))).toEqual([1, 1, 1]);
  });

  it("keeps reading connections older than the new ones", async () => {
    await setup();
    const l = listener as StreamListener;
    l.shed(() => false, secondsNow() + NEW_CONNECTION_SECONDS);
    expect(l.paused).toBe(0);
  });

  it("refuses new connections at the door until buffers return, counted by reason in admissionStats", async () => {
    const { admission } = await setup();
    const l = listener as StreamListener;
    l.shed(() => false);
    const late = connect({ host: "127.0.0.1", port: l.port });
    late.on("error", () => {}); // reset at the door
    sockets.push(late);
    await new Promise((r) => late.once("close", r));
    expect(admission.refused.pool).toBe(1);
    const refused = admissionStats(admission).refused;
    expect(refused).toEqual({
      limit: 0,
      per_ip: 0,
      stranger: 0,
      handshakes: 0,
      pool: 1,
      load: 0,
      unknown_client: 0,
      certificate_required: 0,
    });
    expect(l.connectionCount).toBe(3);
    l.unshed();
    const after = connect({ host: "127.0.0.1", port: l.port });
    sockets.push(after);
    await new Promise((r) => after.once("connect", r));
    while (l.connectionCount < 4) await sleep(10);
    expect(admission.refused.pool).toBe(1);
    // A scrape's figures are a copy: what is refused later is the next scrape's.
    admission.refused.pool++;
    expect(refused.pool).toBe(1);
  });

  it("lets a saturated worker begin only its ration of TLS handshakes, refusing the rest at the door", async () => {
    const a = admission();
    a.handshakeRation = 1;
    const handshake = await tlsListener(a);
    expect(await handshake()).toBe(true);
    expect(await handshake()).toBe(false);
    expect(a.refused.load).toBe(1);
    a.handshakeRation = undefined; // the loop has room again
    expect(await handshake()).toBe(true);
  });

  it("still lets a trusted trunk's source in while shedding or rationing", async () => {
    const a = admission(true);
    a.handshakeRation = 0;
    const handshake = await tlsListener(a);
    listener?.shed(() => false);
    expect(await handshake()).toBe(true);
    expect(a.refused).toEqual(noRefusals());
  });
});

/** A TLS listener admitting by `a`; resolves with a function that says whether one more handshake completes. */
async function tlsListener(a: ListenerAdmission): Promise<() => Promise<boolean>> {
  const cert = demoCertificate(CERT_DIR);
  const l = await StreamListener.listen(
    {
      ...streamOptions(new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 })),
      admission: a,
      tls: {
        options: { cert: readFileSync(cert.cert), key: readFileSync(cert.key) },
        named: [],
        tickets: new SessionTickets(firstTicketKeys()),
      },
    },
    () => {},
  );
  listener = l;
  return () =>
    new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: "127.0.0.1", port: l.port, rejectUnauthorized: false });
      sockets.push(s);
      s.once("secureConnect", () => resolve(true));
      s.once("error", () => resolve(false));
      s.once("close", () => resolve(false));
    });
}
