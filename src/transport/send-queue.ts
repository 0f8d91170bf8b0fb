import type { BufferPool, PoolSlot } from "./pool.ts";

/** What a send queue is bounded by, and where it counts a slow reader. */
export interface SendQueueOptions {
  /** Bytes queued for a peer beyond which it is a slow reader and is closed. */
  readonly maxQueuedBytes: number;
  /** Messages queued for a peer beyond which it is a slow reader and is closed. */
  readonly maxQueuedMessages: number;
  /** Where outgoing messages wait for the kernel. */
  readonly pool: BufferPool;
  readonly counters: { slowReaders: number };
  /** Close a connection whose peer has read nothing of its queue for this long (ms); 0 or absent: never. */
  readonly stallTimeout?: number;
}

/** RFC 5626 §4.4.1: the CRLF pong that answers a CRLFCRLF ping. */
const PONG: readonly Uint8Array[] = [Buffer.from("\r\n")];

/**
 * Pongs one connection gets in a second, at most. RFC 5626 §4.4.1 has a UA
 * on a stream ping every 80–100 % of the Flow-Timer its registrar gave, else
 * every 95–120 s: one every few tens of seconds at the most. Ten a second is
 * hundreds of times that, so a burst (pings on reconnect, a few in one read)
 * is still answered, while a peer that pings in a loop costs at most ten
 * small writes a second and no more than one pool slot at a time.
 */
export const PONGS_PER_SECOND = 10;

/**
 * A connection's send queue, bounded in bytes and in messages: a peer that
 * lets more than maxQueuedBytes or maxQueuedMessages pile up is a slow
 * reader and is closed (counted). Each queued message holds a pool slot
 * (however small, a whole one) and a write request on the heap, so a
 * stream of tiny messages is bounded by its count before its bytes.
 * Bounded in time too: a peer that reads nothing of what is queued for
 * stallTimeout is closed the same way, so a flow nothing more is sent to
 * (an endpoint that moved to a new connection) cannot hold its slots.
 * Keep-alive pongs are queued here too, one at a time and PONGS_PER_SECOND
 * at most: a peer that pings and never reads would otherwise grow the
 * socket's own buffer without bound.
 */
export class SendQueue {
  readonly #options: SendQueueOptions;
  readonly #close: () => void;
  #messages = 0;
  /** When the peer last took something (or the queue last began to fill). */
  #progress = 0;
  #stall: ReturnType<typeof setTimeout> | undefined;
  /** The pong queued and not yet written, if any. */
  #pong: PoolSlot | undefined;
  /** When this second of the pong budget began, and the pongs left in it. */
  #pongWindow = 0;
  #pongsLeft = 0;

  constructor(options: SendQueueOptions, close: () => void) {
    this.#options = options;
    this.#close = close;
  }

  /** The pool slot to write, or undefined: the peer was a slow reader (now closed), or no slot is free. */
  take(queuedBytes: number, slices: readonly Uint8Array[], urgent: boolean): PoolSlot | undefined {
    const o = this.#options;
    if (queuedBytes > o.maxQueuedBytes || this.#messages >= o.maxQueuedMessages) {
      this.#slowReader();
      return undefined;
    }
    const slot = o.pool.copy(slices, urgent);
    if (slot === undefined) return undefined;
    if (this.#messages++ === 0) {
      this.#progress = Date.now();
      this.#watch(o.stallTimeout ?? 0);
    }
    return slot;
  }

  /**
   * The slot of a CRLF pong to write for a ping (RFC 5626 §4.4.1), or
   * undefined: no pong. A ping while the last pong is still unwritten gets
   * none (that pong answers it as well), nor does one beyond
   * PONGS_PER_SECOND; a pong that finds the queue over its bounds closes
   * the peer as a slow reader, like any other message.
   */
  pong(queuedBytes: number): PoolSlot | undefined {
    if (this.#pong !== undefined || !this.#pongAllowed()) return undefined;
    this.#pong = this.take(queuedBytes, PONG, false);
    return this.#pong;
  }

  /** A fixed one-second window: a timestamp and a count, no timer. */
  #pongAllowed(): boolean {
    const now = Date.now();
    if (now - this.#pongWindow >= 1000) {
      this.#pongWindow = now;
      this.#pongsLeft = PONGS_PER_SECOND;
    }
    if (this.#pongsLeft === 0) return false;
    this.#pongsLeft--;
    return true;
  }

  /** A slot's write is done or failed (also when the socket was destroyed first): it goes home either way. */
  written(slot: PoolSlot): void {
    if (slot === this.#pong) this.#pong = undefined;
    this.#messages--;
    this.#progress = Date.now();
    this.#options.pool.release(slot);
  }

  /** One lazy timer: progress only moves a timestamp, and the timer looks at it when it runs out. */
  #watch(delay: number): void {
    if (delay <= 0 || this.#stall !== undefined) return;
    this.#stall = setTimeout(() => {
      this.#stall = undefined;
      if (this.#messages === 0) return;
      const left = (this.#options.stallTimeout ?? 0) - (Date.now() - this.#progress);
      if (left <= 0) this.#slowReader();
      else this.#watch(left);
    }, delay);
    this.#stall.unref();
  }

  #slowReader(): void {
    if (this.#stall !== undefined) clearTimeout(this.#stall);
    this.#stall = undefined;
    this.#options.counters.slowReaders++;
    this.#close();
  }
}
