import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP, isIPv6 } from "node:net";
import { classifyDatagram } from "../sip/index.ts";
import { type Flow, type MessageHandler, newFlowId } from "./flow.ts";
import { listening } from "./listening.ts";
import type { BufferPool, PoolSlot } from "./pool.ts";
import { stunBindingResponse } from "./stun.ts";

export interface UdpOptions {
  /** Every IO worker binds the same port and the kernel spreads datagrams by peer. */
  readonly reusePort?: boolean;
  /**
   * Bytes the kernel may queue for us (SO_RCVBUF; Linux counts about 1.2 KiB
   * for a small datagram). A client socket's queue should hold well under T1
   * of reading: a request that waits longer in it has already been sent
   * again (RFC 3261 §17.1.1.2), and under a flood both copies get answered,
   * which doubles the work of refusing it. Default 4 MiB.
   */
  readonly receiveBuffer?: number;
}

/** Datagrams a UDP endpoint dropped, by why (for a worker's stats; the data path only counts). */
export interface UdpDrops {
  /**
   * Datagrams from source port 0: RFC 768 has a zero source port mean the
   * sender named none to reply to, dgram refuses to send to it, and no SIP
   * or STUN peer sends from it; only a forged or broken packet does.
   */
  sourcePortZero: number;
  /** Datagrams dgram refused to send (a bad port, a closed socket): dropped, not thrown. */
  sendFailed: number;
}

/**
 * Datagrams libuv reads from one socket per turn of the event loop before it
 * serves the others (libuv src/unix/udp.c, uv__udp_recvmsg: "count = 32",
 * against loop starvation). A turn that read this many found the socket
 * still holding more.
 */
const READS_PER_TURN = 32;

/**
 * How a socket's reads fell into turns of the event loop (monotonic, for
 * the CPU ration: proxy/shedder.ts). A loop that keeps up drains the
 * socket in each turn; one falling behind reads a full batch every turn.
 */
export interface ReadTurns {
  /** Turns in which the socket had at least one datagram. */
  turns: number;
  /** Of those, turns that read READS_PER_TURN: a backlog was left in the kernel. */
  full: number;
}

/**
 * A UDP socket: every datagram is one message (RFC 3261 §18.3); CRLF and
 * STUN keep-alives (RFC 5626 §3.5.1) are not SIP and are not passed on;
 * a STUN Binding request gets its answer here.
 * Each peer address is a flow; flows are made per datagram and are cheap.
 */
export class UdpEndpoint {
  readonly #socket: Socket;
  readonly #onMessage: MessageHandler;
  readonly #pool: BufferPool;
  #address = "";
  #port = 0;
  #closed = false;
  readonly #backlog: SendBacklog;
  readonly drops: UdpDrops = { sourcePortZero: 0, sendFailed: 0 };
  readonly readTurns: ReadTurns = { turns: 0, full: 0 };
  /** Datagrams read in this turn so far; the turn's end (setImmediate: after the poll phase) files them. */
  #readsThisTurn = 0;
  readonly #turnEnded = (): void => {
    this.readTurns.turns++;
    if (this.#readsThisTurn >= READS_PER_TURN) this.readTurns.full++;
    this.#readsThisTurn = 0;
  };

  constructor(onMessage: MessageHandler, pool: BufferPool, ipv6: boolean, reusePort: boolean, receiveBuffer: number) {
    this.#onMessage = onMessage;
    this.#pool = pool;
    this.#socket = createSocket({
      type: ipv6 ? "udp6" : "udp4",
      recvBufferSize: receiveBuffer,
      sendBufferSize: 4 << 20,
      reusePort,
      lookup: literalOnly,
    });
    this.#backlog = new SendBacklog(pool, () => this.#socket.getSendQueueCount());
    this.#socket.on("message", (msg, rinfo) => this.#receive(msg, rinfo));
    // A send error (ICMP unreachable, EPERM) concerns one datagram; the socket lives on.
    this.#socket.on("error", () => {});
  }

  static async bind(
    address: string,
    port: number,
    onMessage: MessageHandler,
    pool: BufferPool,
    options: UdpOptions = {},
  ): Promise<UdpEndpoint> {
    const reusePort = options.reusePort ?? false;
    const endpoint = new UdpEndpoint(onMessage, pool, isIPv6(address), reusePort, options.receiveBuffer ?? 4 << 20);
    const bound = await listening(endpoint.#socket, (s) => s.bind({ address, port, exclusive: !reusePort }));
    endpoint.#address = bound.address;
    endpoint.#port = bound.port;
    return endpoint;
  }

  get address(): string {
    return this.#address;
  }

  get port(): number {
    return this.#port;
  }

  /** A flow towards any address, for messages sipedge originates (to backends, or to a UDP client). */
  flowTo(remoteAddress: string, remotePort: number): Flow {
    return new UdpFlow(this, remoteAddress, remotePort);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one datagram from a pool slot; false when closed or no slot is free. */
  sendTo(slices: readonly Uint8Array[], urgent: boolean, port: number, address: string): boolean {
    if (this.#closed) return false;
    const pool = this.#pool;
    const slot = pool.copy(slices, urgent);
    if (slot === undefined) return false;
    if (!this.#send(slot.bytes, port, address)) {
      pool.release(slot);
      return false;
    }
    this.#backlog.sent(slot);
    return true;
  }

  /**
   * dgram.send throws at once for what it refuses before queueing (a port
   * out of 1–65535, a closed socket): one datagram lost, counted; the
   * caller's message handling goes on. Errors found later (a name refused by
   * literalOnly, ICMP) come to the socket's error event, which ignores them.
   */
  #send(bytes: Buffer, port: number, address: string): boolean {
    try {
      // No callback: with one, dgram defers it to process.nextTick even when
      // the kernel took the datagram at once (the usual case); SendBacklog
      // learns the rest from the send queue's length instead.
      this.#socket.send(bytes, port, address);
      return true;
    } catch {
      this.drops.sendFailed++;
      return false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    // Closing cancels what libuv still queued: no datagram reads its slot any more.
    this.#backlog.releaseAll();
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#readsThisTurn++ === 0) setImmediate(this.#turnEnded);
    // Nothing can be answered at port 0 (see UdpDrops): a flow to it would only fail later, in the proxy.
    if (rinfo.port === 0) {
      this.drops.sourcePortZero++;
      return;
    }
    const kind = classifyDatagram(msg);
    if (kind === "sip") {
      this.#onMessage(msg, this.flowTo(rinfo.address, rinfo.port));
    } else if (kind === "stun") {
      // RFC 5626 §8: a SIP server answers STUN keep-alives on its SIP port.
      const answer = stunBindingResponse(msg, rinfo.address, rinfo.port);
      if (answer !== undefined) this.#send(answer, rinfo.port, rinfo.address);
    }
  }
}

/**
 * One UDP peer as a flow: made for every datagram, so a plain class (one
 * hidden class, no closures or accessors defined per message).
 */
class UdpFlow implements Flow {
  readonly id = newFlowId();
  readonly transport = "udp";
  readonly reliable = false;
  readonly #endpoint: UdpEndpoint;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(endpoint: UdpEndpoint, remoteAddress: string, remotePort: number) {
    this.#endpoint = endpoint;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.localAddress = endpoint.address;
    this.localPort = endpoint.port;
  }

  get closed(): boolean {
    return this.#endpoint.closed;
  }

  send(slices: readonly Uint8Array[], urgent = false): boolean {
    return this.#endpoint.sendTo(slices, urgent, this.remotePort, this.remoteAddress);
  }

  peerNames(): readonly string[] {
    return NO_NAMES;
  }
}

const NO_NAMES: readonly string[] = [];

/**
 * The slots of datagrams the kernel has not taken yet. A send the kernel
 * takes at once (uv_udp_try_send) is copied by then, and its slot is free
 * when send() returns; one it refuses for now (its send buffer full) waits
 * in libuv's queue, which is FIFO and which every later send joins while
 * it is not empty, so with `pending()` datagrams queued, the slots of all
 * but the last `pending()` sends may go. The queue also counts sends of
 * ours that hold no slot (STUN answers): then slots are kept a little
 * longer, never released early.
 */
export class SendBacklog {
  readonly #pool: BufferPool;
  readonly #pending: () => number;
  readonly #slots: PoolSlot[] = [];
  #check: ReturnType<typeof setTimeout> | undefined;

  constructor(pool: BufferPool, pending: () => number) {
    this.#pool = pool;
    this.#pending = pending;
  }

  /** The datagram in `slot` went to the socket. */
  sent(slot: PoolSlot): void {
    const pending = this.#pending();
    if (pending === 0 && this.#slots.length === 0) {
      this.#pool.release(slot);
      return;
    }
    this.#slots.push(slot);
    this.#settle(pending);
  }

  /** The socket is closed: its queue with it. */
  releaseAll(): void {
    this.#settle(0);
  }

  get held(): number {
    return this.#slots.length;
  }

  #settle(pending: number): void {
    while (this.#slots.length > pending) this.#pool.release(this.#slots.shift() as PoolSlot);
    if (this.#slots.length === 0) {
      if (this.#check !== undefined) clearTimeout(this.#check);
      this.#check = undefined;
    } else if (this.#check === undefined) {
      // Nothing calls back when the queue drains: look again shortly.
      this.#check = setTimeout(() => {
        this.#check = undefined;
        this.#settle(this.#pending());
      }, BACKLOG_CHECK_MS);
      this.#check.unref();
    }
  }
}

/** How soon a full send buffer is looked at again: a few ms drains megabytes on any link that fills it. */
const BACKLOG_CHECK_MS = 5;

/**
 * dgram's lookup for sends: every address sipedge sends to is an IP literal
 * (members are configured as IPs, clients are where datagrams came from),
 * so it answers at once. dgram's default runs dns.lookup, which answers an
 * IP literal on the next tick: a deferral per datagram for nothing. A name
 * would mean a bug, and is refused: no DNS on the data path.
 */
function literalOnly(
  address: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const version = isIP(address);
  if (version !== 0) callback(null, address, version);
  else callback(Object.assign(new Error(`not an IP address: ${address}`), { code: "EINVAL" }), "", 0);
}
