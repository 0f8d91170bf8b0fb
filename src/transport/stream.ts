import { createServer as createTcpServer, connect as netConnect, type Server, type Socket } from "node:net";
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  TLSSocket,
  type TlsOptions,
  connect as tlsConnect,
} from "node:tls";
import { StreamFramer } from "../sip/index.ts";
import { holdSends, releaseSends } from "./datagram-socket.ts";
import { type MessageHandler, newFlowId, secondsNow } from "./flow.ts";
import {
  type Connection,
  ConnectionListener,
  DEFAULT_HANDSHAKE_TIMEOUT,
  type ListenOptions,
  type ServerTls,
} from "./listener.ts";
import type { PoolSlot } from "./pool.ts";
import { SendQueue, type SendQueueOptions } from "./send-queue.ts";
import { certificateNames, NO_NAMES, tcpSocketOf } from "./tls-peer.ts";
import { hardened } from "./tls-policy.ts";

/** What an IO worker's connections count between scrapes. */
export interface StreamCounters {
  /** Connections closed because their peer did not read what was queued for it. */
  slowReaders: number;
  /** Connections closed because a message took longer than messageTimeout to arrive (slowloris). */
  slowSenders: number;
}

export interface StreamOptions extends SendQueueOptions {
  readonly maxMessageSize: number;
  readonly counters: StreamCounters;
  /** Close a connection with no traffic either way for this long (ms); 0 or absent: never. */
  readonly idleTimeout?: number;
  /** Close a connection whose message, once begun, is not whole after this long (ms); 0 or absent: never. */
  readonly messageTimeout?: number;
}

/**
 * What all the connections of one listener (or one outgoing connection)
 * share: one object each points to, not four fields each.
 */
export interface StreamSide {
  readonly transport: "tcp" | "tls";
  readonly options: StreamOptions;
  readonly onMessage: MessageHandler;
  readonly onClose: (c: StreamConnection) => void;
}

/** A socket's connection, for the listeners below: one function for every socket, not closures for each. */
const CONNECTION = Symbol("sipedge.connection");
type Carrier = Socket & { [CONNECTION]?: StreamConnection };

/** Drained framers kept per message size for the next connection to receive part of a message. */
const SPARE_FRAMERS = 16;
const spareFramers = new Map<number, StreamFramer[]>();

/**
 * One TCP or TLS connection: framing by Content-Length, RFC 5626 keep-alive
 * pongs, and a bounded send queue. A framing error or a slow reader closes
 * the connection; nothing here throws.
 *
 * What an idle connection holds here is kept to this object: the socket's
 * listeners are shared functions that find it through a symbol on the
 * socket; the framer is lent only while bytes are being framed (a drained
 * framer goes back to SPARE_FRAMERS, as good as new: it has dropped every
 * byte it held), and the send queue is made on the first send; what a
 * listener's connections share is one StreamSide. Heap snapshots of 2 000
 * idle TLS connections, against a bare node:tls server's: 2.2 KiB a
 * connection more at first (closures, framer, empty buffer, queue), then
 * 0.8 KiB, now 0.07 KiB (this object, its id's box, the TCP socket's list of
 * two 'close' listeners; 2026-12-05).
 */
export class StreamConnection implements Connection {
  readonly id = newFlowId();
  readonly opened = secondsNow();
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #socket: Carrier;
  readonly #side: StreamSide;
  /** While a message is partly received (or a read is being framed); undefined otherwise. */
  #framer: StreamFramer | undefined;
  #queue: SendQueue | undefined;
  #closed = false;
  /** Written to in this turn of the event loop: its writes wait for the turn's end (corkedThisTurn). */
  #corked = false;
  #peerNames: readonly string[] | undefined;
  /** Runs out when the message now being received has taken too long. */
  #partial: ReturnType<typeof setTimeout> | undefined;

  /** For an outgoing connection still connecting, `remote` names where it goes. */
  constructor(socket: Socket, side: StreamSide, remote?: { address: string; port: number }) {
    const carrier: Carrier = socket;
    this.#socket = carrier;
    this.#side = side;
    // Asked of the TCP socket under a TLS one: node caches the answer on the socket asked, and the
    // admission gate has asked the TCP socket already; the TLS socket would keep a second copy.
    const peer = tcpSocketOf(socket);
    this.remoteAddress = remote?.address ?? peer.remoteAddress ?? "";
    this.remotePort = remote?.port ?? peer.remotePort ?? 0;
    carrier[CONNECTION] = this;
    socket.setNoDelay(true);
    // A dead peer behind a NAT never says goodbye: a silent flow is closed (RFC 5626 keep-alives keep it open).
    // Node's own timer: the TLS handshake timeout already made the socket one, which this reuses.
    const idleTimeout = side.options.idleTimeout ?? 0;
    if (idleTimeout > 0) {
      socket.setTimeout(idleTimeout);
      socket.on("timeout", StreamConnection.#onTimeoutOrError);
    }
    socket.on("data", StreamConnection.#onData);
    socket.on("error", StreamConnection.#onTimeoutOrError);
    socket.on("close", StreamConnection.#onSocketClose);
  }

  get transport(): "tcp" | "tls" {
    return this.#side.transport;
  }

  /** RFC 3261 §18: a stream delivers reliably (a getter: a field would be paid by every connection). */
  get reliable(): true {
    return true;
  }

  // Socket listeners: called with the socket as `this`.
  static readonly #onData = function (this: Carrier, chunk: Buffer): void {
    const c = this[CONNECTION];
    if (c === undefined) return;
    // The forwards a read causes leave together at its end (a read over TLS carried 2.9 messages at
    // 2 000 calls/s), not a sendto each.
    const outer = holdSends();
    try {
      c.#receive(chunk);
    } finally {
      releaseSends(outer);
    }
  };

  static readonly #onTimeoutOrError = function (this: Carrier): void {
    this[CONNECTION]?.close();
  };

  static readonly #onSocketClose = function (this: Carrier): void {
    const c = this[CONNECTION];
    if (c === undefined) return;
    c.#closed = true;
    c.#side.onClose(c);
  };

  #receive(chunk: Buffer): void {
    const framer = this.#framer ?? lendFramer(this.#side.options.maxMessageSize);
    this.#framer = framer;
    framer.push(chunk);
    for (;;) {
      const r = framer.next();
      if (!r.ok) {
        // RFC 3261 §18.3: framing is lost for good on a stream.
        this.close();
        return;
      }
      const frame = r.value;
      if (frame === null) break;
      if (frame.kind === "message") this.#side.onMessage(frame.bytes, this);
      else if (frame.kind === "ping") this.#pong();
    }
    if (framer.pending === 0) {
      this.#framer = undefined;
      giveBackFramer(this.#side.options.maxMessageSize, framer);
    }
    this.#checkSlowSender();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A peer that trickles a message a byte at a time keeps the idle timer
   * reset and a framing buffer held: the message it began must be whole
   * within messageTimeout.
   */
  #checkSlowSender(): void {
    const options = this.#side.options;
    const limit = options.messageTimeout ?? 0;
    if (limit <= 0 || (this.#framer?.pending ?? 0) === 0) {
      if (this.#partial !== undefined) clearTimeout(this.#partial);
      this.#partial = undefined;
      return;
    }
    // Most messages come whole in one read: a timer only for those that do not.
    this.#partial ??= setTimeout(() => {
      if (this.#closed) return;
      options.counters.slowSenders++;
      this.close();
    }, limit);
  }

  /** Known once connected; an outgoing connection queues what is sent before that. */
  get localAddress(): string {
    return this.#socket.localAddress ?? "";
  }

  get localPort(): number {
    return this.#socket.localPort ?? 0;
  }

  /**
   * Opens a TCP or TLS connection (RFC 3261 §18.1.1: reused for every request to
   * that peer). Requests written before it is up are queued by the socket.
   */
  static connect(
    host: string,
    port: number,
    tls: ConnectionOptions | undefined,
    options: StreamOptions,
    onMessage: MessageHandler,
    onClose: (c: StreamConnection) => void,
  ): StreamConnection {
    const socket = tls === undefined ? netConnect({ host, port }) : tlsConnect(hardened({ ...tls, host, port }));
    const side: StreamSide = { transport: tls === undefined ? "tcp" : "tls", options, onMessage, onClose };
    return new StreamConnection(socket, side, { address: host, port });
  }

  peerNames(): readonly string[] {
    if (this.#peerNames === undefined) {
      this.#peerNames = this.#socket instanceof TLSSocket ? certificateNames(this.#socket) : NO_NAMES;
    }
    return this.#peerNames;
  }

  send(slices: readonly Uint8Array[], urgent = false): boolean {
    if (this.#closed) return false;
    return this.#write(this.#sendQueue().take(this.#socket.writableLength, slices, urgent));
  }

  /** RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong, when the queue allows one. */
  #pong(): void {
    if (!this.#closed) this.#write(this.#sendQueue().pong(this.#socket.writableLength));
  }

  /** Made on the first send: a connection that only listens never needs one. */
  #sendQueue(): SendQueue {
    this.#queue ??= new SendQueue(this.#side.options, () => this.close());
    return this.#queue;
  }

  /** Writes a slot the queue gave (a message or a pong); false when it gave none. */
  #write(slot: PoolSlot | undefined): boolean {
    if (slot === undefined) return false;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      corkedThisTurn(this);
    }
    // Called once written or failed (also when the socket is destroyed first).
    const queue = this.#queue as SendQueue;
    this.#socket.write(slot.bytes, () => queue.written(slot));
    return true;
  }

  /** What this turn of the event loop wrote goes out, in one write (over TLS, one record). */
  uncork(): void {
    this.#corked = false;
    if (!this.#socket.destroyed) this.#socket.uncork();
  }

  /** Not reading is our doing, not the peer's: the message it began gets its whole time again on resume. */
  pause(): void {
    this.#socket.pause();
    if (this.#partial !== undefined) clearTimeout(this.#partial);
    this.#partial = undefined;
  }

  resume(): void {
    this.#socket.resume();
    this.#checkSlowSender();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#partial !== undefined) clearTimeout(this.#partial);
    this.#socket.destroy();
  }
}

/**
 * Connections written to in this turn of the event loop, uncorked together
 * once its I/O callbacks have run (setImmediate: right after the poll
 * phase). The messages one turn makes for a connection (the answers to the
 * datagrams libuv read in one go, a 100 and a relayed 180) then leave as
 * one write: over TLS one record and one syscall instead of one each.
 */
const corked: StreamConnection[] = [];
let uncorkScheduled = false;

function corkedThisTurn(c: StreamConnection): void {
  corked.push(c);
  if (uncorkScheduled) return;
  uncorkScheduled = true;
  setImmediate(uncorkAll);
}

function uncorkAll(): void {
  uncorkScheduled = false;
  // Taken first: a connection written to while these flush joins the next turn's list.
  const turn = corked.splice(0);
  for (const c of turn) {
    try {
      c.uncork();
    } catch {
      // Runs outside any message's exception boundary: a socket that fails here costs its own connection only.
      c.close();
    }
  }
}

/** A framer for a connection that has bytes to frame: a spare one, or a new one. */
function lendFramer(maxMessageSize: number): StreamFramer {
  return spareFramers.get(maxMessageSize)?.pop() ?? new StreamFramer({ maxMessageSize });
}

/** A framer with nothing pending is as good as new: kept for the next, up to SPARE_FRAMERS. */
function giveBackFramer(maxMessageSize: number, framer: StreamFramer): void {
  let spare = spareFramers.get(maxMessageSize);
  if (spare === undefined) {
    spare = [];
    spareFramers.set(maxMessageSize, spare);
  }
  if (spare.length < SPARE_FRAMERS) spare.push(framer);
}

export interface StreamListenerOptions extends StreamOptions, ListenOptions {
  /** For TLS: node:tls server options (cert, key, ca, requestCert, …) and the shared ticket keys. */
  readonly tls?: ServerTls;
  /** ms a TLS handshake may take (limits.handshakeTimeout). */
  readonly handshakeTimeout?: number;
}

/** A TCP or TLS listener that turns each accepted socket into a StreamConnection. */
export class StreamListener extends ConnectionListener {
  readonly transport: "tcp" | "tls";

  private constructor(server: Server, transport: "tcp" | "tls", options: StreamListenerOptions) {
    super(server, options);
    this.transport = transport;
  }

  static async listen(options: StreamListenerOptions, onMessage: MessageHandler): Promise<StreamListener> {
    const transport = options.tls === undefined ? "tcp" : "tls";
    const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    // A name's server (SNI) is made as the listener's own is.
    const serverFor = (tls: TlsOptions) => createTlsServer(hardened({ ...tls, handshakeTimeout }));
    const server = options.tls === undefined ? createTcpServer() : serverFor(options.tls.options);
    const listener = new StreamListener(server, transport, options);
    if (options.tls !== undefined) listener.serveTls(options.tls, { serverFor, handshakeTimeout });
    const side: StreamSide = { transport, options, onMessage, onClose: (closed) => listener.remove(closed) };
    const accept = (socket: Socket | TLSSocket) => {
      if (socket.destroyed) return; // refused at the door
      listener.add(new StreamConnection(socket, side));
    };
    server.on(transport === "tls" ? "secureConnection" : "connection", accept);
    await listener.bind(options);
    return listener;
  }
}
