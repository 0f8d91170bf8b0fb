import { mkdtempSync, readFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { demoCertificate } from "../../../src/runtime/demo.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { StreamConnection } from "../../../src/transport/stream.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A TLS server behind a TCP relay that counts the application-data records (RFC 8446 §5.1 type 23) the client sends. */
async function countingTlsPeer(): Promise<{ port: number; records: () => number; received: () => string }> {
  const files = demoCertificate(join(mkdtempSync(join(tmpdir(), "sipedge-coalesce-")), "c"));
  let text = "";
  const tls = createTlsServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (s) => {
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
  });
  await new Promise<void>((r) => tls.listen(0, "127.0.0.1", () => r()));
  let records = 0;
  let pending = Buffer.alloc(0);
  const relay = createServer((client: Socket) => {
    const upstream = createConnection((tls.address() as { port: number }).port, "127.0.0.1");
    upstream.pipe(client);
    client.on("data", (d: Buffer) => {
      upstream.write(d);
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        if (pending[0] === 23) records++;
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
    });
    closers.push(() => {
      client.destroy();
      upstream.destroy();
    });
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
  closers.push(() => {
    relay.close();
    tls.close();
  });
  return { port: (relay.address() as { port: number }).port, records: () => records, received: () => text };
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("writes within one turn of the event loop", () => {
  it("leave a TLS connection as one record, in order, and the next turn's as another", async () => {
    const peer = await countingTlsPeer();
    const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 65536 });
    const c = StreamConnection.connect(
      "127.0.0.1",
      peer.port,
      { rejectUnauthorized: false },
      {
        maxMessageSize: 65536,
        maxQueuedBytes: 1 << 20,
        maxQueuedMessages: 1024,
        stallTimeout: 0,
        pool,
        counters: { slowReaders: 0, slowSenders: 0 },
      },
      () => {},
      () => {},
    );
    closers.push(() => c.close());
    // Up, with the handshake's records behind it.
    c.send([Buffer.from("hello\r\n")]);
    await until(() => peer.received() === "hello\r\n");
    const before = peer.records();
    for (const m of ["one\r\n", "two\r\n", "three\r\n"]) c.send([Buffer.from(m)]);
    await until(() => peer.received().endsWith("three\r\n"));
    expect(peer.records() - before).toBe(1);
    expect(peer.received()).toBe("hello\r\none\r\ntwo\r\nthree\r\n");
    c.send([Buffer.from("four\r\n")]);
    await until(() => peer.received().endsWith("four\r\n"));
    expect(peer.records() - before).toBe(2);
  });
});
