import { readFileSync } from "node:fs";
import type { Config } from "../../config/schema.ts";
import type { BufferPool } from "../../transport/pool.ts";
import type { StreamCounters, StreamListenerOptions, StreamOptions } from "../../transport/stream.ts";

/** Per-connection send queue bounds before a peer counts as a slow reader. */
const MAX_QUEUED_BYTES = 1 << 20;
const MAX_QUEUED_MESSAGES = 1024;

/** What every stream of a worker shares: the client side's, the backend side's and its links to backends. */
export interface StreamParts {
  readonly pool: BufferPool;
  readonly counters: StreamCounters;
}

/** The bounds of every connection a worker keeps, listened for or opened. */
export function streamOptions(config: Config, parts: StreamParts): StreamOptions {
  return {
    maxMessageSize: config.sip.maxMessageSize,
    maxQueuedBytes: MAX_QUEUED_BYTES,
    maxQueuedMessages: MAX_QUEUED_MESSAGES,
    // RFC 3261 §17.1.1.2, §17.1.2.2: by 64×T1 (Timers B and F) every transaction a queued message
    // belongs to has timed out at its sender, so a queue that has not moved for that long holds nothing of use.
    stallTimeout: 64 * config.sip.timers.t1,
    pool: parts.pool,
    counters: parts.counters,
  };
}

/** A listener's options but its address, port, admission and certificate. */
export type ListenerOptions = Omit<StreamListenerOptions, "address" | "port" | "admission" | "tls">;

/**
 * What every listener of a worker shares, client side and backend side: the
 * slowloris and handshake bounds and the kernel's backlog; the caller adds
 * its address, port and admission.
 */
export function listenerOptions(config: Config, streams: StreamOptions): ListenerOptions {
  return {
    backlog: listenBacklog(),
    ...streams,
    idleTimeout: config.limits.idleTimeout,
    messageTimeout: config.limits.messageTimeout,
    handshakeTimeout: config.limits.handshakeTimeout,
  };
}

/**
 * The kernel caps a listen backlog at net.core.somaxconn; ask for exactly
 * that, since Node's default (511) would silently cap a tuned kernel's.
 */
function listenBacklog(): number {
  try {
    const n = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : 4096;
  } catch {
    return 4096;
  }
}
