import { createRequire } from "node:module";

/** The native datagram path (native/datagram.c; built by scripts/build-native.sh). */
interface NativeDatagram {
  open(
    ipv6: boolean,
    address: string,
    port: number,
    reusePort: boolean,
    receiveBuffer: number,
    sendBuffer: number,
    arena: Uint8Array,
    meta: Int32Array,
    text: Uint8Array,
    onBatch: (count: number) => void,
  ): NativeHandle;
  send(handle: NativeHandle, bytes: Uint8Array, length: number, port: number, address: string): number;
  localPort(handle: NativeHandle): number;
  lost(handle: NativeHandle): number;
  close(handle: NativeHandle): void;
  holdSends(): boolean;
  releaseSends(outer: boolean): void;
  readonly BATCH: number;
  readonly SLOT: number;
  readonly META: number;
  readonly TEXT: number;
}

declare const nativeHandle: unique symbol;
type NativeHandle = { readonly [nativeHandle]: true };

const native = loadNative();

function loadNative(): NativeDatagram {
  // src/transport and dist/transport both sit two levels under the root, where build/ is.
  const path = "../../build/native/datagram.node";
  try {
    return createRequire(import.meta.url)(path) as NativeDatagram;
  } catch (e) {
    throw new Error(`sipedge's datagram path is not built (${path}): run npm install (needs cc and libuv1-dev)`, {
      cause: e,
    });
  }
}

/**
 * From here to releaseSends(its answer), every datagram sent on this thread
 * waits, as a batch's sends do, and leaves with the others in one sendmmsg
 * per socket; true when this hold is the outer one.
 */
export function holdSends(): boolean {
  return native.holdSends();
}

export function releaseSends(outer: boolean): void {
  native.releaseSends(outer);
}

/** Datagrams read in one turn of the event loop at most; a turn that read this many left a backlog. */
export const READS_PER_TURN = native.BATCH;

/** What a datagram socket calls for each datagram it reads: its bytes (the caller's to keep) and its source. */
export type DatagramHandler = (bytes: Buffer, address: string, port: number) => void;

export interface DatagramSocketOptions {
  readonly reusePort: boolean;
  readonly receiveBuffer: number;
  readonly sendBuffer: number;
}

/**
 * Sources seen lately, IPv4 address as a 32-bit key → its text: a peer
 * sends many datagrams from one address, and the text is made once. A
 * flood of forged sources only refills it (cleared when full), so it is
 * bounded whatever arrives.
 */
const SOURCE_NAMES = 4096;

/**
 * One UDP socket on the native datagram path. Reading starts at open;
 * every batch of datagrams (one per turn of the event loop, up to
 * READS_PER_TURN) is handed out one datagram at a time, each copied out of
 * the shared arena into a Buffer of its own, since the proxy may keep a
 * message past its handling (a transaction's request) while the arena is
 * overwritten by the next batch.
 */
export class DatagramSocket {
  readonly #handle: NativeHandle;
  readonly #arena: Buffer;
  readonly #meta: Int32Array;
  readonly #text: Buffer;
  readonly #onDatagram: DatagramHandler;
  readonly #onBatch: (count: number) => void;
  readonly #names = new Map<number, string>();
  readonly port: number;
  #closed = false;

  constructor(
    address: string,
    port: number,
    ipv6: boolean,
    options: DatagramSocketOptions,
    onDatagram: DatagramHandler,
    onBatch: (count: number) => void,
  ) {
    this.#arena = Buffer.allocUnsafeSlow(native.BATCH * native.SLOT);
    this.#meta = new Int32Array(native.BATCH * native.META);
    this.#text = Buffer.allocUnsafeSlow(native.BATCH * native.TEXT);
    this.#onDatagram = onDatagram;
    this.#onBatch = onBatch;
    const { reusePort, receiveBuffer, sendBuffer } = options;
    this.#handle = native.open(
      ipv6,
      address,
      port,
      reusePort,
      receiveBuffer,
      sendBuffer,
      this.#arena,
      this.#meta,
      this.#text,
      (count) => this.#read(count),
    );
    this.port = native.localPort(this.#handle);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends the first `length` bytes of `bytes`: 0, or the errno that lost the
   * datagram. The bytes are the kernel's or copied when this returns. Made
   * while a batch (or a hold, holdSends) is handled, the send waits for its end and leaves
   * with the others it made (native/datagram.c says why); one the kernel
   * refuses then is counted in `lost`.
   */
  send(bytes: Uint8Array, length: number, port: number, address: string): number {
    return native.send(this.#handle, bytes, length, port, address);
  }

  /** Sends queued for a batch's end that the kernel refused when they left (at the end, or at a close before it). */
  get lost(): number {
    return native.lost(this.#handle);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    native.close(this.#handle);
  }

  #read(count: number): void {
    const meta = this.#meta;
    const arena = this.#arena;
    const slot = native.SLOT;
    this.#onBatch(count);
    for (let i = 0; i < count && !this.#closed; i++) {
      const m = i * native.META;
      const length = meta[m] as number;
      const bytes = Buffer.allocUnsafe(length);
      arena.copy(bytes, 0, i * slot, i * slot + length);
      this.#onDatagram(bytes, this.#source(i, m), meta[m + 1] as number);
    }
  }

  #source(i: number, m: number): string {
    const meta = this.#meta;
    if (meta[m + 2] !== 4) return this.#sourceText(i, m);
    const key = meta[m + 4] as number;
    const names = this.#names;
    let name = names.get(key);
    if (name === undefined) {
      if (names.size >= SOURCE_NAMES) names.clear();
      name = this.#sourceText(i, m);
      names.set(key, name);
    }
    return name;
  }

  /** Datagram `i`'s source address as the native side wrote it. */
  #sourceText(i: number, m: number): string {
    const start = i * native.TEXT;
    return this.#text.toString("latin1", start, start + (this.#meta[m + 3] as number));
  }
}
