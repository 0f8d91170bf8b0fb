import { readFileSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { WebSocket } from "ws";
import { demoCertificate } from "../../../src/runtime/demo.ts";
import type { ConnectionListener, ServerTls } from "../../../src/transport/listener.ts";
import { BufferPool, type PoolSlot } from "../../../src/transport/pool.ts";
import { PONGS_PER_SECOND, SendQueue } from "../../../src/transport/send-queue.ts";
import { StreamListener, type StreamOptions } from "../../../src/transport/stream.ts";
import { firstTicketKeys, SessionTickets } from "../../../src/transport/ticket-keys.ts";
import { WsListener } from "../../../src/transport/websocket.ts";
import { sleep } from "../../helpers/net.ts";
import { CERT_DIR } from "../../helpers/sipedge.ts";
import { connectWs, nextMessage } from "../../helpers/ws.ts";

const PING = "\r\n\r\n";
/** Pings in a flood, sent BURST at a time with a turn of the loop between, so each burst is a read of its own. */
const FLOOD = 200_000;
const BURST = 100;
const OPTIONS =
  "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKping\r\nFrom: <sip:a@b>;tag=1\r\n" +
  "To: <sip:c@d>\r\nCall-ID: ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

function options(pool: BufferPool): StreamOptions {
  return {
    maxMessageSize: 4096,
    maxQueuedBytes: 1 << 16,
    maxQueuedMessages: 64,
    pool,
    counters: { slowReaders: 0, slowSenders: 0 },
  };
}

/** The test certificate's files, read. */
function serverTls(): ServerTls {
  const files = demoCertificate(CERT_DIR);
  const options = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
  return { options, named: [], tickets: new SessionTickets(firstTicketKeys()) };
}

async function until(done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await sleep(10);
  }
}

/** Sends FLOOD pings with `send(n)`, n at a time, as fast as the loop turns. */
async function flood(send: (n: number) => void): Promise<void> {
  for (let sent = 0; sent < FLOOD; sent += BURST) {
    send(BURST);
    await new Promise((r) => setImmediate(r));
  }
}

/** What a flood may get back: PONGS_PER_SECOND in each second (window) it lasted, counting both ends. */
function pongBudget(startedMs: number): number {
  return PONGS_PER_SECOND * (Math.ceil((Date.now() - startedMs) / 1000) + 1);
}

let listener: ConnectionListener | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await listener?.close();
  listener = undefined;
});

/** A TCP or TLS listener delivering to `onMessage`, and a raw client connected to it. */
async function streamPair(tls: boolean, pool: BufferPool, onMessage: () => void): Promise<Socket> {
  const l = await StreamListener.listen(
    { address: "127.0.0.1", port: 0, backlog: 16, ...options(pool), ...(tls ? { tls: serverTls() } : {}) },
    onMessage,
  );
  listener = l;
  const client = tls
    ? tlsConnect({ host: "127.0.0.1", port: l.port, rejectUnauthorized: false })
    : tcpConnect({ host: "127.0.0.1", port: l.port });
  closers.push(() => client.destroy());
  await new Promise((r) => client.once(tls ? "secureConnect" : "connect", r));
  return client;
}

async function wssPair(pool: BufferPool, onMessage: () => void): Promise<WebSocket> {
  const l = await WsListener.listen(
    { address: "127.0.0.1", port: 0, backlog: 16, ...options(pool), tls: serverTls() },
    onMessage,
  );
  listener = l;
  const ws = await connectWs(l.port, ["sip"]);
  closers.push(() => ws.terminate());
  return ws;
}

describe("RFC 5626 §4.4.1 keep-alive pongs go through the connection's send queue", () => {
  it("queue one pong at a time and at most PONGS_PER_SECOND a second, and close a slow reader that pings", () => {
    vi.useFakeTimers();
    try {
      const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
      const opts = options(pool);
      let closed = false;
      const queue = new SendQueue(opts, () => {
        closed = true;
      });
      const first = queue.pong(0) as PoolSlot;
      expect(first.bytes.toString()).toBe("\r\n");
      // A ping while its predecessor's pong is unwritten gets none.
      expect(queue.pong(0)).toBeUndefined();
      queue.written(first);
      for (let i = 1; i < PONGS_PER_SECOND; i++) queue.written(queue.pong(0) as PoolSlot);
      expect(queue.pong(0)).toBeUndefined();
      vi.advanceTimersByTime(1000);
      const next = queue.pong(0) as PoolSlot;
      expect(next).toBeDefined();
      queue.written(next);
      expect(pool.inUse).toBe(0);
      // A pong finds the queue beyond its bound like any other message: a slow reader, closed.
      vi.advanceTimersByTime(1000);
      expect(queue.pong(opts.maxQueuedBytes + 1)).toBeUndefined();
      expect(closed).toBe(true);
      expect(opts.counters.slowReaders).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  for (const tls of [false, true]) {
    const name = tls ? "TLS" : "TCP";

    it(`answer a ${name} peer that floods pings and never reads with at most PONGS_PER_SECOND pongs a second`, async () => {
      const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
      let messages = 0;
      const client = await streamPair(tls, pool, () => messages++);
      client.pause();
      const started = Date.now();
      const burst = Buffer.alloc(BURST * PING.length, PING);
      await flood(() => client.write(burst));
      // A message after the pings: once it is in, every ping before it has been handled.
      client.write(OPTIONS);
      await until(() => messages === 1);
      const budget = pongBudget(started);
      let pongs = 0;
      client.on("data", (b: Buffer) => {
        pongs += b.length / 2;
      });
      client.resume();
      await sleep(300);
      expect(pongs).toBeGreaterThanOrEqual(1);
      expect(pongs).toBeLessThanOrEqual(budget);
      await until(() => pool.inUse === 0);
    });

    it(`answer a ${name} ping sent after the last pong arrived`, async () => {
      const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
      const client = await streamPair(tls, pool, () => {});
      for (let i = 0; i < 3; i++) {
        const pong = new Promise<Buffer>((resolve) => client.once("data", resolve));
        client.write(PING);
        expect((await pong).toString()).toBe("\r\n");
      }
    });
  }

  it("answer a WSS peer that floods pings and never reads with at most PONGS_PER_SECOND pongs a second", async () => {
    const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
    let messages = 0;
    const ws = await wssPair(pool, () => messages++);
    ws.pause();
    const started = Date.now();
    await flood((n) => {
      for (let i = 0; i < n; i++) ws.send(PING);
    });
    ws.send(OPTIONS);
    await until(() => messages === 1);
    const budget = pongBudget(started);
    let pongs = 0;
    ws.on("message", () => pongs++);
    ws.resume();
    await sleep(300);
    expect(pongs).toBeGreaterThanOrEqual(1);
    expect(pongs).toBeLessThanOrEqual(budget);
    await until(() => pool.inUse === 0);
  });

  it("answer a WSS ping sent after the last pong arrived", async () => {
    const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
    const ws = await wssPair(pool, () => {});
    for (let i = 0; i < 3; i++) {
      const pong = nextMessage(ws, 5000);
      ws.send(PING);
      expect((await pong).toString()).toBe("\r\n");
    }
  });
});
