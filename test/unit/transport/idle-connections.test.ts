import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Flow } from "../../../src/transport/flow.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { StreamConnection, type StreamOptions } from "../../../src/transport/stream.ts";
import { sleep } from "../../helpers/net.ts";

/**
 * What an idle connection holds is multiplied by every connection a box
 * carries (50 000 per box is the aim): these pin down the parts of it that
 * are sipedge's own rather than Node's.
 */

const message = (callId: string) =>
  `OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK${callId}\r\nFrom: <sip:a@b>;tag=1\r\n` +
  `To: <sip:c@d>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;

function options(): StreamOptions {
  return {
    maxMessageSize: 4096,
    maxQueuedBytes: 1 << 16,
    maxQueuedMessages: 64,
    pool: new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 }),
    counters: { slowReaders: 0, slowSenders: 0 },
    idleTimeout: 60_000,
    messageTimeout: 10_000,
  };
}

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** `n` accepted TCP sockets, each with the client socket that connected to it. */
async function pairs(n: number): Promise<{ accepted: Socket; client: Socket }[]> {
  const accepted: Socket[] = [];
  server = createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const clients: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const c = tcpConnect({ host: "127.0.0.1", port });
    await new Promise((r) => c.once("connect", r));
    clients.push(c);
  }
  while (accepted.length < n) await sleep(5);
  sockets.push(...accepted, ...clients);
  return clients.map((client, i) => ({ accepted: accepted[i] as Socket, client }));
}

describe("an idle stream connection", () => {
  it("puts the same listener functions on every socket, not closures made for each connection", async () => {
    const [a, b] = await pairs(2);
    const o = options();
    const side = { transport: "tcp" as const, options: o, onMessage: () => {}, onClose: () => {} };
    new StreamConnection(a?.accepted as Socket, side);
    new StreamConnection(b?.accepted as Socket, side);
    for (const event of ["data", "error", "close", "timeout"]) {
      const first = a?.accepted.listeners(event) ?? [];
      expect(first.length, event).toBeGreaterThan(0);
      expect(first, event).toEqual(b?.accepted.listeners(event));
    }
  });

  it("frames messages split across reads on connections that take turns, each its own", async () => {
    const got: string[] = [];
    const onMessage = (bytes: Buffer, flow: Flow) => got.push(`${flow.remotePort} ${bytes.toString("latin1")}`);
    const o = options();
    const [a, b] = (await pairs(2)) as [{ accepted: Socket; client: Socket }, { accepted: Socket; client: Socket }];
    const side = { transport: "tcp" as const, options: o, onMessage, onClose: () => {} };
    new StreamConnection(a.accepted, side);
    new StreamConnection(b.accepted, side);
    const [ma, mb, mc] = [message("a1"), message("b1"), message("a2")];
    // a: half a message; b: a whole one and half of the next; a: the rest and a whole one; b: its rest.
    const mb2 = message("b2");
    const steps: [Socket, string][] = [
      [a.client, ma.slice(0, 40)],
      [b.client, mb + mb2.slice(0, 70)],
      [a.client, ma.slice(40) + mc],
      [b.client, mb2.slice(70)],
    ];
    for (const [client, bytes] of steps) {
      client.write(bytes);
      await sleep(50);
    }
    expect(got).toEqual([
      `${b.client.localPort} ${mb}`,
      `${a.client.localPort} ${ma}`,
      `${a.client.localPort} ${mc}`,
      `${b.client.localPort} ${mb2}`,
    ]);
  });
});
