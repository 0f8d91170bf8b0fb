import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from "node:tls";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import { type MessageHandler, newFlowId, secondsNow } from "./flow.ts";
import {
  type Connection,
  ConnectionListener,
  DEFAULT_HANDSHAKE_TIMEOUT,
  type ListenOptions,
  type ServerTls,
} from "./listener.ts";
import type { PoolSlot } from "./pool.ts";
import { SendQueue } from "./send-queue.ts";
import type { StreamOptions } from "./stream.ts";
import { certificateNames, tcpSocketOf } from "./tls-peer.ts";
import { hardened } from "./tls-policy.ts";

/** RFC 7118 §4.1: the WebSocket subprotocol SIP is spoken in. */
const SUBPROTOCOL = "sip";

/** An HTTP request that never becomes a WebSocket gets this long to finish its headers (slowloris). */
const UPGRADE_TIMEOUT = 10_000;

/**
 * One SIP-over-WebSocket connection (RFC 7118): every WebSocket message is
 * exactly one SIP message, so there is no Content-Length framing; a message
 * of nothing but CRLFs is an RFC 5626 keep-alive ping and gets a CRLF pong.
 * Messages go out as text frames when they are UTF-8 (RFC 7118 §5.1), else
 * binary.
 */
export class WsConnection implements Connection {
  readonly id = newFlowId();
  readonly opened = secondsNow();
  readonly transport = "wss" as const;
  readonly reliable = true;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly #ws: WebSocket;
  readonly #socket: TLSSocket;
  readonly #queue: SendQueue;
  #closed = false;
  #peerNames: readonly string[] | undefined;

  constructor(
    ws: WebSocket,
    socket: TLSSocket,
    options: StreamOptions,
    onMessage: MessageHandler,
    onClose: (c: WsConnection) => void,
  ) {
    this.#ws = ws;
    this.#socket = socket;
    this.#queue = new SendQueue(options, () => this.close());
    // Of the TCP socket, as a StreamConnection asks it: the gate's question cached the answer there.
    const peer = tcpSocketOf(socket);
    this.remoteAddress = peer.remoteAddress ?? "";
    this.remotePort = peer.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    socket.setNoDelay(true);
    if ((options.idleTimeout ?? 0) > 0) {
      socket.setTimeout(options.idleTimeout as number);
      socket.on("timeout", () => this.close());
    }
    ws.on("message", (data: RawData) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (isKeepAlive(bytes)) this.#pong();
      else onMessage(bytes, this);
    });
    // A protocol error (oversized message, bad frame) ends this connection only.
    ws.on("error", () => this.close());
    ws.on("close", () => {
      this.#closed = true;
      onClose(this);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  peerNames(): readonly string[] {
    if (this.#peerNames === undefined) this.#peerNames = certificateNames(this.#socket);
    return this.#peerNames;
  }

  send(slices: readonly Uint8Array[], urgent = false): boolean {
    if (this.#closed) return false;
    return this.#write(this.#queue.take(this.#ws.bufferedAmount, slices, urgent));
  }

  /** RFC 5626 §4.4.1 over RFC 7118: a message of CRLFs is a ping and gets a CRLF pong, when the queue allows one. */
  #pong(): void {
    if (!this.#closed) this.#write(this.#queue.pong(this.#ws.bufferedAmount));
  }

  /** Sends a slot the queue gave (a message or a pong); false when it gave none. */
  #write(slot: PoolSlot | undefined): boolean {
    if (slot === undefined) return false;
    const message = slot.bytes;
    // ws calls back once the frame is written, or with the error when it never will be.
    this.#ws.send(message, { binary: !isUtf8(message) }, () => this.#queue.written(slot));
    return true;
  }

  /** Through ws, which otherwise resumes the socket itself once its receiver drains. */
  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }

  /** Without a closing handshake: a slow or silent peer must not hold it open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.terminate();
  }
}

function isKeepAlive(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}

export interface WsListenerOptions extends StreamOptions, ListenOptions {
  readonly tls: ServerTls;
  /** Origins (serialised as browsers send them) whose pages may connect; undefined: any. */
  readonly allowedOrigins?: ReadonlySet<string> | undefined;
  /** ms a TLS handshake may take (limits.handshakeTimeout). */
  readonly handshakeTimeout?: number;
}

/**
 * A secure WebSocket listener (RFC 7118): HTTPS that accepts only upgrades
 * offering the `sip` subprotocol; any other request is refused at once.
 */
export class WsListener extends ConnectionListener {
  readonly transport = "wss" as const;

  static async listen(options: WsListenerOptions, onMessage: MessageHandler): Promise<WsListener> {
    const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    const server = createServer({
      ...hardened(options.tls.options),
      handshakeTimeout,
      headersTimeout: UPGRADE_TIMEOUT,
      requestTimeout: UPGRADE_TIMEOUT,
    });
    const listener = new WsListener(server, options);
    // A name's server (SNI) runs the handshake alone, then hands the secure socket to this HTTPS server;
    // it offers HTTP/1.1 by ALPN as an HTTPS server does.
    const serverFor = (tls: TlsOptions) =>
      createTlsServer(hardened({ ...tls, handshakeTimeout, ALPNProtocols: ["http/1.1"] }));
    listener.serveTls(options.tls, { serverFor, handshakeTimeout });
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // WebSocket Ping frames (RFC 6455 §5.5.2) ws answers itself, and it terminates a peer with more
      // than maxPendingAutoPongs (60 by default) of those answers unwritten: bounded without our queue.
      maxPayload: options.maxMessageSize,
      handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!originAllowed(req.headers.origin, options.allowedOrigins)) {
        socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim().toLowerCase());
      if (!offered.includes(SUBPROTOCOL)) {
        socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const tlsSocket = req.socket as TLSSocket;
        listener.add(new WsConnection(ws, tlsSocket, options, onMessage, (closed) => listener.remove(closed)));
      });
    });
    server.on("request", (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(426, { Upgrade: "websocket", Connection: "close", "Content-Length": "0" }).end();
    });
    await listener.bind(options);
    return listener;
  }
}

/**
 * RFC 6455 §10.2: a browser names the page's origin, so a listener that
 * lists origins refuses a page from elsewhere (a site the user happens to
 * visit must not register their browser as a phone here). A client that
 * sends no Origin is no browser, and could send any Origin it liked: the
 * header says nothing of it, so it is let in.
 */
function originAllowed(origin: string | undefined, allowed: ReadonlySet<string> | undefined): boolean {
  return allowed === undefined || origin === undefined || allowed.has(origin);
}
