import type { MessagePort } from "node:worker_threads";
import type { PeerAddress } from "../proxy/ports.ts";
import { handOffCell } from "./shared-memory.ts";

/** At most this many requests in flight from one IO worker to another. */
export const HANDOFF_CAPACITY = 1024;

/** Endpoints one worker bound to one of its flows, told to every other worker. */
export interface Bound {
  readonly keys: readonly string[];
  readonly flow: number;
  readonly expiresMs: number;
}

/** One request from a backend, passed to the worker that owns its client flow. */
export interface HandOff {
  /** The message as received, in its own buffer (transferred, not copied, by postMessage). */
  readonly bytes: Uint8Array;
  readonly replyTo: PeerAddress;
  /** The client flow the sender resolved the request to. */
  readonly flowId: number;
}

/**
 * One IO worker's hand-off queues (principle 1: cross-thread work
 * is a message on a bounded queue). Each pair of workers shares a
 * MessagePort pair the supervisor entangles; the bound is an in-flight count
 * per ordered pair in shared memory (runtime/shared-memory.ts): the
 * sender adds one before posting and refuses at capacity, the receiver takes
 * one off as it handles the message. MessagePorts have no back-pressure of
 * their own, so this count is what keeps the queue bounded; hand-offs and
 * endpoint announcements share it.
 */
export class HandOffs {
  readonly #self: number;
  readonly #threads: number;
  readonly #depth: Int32Array;
  readonly #capacity: number;
  readonly #deliver: (h: HandOff) => void;
  readonly #learn: (b: Bound) => void;
  readonly #peers = new Map<number, MessagePort>();

  constructor(
    self: number,
    threads: number,
    depth: SharedArrayBuffer,
    deliver: (h: HandOff) => void,
    learn: (b: Bound) => void = () => {},
    capacity = HANDOFF_CAPACITY,
  ) {
    this.#self = self;
    this.#threads = threads;
    this.#depth = new Int32Array(depth);
    this.#deliver = deliver;
    this.#learn = learn;
    this.#capacity = capacity;
  }

  /** The port to `peer` (a restarted peer comes with a new one). */
  connect(peer: number, port: MessagePort): void {
    this.#peers.get(peer)?.close();
    this.#peers.set(peer, port);
    const cell = handOffCell(peer, this.#self, this.#threads);
    port.on("message", (m: HandOff | Bound) => {
      Atomics.sub(this.#depth, cell, 1);
      if ("keys" in m) this.#learn(m);
      else this.#deliver(m);
    });
    // The peer's thread ended: its end of the pair closed with it.
    port.on("close", () => {
      if (this.#peers.get(peer) === port) this.#peers.delete(peer);
    });
  }

  /** Queues a request for `owner`; false when that queue is full or the owner is gone. */
  offer(owner: number, bytes: Uint8Array, replyTo: PeerAddress, flowId: number): boolean {
    const port = this.#peers.get(owner);
    if (port === undefined || !this.#reserve(owner)) return false;
    // The received bytes are a view of a shared chunk: copy once into a buffer the owner can keep.
    const own = new Uint8Array(bytes.length);
    own.set(bytes);
    const message: HandOff = { bytes: own, replyTo, flowId };
    port.postMessage(message, [own.buffer]);
    return true;
  }

  /** Room for one more message to `peer`, taken; false at capacity. */
  #reserve(peer: number): boolean {
    const cell = handOffCell(this.#self, peer, this.#threads);
    if (Atomics.add(this.#depth, cell, 1) < this.#capacity) return true;
    Atomics.sub(this.#depth, cell, 1);
    return false;
  }

  /**
   * Tells every other worker where endpoints are now, straight over the
   * pair ports (before the REGISTER's 2xx leaves, so a registrar that calls
   * back at once finds them on any worker). A peer whose queue is full misses
   * it: an old token there then gets 430 and the registrar tries again.
   */
  announce(b: Bound): void {
    for (const [peer, port] of this.#peers) if (this.#reserve(peer)) port.postMessage(b);
  }

  close(): void {
    for (const port of this.#peers.values()) port.close();
    this.#peers.clear();
  }
}
