import type { Server, Socket } from "node:net";
import type { TLSSocket, TlsOptions, Server as TlsServer } from "node:tls";
import type { Flow } from "./flow.ts";
import { type HandshakeStats, handshakeStats, recordHandshake } from "./handshakes.ts";

/** A flow a listener accepted and may close (drain, shutdown, slow reader). */
export interface Connection extends Flow {
  close(): void;
}

export interface ListenOptions {
  readonly address: string;
  readonly port: number;
  readonly backlog: number;
  /** Every IO worker listens on the same port; the kernel spreads connections. */
  readonly reusePort?: boolean;
}

/**
 * What every connection-oriented listener (TCP, TLS, WSS) shares: the
 * server socket, the connections it accepted, TLS handshake timing and
 * the drain and close steps. Subclasses turn accepted sockets into flows.
 */
export abstract class ConnectionListener {
  abstract readonly transport: "tcp" | "tls" | "wss";
  /** TLS listeners: handshakes done and failed, and how long they took. */
  handshakes: HandshakeStats | undefined;
  readonly #server: Server;
  readonly #connections = new Map<number, Connection>();

  protected constructor(server: Server) {
    this.#server = server;
  }

  /** Binds with the kernel's full backlog (and reusePort for IO workers). */
  protected async bind(options: ListenOptions): Promise<void> {
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const { address: host, port, backlog, reusePort = false } = options;
      server.listen({ host, port, backlog, reusePort }, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  protected add(c: Connection): void {
    this.#connections.set(c.id, c);
  }

  protected remove(c: Connection): void {
    this.#connections.delete(c.id);
  }

  /**
   * Times each handshake from the TCP accept to the secure connection,
   * keyed by the peer's address; a failed handshake concerns one client only.
   */
  protected trackHandshakes(tls: TlsOptions): void {
    const stats = handshakeStats((tls.cert as string | Buffer | undefined) ?? "");
    this.handshakes = stats;
    const started = new Map<string, bigint>();
    const key = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;
    this.#server.on("connection", (s: Socket) => {
      started.set(key(s), process.hrtime.bigint());
      s.once("close", () => started.delete(key(s)));
    });
    this.#server.on("secureConnection", (s: TLSSocket) => {
      const t = started.get(key(s));
      if (t === undefined) return;
      started.delete(key(s));
      recordHandshake(stats, Number(process.hrtime.bigint() - t) / 1e9);
    });
    this.#server.on("tlsClientError", (_e: Error, socket: Socket) => {
      stats.failed++;
      socket.destroy();
    });
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a !== null ? a.port : 0;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Every live connection (for per-trunk counts at a scrape). */
  connections(): IterableIterator<Connection> {
    return this.#connections.values();
  }

  /** The live connection with this flow id, if any. */
  connection(id: number): Connection | undefined {
    return this.#connections.get(id);
  }

  /** New certificates for new handshakes; connections already up keep theirs. */
  setSecureContext(options: TlsOptions): void {
    (this.#server as TlsServer).setSecureContext(options);
  }

  /** No new connections; those open carry on (SIGTERM drain). */
  stopAccepting(): void {
    this.#server.close();
  }

  async close(): Promise<void> {
    for (const c of this.#connections.values()) c.close();
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A verified TLS peer's certificate names: subject CN and SAN DNS entries, lower case. */
export function certificateNames(socket: TLSSocket): readonly string[] {
  if (!socket.authorized) return [];
  const cert = socket.getPeerCertificate();
  const cn = cert.subject?.CN;
  const names = (Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]).map((n) => n.toLowerCase());
  for (const entry of (cert.subjectaltname ?? "").split(", ")) {
    if (entry.startsWith("DNS:")) names.push(entry.slice(4).toLowerCase());
  }
  return names;
}
