import { createServer as createTcpServer, connect as netConnect, type Server, type Socket } from "node:net";
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  TLSSocket,
  type TlsOptions,
  connect as tlsConnect,
} from "node:tls";
import { StreamFramer } from "../sip/index.ts";
import { type MessageHandler, newFlowId, type TransportName } from "./flow.ts";
import {
  type Connection,
  ConnectionListener,
  certificateNames,
  type ListenerAdmission,
  type ListenOptions,
} from "./listener.ts";
import type { BufferPool, PoolSlot } from "./pool.ts";
import { hardened } from "./tls-policy.ts";

/** What an IO worker's connections count between scrapes. */
export interface StreamCounters {
  /** Connections closed because their peer did not read what was queued for it. */
  slowReaders: number;
  /** Connections closed because a message took longer than messageTimeout to arrive (slowloris). */
  slowSenders: number;
}

export interface StreamOptions {
  readonly maxMessageSize: number;
  /** Bytes queued for a peer beyond which it is a slow reader and is closed. */
  readonly maxQueuedBytes: number;
  /** Messages queued for a peer beyond which it is a slow reader and is closed. */
  readonly maxQueuedMessages: number;
  /** Where outgoing messages wait for the kernel. */
  readonly pool: BufferPool;
  readonly counters: StreamCounters;
  /** Close a connection with no traffic either way for this long (ms); 0 or absent: never. */
  readonly idleTimeout?: number;
  /** Close a connection whose message, once begun, is not whole after this long (ms); 0 or absent: never. */
  readonly messageTimeout?: number;
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
  readonly #options: StreamOptions;
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

  constructor(options: StreamOptions, close: () => void) {
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
 * byte it held), and the send queue is made on the first send. Heap
 * snapshots of 2 000 idle TLS connections: 2.2 KiB a connection more than
 * a bare node:tls server's before (closures, framer, empty buffer, queue),
 * 0.8 KiB since (this object, a listener closure, peer address objects).
 */
export class StreamConnection implements Connection {
  readonly id = newFlowId();
  readonly opened = Date.now();
  readonly transport: TransportName;
  readonly reliable = true;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #socket: Carrier;
  readonly #options: StreamOptions;
  readonly #onMessage: MessageHandler;
  readonly #onClose: (c: StreamConnection) => void;
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
  constructor(
    socket: Socket,
    transport: TransportName,
    options: StreamOptions,
    onMessage: MessageHandler,
    onClose: (c: StreamConnection) => void,
    remote?: { address: string; port: number },
  ) {
    const carrier: Carrier = socket;
    this.#socket = carrier;
    this.transport = transport;
    this.remoteAddress = remote?.address ?? socket.remoteAddress ?? "";
    this.remotePort = remote?.port ?? socket.remotePort ?? 0;
    this.#options = options;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
    carrier[CONNECTION] = this;
    socket.setNoDelay(true);
    // A dead peer behind a NAT never says goodbye: a silent flow is closed (RFC 5626 keep-alives keep it open).
    // Node's own timer: the TLS handshake timeout already made the socket one, which this reuses.
    if ((options.idleTimeout ?? 0) > 0) {
      socket.setTimeout(options.idleTimeout as number);
      socket.on("timeout", StreamConnection.#onTimeoutOrError);
    }
    socket.on("data", StreamConnection.#onData);
    socket.on("error", StreamConnection.#onTimeoutOrError);
    socket.on("close", StreamConnection.#onSocketClose);
  }

  // Socket listeners: called with the socket as `this`.
  static readonly #onData = function (this: Carrier, chunk: Buffer): void {
    const c = this[CONNECTION];
    if (c !== undefined) c.#receive(chunk);
  };

  static readonly #onTimeoutOrError = function (this: Carrier): void {
    this[CONNECTION]?.close();
  };

  static readonly #onSocketClose = function (this: Carrier): void {
    const c = this[CONNECTION];
    if (c === undefined) return;
    c.#closed = true;
    c.#onClose(c);
  };

  #receive(chunk: Buffer): void {
    const framer = this.#framer ?? lendFramer(this.#options.maxMessageSize);
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
      if (frame.kind === "message") this.#onMessage(frame.bytes, this);
      else if (frame.kind === "ping") this.#pong();
    }
    if (framer.pending === 0) {
      this.#framer = undefined;
      giveBackFramer(this.#options.maxMessageSize, framer);
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
    const options = this.#options;
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
    return new StreamConnection(socket, tls === undefined ? "tcp" : "tls", options, onMessage, onClose, {
      address: host,
      port,
    });
  }

  peerNames(): readonly string[] {
    if (this.#peerNames === undefined) {
      this.#peerNames = this.#socket instanceof TLSSocket ? certificateNames(this.#socket) : [];
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
    this.#queue ??= new SendQueue(this.#options, () => this.close());
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
  /** For TLS: node:tls server options (cert, key, ca, requestCert, …). */
  readonly tls?: TlsOptions;
  /** ms a TLS handshake may take (limits.handshakeTimeout). */
  readonly handshakeTimeout?: number;
}

/** A TCP or TLS listener that turns each accepted socket into a StreamConnection. */
export class StreamListener extends ConnectionListener {
  readonly transport: "tcp" | "tls";

  private constructor(server: Server, transport: "tcp" | "tls", admission: ListenerAdmission | undefined) {
    super(server, admission);
    this.transport = transport;
  }

  static async listen(options: StreamListenerOptions, onMessage: MessageHandler): Promise<StreamListener> {
    const transport = options.tls === undefined ? "tcp" : "tls";
    const server =
      options.tls === undefined
        ? createTcpServer()
        : createTlsServer(hardened({ ...options.tls, handshakeTimeout: options.handshakeTimeout }));
    const listener = new StreamListener(server, transport, options.admission);
    if (options.tls !== undefined) listener.trackHandshakes(options.tls);
    const accept = (socket: Socket | TLSSocket) => {
      if (socket.destroyed) return; // refused at the door
      listener.add(new StreamConnection(socket, transport, options, onMessage, (closed) => listener.remove(closed)));
    };
    server.on(transport === "tls" ? "secureConnection" : "connection", accept);
    await listener.bind(options);
    return listener;
  }
}
