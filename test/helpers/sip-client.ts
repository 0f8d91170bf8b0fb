import { createSocket } from "node:dgram";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { parseMessage, type SipMessage, StreamFramer } from "../../src/sip/index.ts";
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

/** A SIP client over TCP or Node's TLS client: sends messages, collects framed messages. */
export class StreamClient {
  readonly messages: SipMessage[] = [];
  readonly #socket: Socket;
  #closed = false;
  readonly #framer = new StreamFramer({ maxMessageSize: 65536 });

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#framer.push(chunk);
      for (let r = this.#framer.next(); r.ok && r.value !== null; r = this.#framer.next()) {
        if (r.value.kind !== "message") continue;
        const m = parseMessage(Buffer.from(r.value.bytes));
        if (m.ok) this.messages.push(m.value);
      }
    });
    socket.on("close", () => {
      this.#closed = true;
    });
    socket.on("error", () => {});
  }

  static async connect(port: number, tls: boolean): Promise<StreamClient> {
    const socket = tls
      ? tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.2" })
      : netConnect({ host: "127.0.0.1", port });
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
