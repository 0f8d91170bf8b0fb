import type { BufferPool } from "../../src/transport/pool.ts";
import type { StreamListenerOptions } from "../../src/transport/stream.ts";

/** A TCP listener's options on 127.0.0.1, a kernel-chosen port, small bounds, over `pool`. */
export function loopbackListener(pool: BufferPool): StreamListenerOptions {
  return {
    address: "127.0.0.1",
    port: 0,
    backlog: 16,
    maxMessageSize: 4096,
    maxQueuedBytes: 1 << 16,
    maxQueuedMessages: 64,
    pool,
    counters: { slowReaders: 0, slowSenders: 0 },
  };
}
