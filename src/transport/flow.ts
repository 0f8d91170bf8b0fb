/** What the proxy sees of a transport connection (or of a UDP peer). */

export type TransportName = "udp" | "tcp" | "tls" | "ws" | "wss";

export interface Flow {
  /** Unique within this IO worker. */
  readonly id: number;
  readonly transport: TransportName;
  /** Stream transports deliver reliably: no SIP retransmissions (RFC 3261 §17.1.1.2). */
  readonly reliable: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Queues a message for sending, copied into a pool slot that returns when
   * the kernel has it; false when the flow is closed, its queue is full, or
   * no slot is free. `urgent`: an error response sipedge makes, which may
   * take from the pool's reserve.
   */
  send(slices: readonly Uint8Array[], urgent?: boolean): boolean;
  readonly closed: boolean;
  /**
   * The subject CN and SAN DNS names of the peer's TLS certificate, lower
   * case, when it presented one that verified; empty otherwise.
   */
  peerNames(): readonly string[];
}

/** Called for every whole SIP message a flow receives (bytes are a view; copy to keep them past the call). */
export type MessageHandler = (bytes: Buffer, flow: Flow) => void;

/**
 * Flow ids are unique across the process: each IO thread (its own module
 * instance, so this is per-thread state) counts within its own range, so an
 * id also tells which worker owns the flow.
 */
const RANGE = 2 ** 32;
let nextId = 1;

export function useFlowIdRange(worker: number): void {
  nextId = worker * RANGE + 1;
}

export function newFlowId(): number {
  return nextId++;
}

/** The IO worker whose range a flow id is in. */
export function flowOwner(id: number): number {
  return Math.floor(id / RANGE);
}

/**
 * Whole seconds on this thread's monotonic clock, when a connection opened
 * (Connection.opened): a small integer, which V8 keeps in the object. A
 * millisecond timestamp (Date.now(), ~1.7e12) is past V8's small integers
 * and cost every held connection a 16-byte box of its own (heap snapshot).
 */
export function secondsNow(): number {
  return Math.floor(performance.now() / 1000);
}
