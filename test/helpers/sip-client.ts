import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { parseMessage, type SipMessage, StreamFramer } from "../../src/sip/index.ts";
import { request, respond } from "./dialog.ts";
import { sleep } from "./net.ts";

/** Sends one datagram to 127.0.0.1:port (from `from`) and collects whatever comes back within waitMs. */
export async function udpExchange(
  port: number,
  message: Buffer | string,
  waitMs = 400,
  from = "127.0.0.1",
): Promise<SipMessage[]> {
  const socket = createSocket("udp4");
  const got: SipMessage[] = [];
  socket.on("message", (m) => {
    const r = parseMessage(m);
    if (r.ok) got.push(r.value);
  });
  await new Promise<void>((resolve) => socket.bind(0, from, () => resolve()));
  socket.send(typeof message === "string" ? Buffer.from(message, "latin1") : message, port, "127.0.0.1");
  await sleep(waitMs);
  socket.close();
  return got;
}

/** Calls `each` with every SIP message framed from what `socket` reads, the moment it is read. */
export function onSipMessages(socket: Socket, each: (m: SipMessage) => void): void {
  const framer = new StreamFramer({ maxMessageSize: 65536 });
  socket.on("data", (chunk: Buffer) => {
    framer.push(chunk);
    for (let r = framer.next(); r.ok && r.value !== null; r = framer.next()) {
      if (r.value.kind !== "message") continue;
      const m = parseMessage(Buffer.from(r.value.bytes));
      if (m.ok) each(m.value);
    }
  });
}

/** A SIP client over TCP or Node's TLS client: sends messages, collects framed messages. */
export class StreamClient {
  readonly messages: SipMessage[] = [];
  readonly #socket: Socket;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    onSipMessages(socket, (m) => this.messages.push(m));
    socket.on("close", () => {
      this.#closed = true;
    });
    socket.on("error", () => {});
  }

  static async connect(port: number, tls: boolean, host = "127.0.0.1"): Promise<StreamClient> {
    const socket = tls
      ? tlsConnect({ host, port, rejectUnauthorized: false, minVersion: "TLSv1.2" })
      : netConnect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    return new StreamClient(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get localPort(): number {
    return this.#socket.localPort ?? 0;
  }

  send(message: Buffer | string): void {
    this.#socket.write(typeof message === "string" ? Buffer.from(message, "latin1") : message);
  }

  /** Waits until a message matches, or fails after timeoutMs. */
  async waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 5000): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.find(pred);
      if (m !== undefined) return m;
      if (Date.now() > deadline)
        throw new Error(`no matching message within ${timeoutMs} ms (got ${this.messages.length})`);
      await sleep(20);
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A message a UdpPeer received, and the address and port it came from. */
export interface Received {
  readonly msg: SipMessage;
  readonly port: number;
  readonly address: string;
}

/**
 * A SIP peer on a UDP socket that a test drives by hand (a backend or a
 * registrar doing what no sipp scenario does). Answers OPTIONS probes with
 * 200 when told to; keeps everything else for the test to take.
 */
export class UdpPeer {
  readonly #socket: UdpSocket;
  readonly #inbox: Received[] = [];

  private constructor(socket: UdpSocket) {
    this.#socket = socket;
  }

  static async bind(answerProbes: boolean): Promise<UdpPeer> {
    const socket = createSocket("udp4");
    const peer = new UdpPeer(socket);
    socket.on("message", (m, rinfo) => {
      const r = parseMessage(m);
      if (!r.ok) return;
      if (answerProbes && r.value.kind === "request" && r.value.method === "OPTIONS") {
        socket.send(respond(r.value, 200, "OK"), rinfo.port, rinfo.address);
      } else {
        peer.#inbox.push({ msg: r.value, port: rinfo.port, address: rinfo.address });
      }
    });
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    return peer;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  send(message: string, port: number, address = "127.0.0.1"): void {
    this.#socket.send(Buffer.from(message, "latin1"), port, address);
  }

  /**
   * Sends a request the way a registrar uses a stored Path: with the Path
   * value as its Route, to the sipedge port that value names.
   */
  sendThroughPath(path: string, o: { method: string; uri: string; callId: string; text?: string }): void {
    const { method, uri, callId, text } = o;
    const routed = request({
      method,
      uri,
      transport: "UDP",
      localPort: this.port,
      callId,
      cseq: 1,
      branch: callId,
      routes: [path],
      ...(text === undefined ? {} : { text }),
    });
    this.send(routed, Number(/:(\d+);/.exec(path)?.[1]));
  }

  /** Takes the first message that matches (and where it came from), or fails after timeoutMs. */
  async take(pred: (m: SipMessage) => boolean, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#inbox.findIndex((e) => pred(e.msg));
      if (i >= 0) return this.#inbox.splice(i, 1)[0] as Received;
      if (Date.now() > deadline) throw new Error(`UDP peer: nothing matching within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  close(): void {
    this.#socket.close();
  }
}
