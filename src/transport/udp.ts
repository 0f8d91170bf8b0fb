import { isIPv6 } from "node:net";
import { classifyDatagram } from "../sip/index.ts";
import { DatagramSocket, READS_PER_TURN } from "./datagram-socket.ts";
import { type Flow, type MessageHandler, newFlowId } from "./flow.ts";
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
   * sender named none to reply to, the kernel refuses to send to it, and no SIP
   * or STUN peer sends from it; only a forged or broken packet does.
   */
  sourcePortZero: number;
  /**
   * Datagrams lost on the way out: an address that is not an IP literal of
   * the socket's family (no DNS on the data path), a bad port, the kernel's
   * send buffer full, a message larger than a datagram. Dropped, not thrown.
   */
  sendFailed: number;
}

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

/** The largest datagram sipedge sends: the largest UDP payload over IPv6 (RFC 8200 §5 less the 8-byte header). */
const MAX_DATAGRAM = 65527;

/**
 * A UDP socket: every datagram is one message (RFC 3261 §18.3); CRLF and
 * STUN keep-alives (RFC 5626 §3.5.1) are not SIP and are not passed on;
 * a STUN Binding request gets its answer here.
 * Each peer address is a flow; flows are made per datagram and are cheap.
 */
export class UdpEndpoint {
  readonly #socket: DatagramSocket;
  readonly #onMessage: MessageHandler;
  readonly #address: string;
  /** Where a message of several slices is put together to go out as one datagram. */
  #joined: Buffer | undefined;
  /** Drops counted here; the socket counts the sends lost at a batch's end. */
  readonly #drops: UdpDrops = { sourcePortZero: 0, sendFailed: 0 };
  readonly readTurns: ReadTurns = { turns: 0, full: 0 };

  private constructor(address: string, port: number, onMessage: MessageHandler, options: Required<UdpOptions>) {
    this.#onMessage = onMessage;
    this.#address = address;
    this.#socket = new DatagramSocket(
      address,
      port,
      isIPv6(address),
      { reusePort: options.reusePort, receiveBuffer: options.receiveBuffer, sendBuffer: 4 << 20 },
      (bytes, from, fromPort) => this.#receive(bytes, from, fromPort),
      (count) => this.#turn(count),
    );
  }

  /** Binds at once; a refused bind rejects with the errno's code (EADDRINUSE), as dgram's did. */
  static async bind(
    address: string,
    port: number,
    onMessage: MessageHandler,
    options: UdpOptions = {},
  ): Promise<UdpEndpoint> {
    return new UdpEndpoint(address, port, onMessage, {
      reusePort: options.reusePort ?? false,
      receiveBuffer: options.receiveBuffer ?? 4 << 20,
    });
  }

  get address(): string {
    return this.#address;
  }

  get port(): number {
    return this.#socket.port;
  }

  /** A flow towards any address, for messages sipedge originates (to backends, or to a UDP client). */
  flowTo(remoteAddress: string, remotePort: number): Flow {
    return new UdpFlow(this, remoteAddress, remotePort);
  }

  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Datagrams dropped so far, by why. */
  get drops(): UdpDrops {
    const { sourcePortZero, sendFailed } = this.#drops;
    return { sourcePortZero, sendFailed: sendFailed + this.#socket.lost };
  }

  /**
   * Sends one datagram; false when closed or when the datagram was lost
   * (counted: a bad port or address, a full send buffer, a message larger
   * than a datagram). The bytes are the kernel's, or copied, when this
   * returns; made while a batch is handled, it leaves at the batch's end
   * (DatagramSocket.send), and a loss there is counted, not returned.
   */
  sendTo(slices: readonly Uint8Array[], port: number, address: string): boolean {
    if (this.#socket.closed) return false;
    const bytes = slices.length === 1 ? (slices[0] as Uint8Array) : this.#join(slices);
    if (bytes === undefined) {
      this.#drops.sendFailed++;
      return false;
    }
    return this.#send(bytes, port, address);
  }

  #send(bytes: Uint8Array, port: number, address: string): boolean {
    if (this.#socket.send(bytes, bytes.length, port, address) === 0) return true;
    this.#drops.sendFailed++;
    return false;
  }

  /** The slices copied into one buffer, or undefined when they make more than a datagram holds. */
  #join(slices: readonly Uint8Array[]): Uint8Array | undefined {
    let length = 0;
    for (const s of slices) length += s.length;
    if (length > MAX_DATAGRAM) return undefined;
    this.#joined ??= Buffer.allocUnsafeSlow(MAX_DATAGRAM);
    const joined = this.#joined;
    let at = 0;
    for (const s of slices) {
      joined.set(s, at);
      at += s.length;
    }
    return joined.subarray(0, length);
  }

  close(): void {
    this.#socket.close();
  }

  #turn(count: number): void {
    this.readTurns.turns++;
    if (count >= READS_PER_TURN) this.readTurns.full++;
  }

  #receive(msg: Buffer, address: string, port: number): void {
    // Nothing can be answered at port 0 (see UdpDrops): a flow to it would only fail later, in the proxy.
    if (port === 0) {
      this.#drops.sourcePortZero++;
      return;
    }
    const kind = classifyDatagram(msg);
    if (kind === "sip") {
      this.#onMessage(msg, this.flowTo(address, port));
    } else if (kind === "stun") {
      // RFC 5626 §8: a SIP server answers STUN keep-alives on its SIP port.
      const answer = stunBindingResponse(msg, address, port);
      if (answer !== undefined) this.#send(answer, port, address);
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

  /** Urgency (Flow.send) is about pool slots, which a datagram holds none of: its bytes are the kernel's, or copied, at once. */
  send(slices: readonly Uint8Array[]): boolean {
    return this.#endpoint.sendTo(slices, this.remotePort, this.remoteAddress);
  }

  peerNames(): readonly string[] {
    return NO_NAMES;
  }
}

const NO_NAMES: readonly string[] = [];
