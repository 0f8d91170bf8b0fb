import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import type { ConnectionListener } from "../../../src/transport/listener.ts";
import { firstTicketKeys, newTicketKey, SessionTickets, type TicketKeys } from "../../../src/transport/ticket-keys.ts";
import { sleep } from "../../helpers/net.ts";
import { loopbackTlsListener, tlsOptions } from "../../helpers/stream-listener.ts";

// Session tickets sealed and opened with keys given from outside (transport/ticket-keys.ts), as every IO
// worker's listeners are: Node's TLS client as the peer, both TLS versions.

const listeners: ConnectionListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

/** A TLS listener whose contexts use `tickets` (as one worker's do). */
async function listener(tickets: SessionTickets): Promise<ConnectionListener> {
  const l = await loopbackTlsListener({ tickets });
  listeners.push(l);
  return l;
}

type Version = "TLSv1.2" | "TLSv1.3";

/** One handshake by Node's client, offering `session`: whether it resumed, and the session the server gave. */
async function connect(
  port: number,
  version: Version,
  session?: Buffer,
): Promise<{ reused: boolean; session: Buffer | undefined }> {
  const s = tlsConnect({
    host: "127.0.0.1",
    port,
    rejectUnauthorized: false,
    minVersion: version,
    maxVersion: version,
    session,
  });
  // TLS 1.3 tickets come after the handshake; a resumed TLS 1.2 session may bring none.
  const ticket = new Promise<Buffer>((resolve) => s.once("session", resolve));
  await new Promise((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
  const reused = s.isSessionReused();
  const next = await Promise.race([ticket, sleep(500).then(() => undefined)]);
  s.destroy();
  return { reused, session: next };
}

/** A session from a first, full handshake. */
async function firstSession(port: number, version: Version): Promise<Buffer> {
  const first = await connect(port, version);
  expect(first.reused).toBe(false);
  if (first.session === undefined) throw new Error("no session ticket");
  return first.session;
}

const rotated = (keys: TicketKeys): TicketKeys => ({ current: newTicketKey(), previous: keys.current });

describe.each<Version>(["TLSv1.2", "TLSv1.3"])("session tickets over %s", (version) => {
  it("resume on another listener holding the same keys (another worker), not on one with keys of its own", async () => {
    const keys = firstTicketKeys();
    const issuer = await listener(new SessionTickets(keys));
    const session = await firstSession(issuer.port, version);
    const sibling = await listener(new SessionTickets(keys));
    expect((await connect(sibling.port, version, session)).reused).toBe(true);
    expect(sibling.handshakes?.all()).toMatchObject([{ ok: 1, resumed: 1 }]);
    const stranger = await listener(new SessionTickets(firstTicketKeys()));
    expect((await connect(stranger.port, version, session)).reused).toBe(false);
    expect(stranger.handshakes?.all()).toMatchObject([{ ok: 1, resumed: 0 }]);
  });

  it("resume after one rotation (the previous key still opens them), not after two", async () => {
    const tickets = new SessionTickets(firstTicketKeys());
    let keys = firstTicketKeys();
    tickets.rotate(keys);
    const l = await listener(tickets);
    const session = await firstSession(l.port, version);
    keys = rotated(keys);
    tickets.rotate(keys);
    expect((await connect(l.port, version, session)).reused).toBe(true);
    tickets.rotate(rotated(keys));
    expect((await connect(l.port, version, session)).reused).toBe(false);
  });

  it("resume after a reload's new certificate context: the keys go with it", async () => {
    const l = await listener(new SessionTickets(firstTicketKeys()));
    const session = await firstSession(l.port, version);
    l.setSecureContext(tlsOptions());
    expect((await connect(l.port, version, session)).reused).toBe(true);
  });
});
