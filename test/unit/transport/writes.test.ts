import { createServer, type Socket } from "node:net";
import { describe, expect, it, vi } from "vitest";
import { BufferPool, type PoolSlot } from "../../../src/transport/pool.ts";
import { SendQueue } from "../../../src/transport/send-queue.ts";
import { StreamConnection, type StreamOptions } from "../../../src/transport/stream.ts";

const MESSAGE = Buffer.alloc(1500, "x");

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function options(
  pool: BufferPool,
  maxQueuedBytes = 1 << 20,
  maxQueuedMessages = 1024,
  stallTimeout = 0,
): StreamOptions {
  return {
    maxMessageSize: 65536,
    maxQueuedBytes,
    maxQueuedMessages,
    stallTimeout,
    pool,
    counters: { slowReaders: 0, slowSenders: 0 },
  };
}

/**
 * A TCP server whose one peer never reads (or, given `readEveryMs`, reads
 * for one turn of its loop that often), and a StreamConnection to it.
 */
async function neverReading(opts: StreamOptions, readEveryMs = 0): Promise<{ c: StreamConnection; done: () => void }> {
  let peer: Socket | undefined;
  let reader: ReturnType<typeof setInterval> | undefined;
  const server = createServer((s) => {
    peer = s;
    s.pause();
    if (readEveryMs > 0) {
      reader = setInterval(() => {
        s.resume();
        setImmediate(() => s.pause());
      }, readEveryMs);
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const c = StreamConnection.connect(
    "127.0.0.1",
    port,
    undefined,
    opts,
    () => {},
    () => {},
  );
  await until(() => peer !== undefined);
  return {
    c,
    done: () => {
      clearInterval(reader);
      peer?.destroy();
      server.close();
    },
  };
}

describe("writes through the buffer pool", () => {
  it("hold a slot until the kernel has the bytes, and every slot comes home when a slow reader is closed", async () => {
    const pool = new BufferPool({ bytes: 8 << 20, maxMessageSize: 4096 });
    // A peer that never reads: the kernel buffers fill, then Node's queue, then the cap closes it.
    const opts = options(pool, 256 * 1024);
    const { c, done } = await neverReading(opts);
    let sent = 0;
    while (c.send([MESSAGE])) {
      sent++;
      if (sent % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(opts.counters.slowReaders).toBe(1);
    expect(sent).toBeGreaterThan(100);
    await until(() => pool.inUse === 0);
    expect(pool.freeFraction).toBe(1);
    done();
  });

  it("close a peer that lets too many small messages queue, before their bytes reach the byte cap", async () => {
    const pool = new BufferPool({ bytes: 8 << 20, maxMessageSize: 4096 });
    const opts = options(pool, 1 << 20, 50);
    const { c, done } = await neverReading(opts);
    // Written synchronously, none has reached the kernel: the 51st finds 50 queued.
    let sent = 0;
    while (c.send([Buffer.from("\r\n\r\n")])) sent++;
    expect(sent).toBe(50);
    expect(opts.counters.slowReaders).toBe(1);
    await until(() => pool.inUse === 0);
    done();
  });

  it("close a peer that reads nothing of its queue for stallTimeout, and keep one that reads slowly", async () => {
    const pool = new BufferPool({ bytes: 64 << 20, maxMessageSize: 4096 });
    // 9 MB: more than the kernel's buffers on loopback take from a peer that does not read, well under the caps.
    const fill = (c: StreamConnection) => {
      for (let i = 0; i < 6000; i++) expect(c.send([MESSAGE])).toBe(true);
    };
    // A second without progress: far beyond the slow reader's 50 ms turns however loaded the machine.
    const stalled = options(pool, 32 << 20, 100_000, 1000);
    const never = await neverReading(stalled);
    fill(never.c);
    await until(() => never.c.closed, 20_000);
    expect(stalled.counters.slowReaders).toBe(1);
    await until(() => pool.inUse === 0, 20_000);
    never.done();

    const slow = options(pool, 32 << 20, 100_000, 1000);
    const reading = await neverReading(slow, 50);
    fill(reading.c);
    await until(() => pool.inUse === 0, 20_000);
    expect(reading.c.closed).toBe(false);
    expect(slow.counters.slowReaders).toBe(0);
    reading.c.close();
    reading.done();
  });

  it("measure a stall from the peer's last progress, not from when the queue began to fill", () => {
    vi.useFakeTimers();
    try {
      const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
      const opts = options(pool, 1 << 20, 1024, 1000);
      let closed = false;
      const queue = new SendQueue(opts, () => {
        closed = true;
      });
      const slots = [0, 1, 2].map(() => queue.take(0, [MESSAGE], false));
      vi.advanceTimersByTime(600);
      queue.written(slots[0] as PoolSlot); // the peer took one: 600 ms in, the clock starts again
      vi.advanceTimersByTime(900);
      expect(closed).toBe(false);
      vi.advanceTimersByTime(150);
      expect(closed).toBe(true);
      expect(opts.counters.slowReaders).toBe(1);
      for (const slot of slots.slice(1)) queue.written(slot as PoolSlot);
      expect(pool.inUse).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
