import type { Server, Socket } from "node:net";
import type { SecureContext, TLSSocket, TlsOptions, Server as TlsServer } from "node:tls";
import { listenerLabel } from "./address.ts";
import { type Flow, secondsNow } from "./flow.ts";
import { handshakeFailure } from "./handshake-failures.ts";
import { keyTypeOf, keyTypesOf, ListenerHandshakes, onlyKeyType, recordHandshake } from "./handshakes.ts";
import { listening } from "./listening.ts";
import { type NamedServerTls, readServerName, ServerNames } from "./server-names.ts";
import type { SessionTickets } from "./ticket-keys.ts";
import { tcpSocketOf } from "./tls-peer.ts";
import { hardened } from "./tls-policy.ts";

/** A TLS listener's server options, and the session ticket keys its contexts share with every worker's. */
export interface ServerTls {
  /** For a client that asks for no name, or for one no `named` entry has. */
  readonly options: TlsOptions;
  /** Per server name, other options (SNI); empty: `options` for every client, and no ClientHello read first. */
  readonly named: readonly NamedServerTls[];
  readonly tickets: SessionTickets;
}

/** How a TLS listener makes a server for a name's options, as it made its own, and how long a handshake may take. */
export interface TlsServing {
  readonly serverFor: (options: TlsOptions) => TlsServer;
  readonly handshakeTimeout: number;
}

/** node:tls's own handshakeTimeout default, for a listener given none (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 120_000;

/** A TLS server's default context (node:tls keeps it there; setSecureContext replaces it). */
function defaultContext(server: Server): SecureContext {
  return (server as unknown as { _sharedCreds: SecureContext })._sharedCreds;
}

/** A flow a listener accepted and may close (drain, shutdown, slow reader) or stop reading for a while. */
export interface Connection extends Flow {
  /** When it was accepted, in secondsNow()'s seconds (flow.ts). */
  readonly opened: number;
  close(): void;
  /** Stop reading: what the peer sends waits in the kernel, then its TCP window closes. */
  pause(): void;
  resume(): void;
}

export interface ListenOptions {
  readonly address: string;
  readonly port: number;
  readonly backlog: number;
  /** Every IO worker listens on the same port; the kernel spreads connections. */
  readonly reusePort?: boolean;
  /** Client-facing listeners: who may connect, and how many TLS handshakes may run at once. */
  readonly admission?: ListenerAdmission;
  /**
   * Client-facing listeners: whether a connection may stay once it is
   * known who it is (after the TLS handshake, its certificate verified or
   * not); why not, else undefined. Counted in `admission.refused`.
   */
  readonly identify?: (c: Flow) => IdentityRefusal | undefined;
}

/**
 * Why a new connection was closed at once: too many in all, from its
 * address, from an address the listener does not serve (the backend side:
 * no configured member), handshaking, the pool critically low, or the thread saturated.
 */
export type GateRefusal = "limit" | "per_ip" | "stranger";
/**
 * Why a connection was closed once its peer was known: a verified
 * certificate that names no trunk on a listener with `unknownClient:
 * refuse`, or none from a `requireCert` trunk's address (proxy/trunks.ts).
 */
export type IdentityRefusal = "unknown_client" | "certificate_required";
export type Refusal = GateRefusal | IdentityRefusal | "handshakes" | "pool" | "load";

/** No refusals yet, one count per reason. */
export function noRefusals(): Record<Refusal, number> {
  return {
    limit: 0,
    per_ip: 0,
    stranger: 0,
    handshakes: 0,
    pool: 0,
    load: 0,
    unknown_client: 0,
    certificate_required: 0,
  };
}

/** A connection younger than this (s) is new: the first not read when buffers run critically low. */
export const NEW_CONNECTION_SECONDS = 30;

/** Connection counts shared by every IO worker (limits.maxConnections, limits.maxConnectionsPerIp). */
export interface ConnectionGate {
  /** Counts the connection in, or says why it may not come in. */
  enter(address: string): GateRefusal | undefined;
  leave(address: string): void;
  /** A trusted trunk's source address: kept on the priority path when new connections are rationed or shed. */
  trusted(address: string): boolean;
}

export interface ListenerAdmission {
  readonly gate: ConnectionGate;
  /** TLS handshakes under way at once on this listener; more are refused fast (limits.maxHandshakes; SIGHUP may change it). */
  maxHandshakes: number;
  /** What was refused, by reason (shared by the worker's listeners). */
  readonly refused: Record<Refusal, number>;
  /**
   * While the worker's thread is saturated (its CPU ration is on): the
   * TLS handshakes its listeners may still begin in the current window.
   * Each costs the loop a millisecond or more of crypto, and a bound on how
   * many run at once does not bound how many run one after another; a
   * storm of them would starve every established flow. undefined: no ration.
   */
  handshakeRation: number | undefined;
}

/** A worker's admission, for a scrape: the new connections its listeners closed at once, by reason. */
export interface AdmissionStats {
  readonly refused: Readonly<Record<Refusal, number>>;
}

export function admissionStats(a: ListenerAdmission): AdmissionStats {
  return { refused: { ...a.refused } };
}

/**
 * What every connection-oriented listener (TCP, TLS, WSS) shares: the
 * server socket, the connections it accepted, TLS handshake timing and
 * the drain and close steps. Subclasses turn accepted sockets into flows.
 */
export abstract class ConnectionListener {
  abstract readonly transport: "tcp" | "tls" | "wss";
  /** TLS listeners: handshakes done and failed, and how long they took, by the key type of the certificate shown. */
  handshakes: ListenerHandshakes | undefined;
  /** TLS listeners: the ticket keys each default context the server gets is given (at start, on a reload). */
  #tickets: SessionTickets | undefined;
  /** TLS listeners: how a server for a name's options is made, and the servers by name (undefined: none configured). */
  #serving: TlsServing | undefined;
  #names: ServerNames | undefined;
  /**
   * TLS listeners: the key type of every certificate they show, their own and their names'; undefined
   * when they have more than one, and each handshake must be asked which it was shown.
   */
  #keyType: string | undefined;
  /** TLS listeners: node:tls's own 'connection' listener, which wraps a socket in TLS with the server's default context. */
  #wrap: ((socket: Socket) => void) | undefined;
  readonly #server: Server;
  readonly #admission: ListenerAdmission | undefined;
  readonly #identify: ListenOptions["identify"];
  #port = 0;
  readonly #connections = new Map<number, Connection>();

  /** TLS handshakes begun and not yet done or failed. */
  #handshaking = 0;
  /**
   * When each handshake under way began (TLS listeners), by the TCP socket accepted. Not by the
   * peer's address and port: a connection reset while it waited in the accept queue has none
   * (getpeername: ENOTCONN), so all such shared one key, and every one but the first stayed
   * counted under way for good, each holding a limits.maxHandshakes slot.
   */
  readonly #started = new WeakMap<Socket, bigint>();
  /** While buffers are critically low: the connections no longer read. */
  #shedding: Set<Connection> | undefined;

  /** Every accepted socket's 'close' listener, called with the socket as `this`: one function, not a closure each. */
  readonly #acceptedClosed: (this: Admitted) => void;

  protected constructor(server: Server, options: Pick<ListenOptions, "admission" | "identify">) {
    this.#server = server;
    this.#admission = options.admission;
    this.#identify = options.identify;
    const gate = options.admission?.gate;
    const handshakeOver = (s: Socket) => this.#handshakeOver(s);
    this.#acceptedClosed = function (this: Admitted) {
      const address = this[ADMITTED_FROM];
      if (gate !== undefined && address !== undefined) gate.leave(address);
      handshakeOver(this);
    };
    // First of the connection listeners: a refused socket is gone before anyone else sees it live.
    server.on("connection", (s: Socket) => this.#accepted(s, options.admission));
  }

  get handshaking(): number {
    return this.#handshaking;
  }

  /**
   * A handshake storm must not starve established flows, nor a flood of
   * connections the pool: beyond the limits a connection is closed at once,
   * before its TLS handshake costs anything.
   */
  #accepted(s: Socket, a: ListenerAdmission | undefined): void {
    let address: string | undefined;
    if (a !== undefined) {
      address = s.remoteAddress ?? "";
      const refused = this.#refusal(address, a);
      if (refused !== undefined) {
        a.refused[refused]++;
        s.destroy();
        return;
      }
      if (this.handshakes !== undefined && a.handshakeRation !== undefined) a.handshakeRation--;
    }
    const timed = this.handshakes !== undefined;
    if (timed) {
      this.#started.set(s, process.hrtime.bigint());
      this.#handshaking++;
    }
    if (a === undefined && !timed) return;
    // One shared listener for the gate and the handshake timing, not a `once` each nor a closure: a
    // `once` is a wrapper, its state and a bound function, and a third 'close' listener grows the
    // socket's listener array from 2 slots to 19; a closure and its context are ~130 bytes more; all
    // held as long as the connection is open.
    if (address !== undefined) (s as Admitted)[ADMITTED_FROM] = address;
    s.on("close", this.#acceptedClosed);
  }

  /** The handshake over `s` (the TCP socket, or the TLS one over it) is done or failed: when it began, if it was under way. */
  #handshakeOver(s: Socket): bigint | undefined {
    const accepted = tcpSocketOf(s);
    const t = this.#started.get(accepted);
    if (t === undefined) return undefined;
    this.#started.delete(accepted);
    this.#handshaking--;
    return t;
  }

  /** Why a connection from `address` may not come in, if so; the gate counts it in when it may. */
  #refusal(address: string, a: ListenerAdmission): Refusal | undefined {
    // A trusted trunk's sources stay on the priority path while new connections are shed or rationed.
    if (this.#shedding !== undefined && !a.gate.trusted(address)) return "pool";
    if (this.handshakes !== undefined) {
      if (this.#handshaking >= a.maxHandshakes) return "handshakes";
      if (a.handshakeRation !== undefined && a.handshakeRation <= 0 && !a.gate.trusted(address)) return "load";
    }
    return a.gate.enter(address);
  }

  /** Binds with the kernel's full backlog (and reusePort for IO workers). */
  protected async bind(options: ListenOptions): Promise<void> {
    const { address: host, port, backlog, reusePort = false } = options;
    this.#port = (await listening(this.#server, (s) => s.listen({ host, port, backlog, reusePort }))).port;
    if (this.handshakes !== undefined) this.handshakes.listener = listenerLabel(host, this.port);
  }

  /** A connection ready for messages (a TLS one once its handshake is done), unless who it is refuses it. */
  protected add(c: Connection): void {
    const refused = this.#identify?.(c);
    if (refused !== undefined) {
      if (this.#admission !== undefined) this.#admission.refused[refused]++;
      c.close();
      return;
    }
    this.#connections.set(c.id, c);
  }

  /**
   * A reload changed who may stay (a trunk now requireCert, unknownClient
   * refuse): the open connections are judged again, as a new one would be,
   * and those refused now are closed. Asked at the door only, they stayed.
   */
  reidentify(): void {
    for (const c of [...this.#connections.values()]) {
      const refused = this.#identify?.(c);
      if (refused === undefined) continue;
      if (this.#admission !== undefined) this.#admission.refused[refused]++;
      c.close();
    }
  }

  protected remove(c: Connection): void {
    this.#connections.delete(c.id);
    this.#shedding?.delete(c);
  }

  /**
   * The buffer pool is critically low (principle 4): new
   * connections are refused at the door, and the least important open ones
   * are no longer read until buffers return: the new ones (younger than
   * NEW_CONNECTION_SECONDS) that `keep` does not vouch for (a trusted trunk's, one
   * an endpoint registered over). Older connections carry the calls already
   * up and go on being read.
   */
  shed(keep: (c: Connection) => boolean, now = secondsNow()): void {
    const paused = this.#shedding ?? new Set<Connection>();
    this.#shedding = paused;
    for (const c of this.#connections.values()) {
      if (paused.has(c) || now - c.opened >= NEW_CONNECTION_SECONDS || keep(c)) continue;
      c.pause();
      paused.add(c);
    }
  }

  /** Buffers are back: every connection is read again and new ones come in. */
  unshed(): void {
    for (const c of this.#shedding ?? []) c.resume();
    this.#shedding = undefined;
  }

  /** Connections not read while buffers are critically low. */
  get paused(): number {
    return this.#shedding?.size ?? 0;
  }

  /**
   * Makes this a TLS listener: times each handshake from the TCP accept to
   * the secure connection, keyed by the accepted socket, and counts whether
   * it resumed a session; a failed handshake concerns one client only, and
   * is counted by reason. With names of their own (tls.named), a
   * connection's ClientHello is read first and the server for its name runs
   * the handshake (server-names.ts); those servers report here.
   */
  protected serveTls(tls: ServerTls, serving: TlsServing): void {
    const stats = new ListenerHandshakes(keyTypesOf(tls.options));
    this.handshakes = stats;
    this.#keyType = onlyKeyType([tls.options, ...tls.named.map((n) => n.options)]);
    this.#tickets = tls.tickets;
    this.#serving = serving;
    this.#installTickets();
    // After the admission's listener (the constructor's): a socket refused at the door is never wrapped, nor read.
    const [wrap] = this.#server.listeners("connection") as ((socket: Socket) => void)[];
    if (wrap === undefined) throw new Error("a TLS server without node:tls's connection listener");
    this.#server.off("connection", wrap);
    this.#wrap = wrap;
    this.#server.on("connection", (s: Socket) => this.#dispatch(s, stats));
    this.#names = this.#serversByName(tls.named);
    this.#server.on("secureConnection", (s: TLSSocket) => {
      const t = this.#handshakeOver(s);
      // The group agreed on is not told: Node's getEphemeralKeyInfo() answers null on a server's socket.
      if (t !== undefined) {
        const seconds = Number(process.hrtime.bigint() - t) / 1e9;
        // The certificate OpenSSL chose for this client (the listener's ECDSA or RSA one, a name's), asked
        // only when they differ: getX509Certificate() copies the certificate (X509_dup) and its public key
        // into C memory that lives until V8 collects the wrapper, between the held connections' own. With
        // 15 000 connections held under user-mode Linux, asking every time cost 1.2 KiB of RSS a connection
        // (49.8 → 48.6 KiB, two runs each of BENCH_UML=1 BENCH_CONNECTIONS=15000 npm run bench:connections).
        const keyType = this.#keyType ?? keyTypeOf(s.getX509Certificate());
        recordHandshake(stats.of(keyType), seconds, s.getProtocol(), s.isSessionReused());
      }
    });
    this.#server.on("tlsClientError", (e: NodeJS.ErrnoException, socket: TLSSocket) => {
      // A client certificate node refused (clientAuth: require) ends the handshake as a hang-up;
      // why is in its authorizationError (an X509_V_ERR name, whatever @types/node says).
      const refused = socket.authorizationError as unknown as string | undefined;
      stats.failures[handshakeFailure(refused ?? e.code)]++;
      socket.destroy();
    });
  }

  /** A connection let in: to the server for the name it asks for, or to this listener's own. */
  #dispatch(s: Socket, stats: ListenerHandshakes): void {
    if (s.destroyed) return; // refused at the door
    const names = this.#names;
    const own = () => this.#wrap?.call(this.#server, s);
    if (names === undefined) {
      own();
      return;
    }
    readServerName(
      s,
      this.#serving?.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      (servername) => {
        const server = names.lookup(servername);
        if (server === undefined) own();
        else server.emit("connection", s);
      },
      () => stats.failures.other++,
    );
  }

  /** A server per named entry, sealing tickets with the shared keys and reporting to this listener. */
  #serversByName(named: readonly NamedServerTls[]): ServerNames | undefined {
    const serving = this.#serving;
    if (named.length === 0 || serving === undefined) return undefined;
    return new ServerNames(named, (options) => {
      const server = serving.serverFor(options);
      this.#tickets?.install(defaultContext(server));
      server.on("secureConnection", (s: TLSSocket) => this.#server.emit("secureConnection", s));
      server.on("tlsClientError", (e: Error, s: TLSSocket) => this.#server.emit("tlsClientError", e, s));
      return server;
    });
  }

  /** The server's default context seals and opens tickets with the shared keys (each name's server's gets them where made). */
  #installTickets(): void {
    this.#tickets?.install(defaultContext(this.#server));
  }

  /**
   * The port bound (0 before), kept from the bind: it is read for every
   * Route and Via that might name us (proxy/routing.ts), and server.address()
   * is a getsockname call each time (2.6 % of an IO thread at 1 000 calls/s,
   * --cpu-prof). A drained listener's port stays ours for its open flows.
   */
  get port(): number {
    return this.#port;
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

  /**
   * New certificates and client rules for new handshakes, the names' too
   * (new servers: a name's client rules are its server's); connections
   * already up keep theirs, and the servers that made them.
   */
  setSecureContext(options: TlsOptions, named: readonly NamedServerTls[] = []): void {
    // The same defaults as the listener was made with: a reload must not weaken them.
    (this.#server as TlsServer).setSecureContext(hardened(options));
    // A handshake begun before the reload and done after it counts under the new certificates' type.
    this.#keyType = onlyKeyType([options, ...named.map((n) => n.options)]);
    // A new default context: without the shared keys it would seal with random ones of its own.
    this.#installTickets();
    this.#names = this.#serversByName(named);
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

/** The address the gate counted a socket in under, for its close to count it out. */
const ADMITTED_FROM = Symbol("sipedge.admittedFrom");
type Admitted = Socket & { [ADMITTED_FROM]?: string };
