import type { PoolDispatcher } from "../../balance/dispatcher.ts";
import type { Config, Listener } from "../../config/schema.ts";
import type { Flow, MessageHandler, TransportName } from "../../transport/flow.ts";
import { BackendLinks } from "../../transport/links.ts";
import type { ConnectionListener, ListenerAdmission } from "../../transport/listener.ts";
import { StreamListener, type StreamOptions } from "../../transport/stream.ts";
import { UdpEndpoint } from "../../transport/udp.ts";
import { BackendGate } from "../backend-gate.ts";
import { BACKEND_PORTS } from "../shared-memory.ts";
import type { ListenerOptions } from "./stream-options.ts";
import type { Threading } from "./threading.ts";
import type { TlsIdentity } from "./tls-identity.ts";

/** Persistent TCP connections kept to each TCP backend. */
const BACKEND_LINKS = 2;

/** What the backend side is opened from. */
export interface BackendSideParts {
  readonly config: Config;
  readonly threading: Pick<Threading, "index" | "backendPorts">;
  readonly streams: StreamOptions;
  readonly listening: ListenerOptions;
  readonly tls: TlsIdentity;
  /** Who may connect: configured members only. */
  readonly dispatcher: PoolDispatcher;
  /** The worker's refusal counts, which the backend side's listeners add to. */
  readonly refused: ListenerAdmission["refused"];
  readonly onMessage: MessageHandler;
  /** A link to a backend closed: the transactions over it are lost. */
  readonly onClosed: (flow: Flow) => void;
}

/** The backend side, for a scrape. */
export interface BackendSideStats {
  /** Connections backends opened to our TCP and TLS listeners (not our links to them). */
  readonly connections: number;
}

/**
 * One worker's backend side: one UDP socket and a TCP listener on the same
 * port where it is free, for what backends send us outside our
 * connections, and a TLS listener when a backend is reached over TLS; for
 * configured members only (the core drops the rest of the datagrams), with
 * the same slowloris and handshake bounds as the client side. And the
 * persistent connections to TCP and TLS backends.
 */
export class BackendSide {
  readonly udp: UdpEndpoint;
  readonly tcp: ConnectionListener;
  /** Shows backends the first TLS listener's certificate (tls-identity.ts). */
  readonly tls: ConnectionListener | undefined;
  readonly links: BackendLinks;
  /** The listeners, for connection lookups, counts and drain. */
  readonly listeners: readonly ConnectionListener[];
  /** Every worker's backend-side ports, BACKEND_PORTS cells each; undefined when this worker runs alone. */
  readonly #ports: Int32Array | undefined;

  private constructor(
    udp: UdpEndpoint,
    tcp: ConnectionListener,
    tls: ConnectionListener | undefined,
    links: BackendLinks,
    ports: Int32Array | undefined,
  ) {
    this.udp = udp;
    this.tcp = tcp;
    this.tls = tls;
    this.links = links;
    this.listeners = tls === undefined ? [tcp] : [tcp, tls];
    this.#ports = ports;
  }

  static async open(parts: BackendSideParts): Promise<BackendSide> {
    const { config, threading, listening, onMessage } = parts;
    const tlsBackend = config.backends.flatMap((p) => p.members).find((m) => m.transport === "tls");
    // sipedge shows backends the certificate of its first TLS listener.
    const identity = parts.tls.backendListener;
    if (tlsBackend !== undefined && identity === undefined) {
      throw new Error(
        `backend ${tlsBackend.name}: a TLS backend needs a tls listener, whose certificate sipedge presents`,
      );
    }
    const address = config.io.backendAddress ?? (config.listen[0] as Listener).address;
    const fixedPort = config.io.backendPort === 0 ? 0 : config.io.backendPort + threading.index;
    const udp = await UdpEndpoint.bind(address, fixedPort, onMessage);
    const options = {
      address,
      ...listening,
      admission: {
        gate: new BackendGate(parts.dispatcher),
        maxHandshakes: config.limits.maxHandshakes,
        refused: parts.refused,
        handshakeRation: undefined,
      },
    };
    const tcp = await StreamListener.listen({ ...options, port: udp.port }, onMessage).catch(() =>
      StreamListener.listen({ ...options, port: 0 }, onMessage),
    );
    const tls =
      identity !== undefined && tlsBackend !== undefined
        ? await StreamListener.listen({ ...options, port: 0, tls: identity }, onMessage)
        : undefined;
    const links = new BackendLinks(BACKEND_LINKS, parts.tls.backendClient, parts.streams, onMessage, parts.onClosed);
    const side = new BackendSide(udp, tcp, tls, links, threading.backendPorts);
    side.#publish(threading.index);
    return side;
  }

  /** Tells the other workers our ports: a backend may answer a dialog at any worker's. */
  #publish(index: number): void {
    if (this.#ports === undefined) return;
    const own = index * BACKEND_PORTS;
    Atomics.store(this.#ports, own, this.udp.port);
    Atomics.store(this.#ports, own + 1, this.tcp.port);
    Atomics.store(this.#ports, own + 2, this.tls?.port ?? 0);
  }

  get address(): string {
    return this.udp.address;
  }

  /** Where backends reach us over `transport`: named in our Via and backend-facing Record-Route. */
  port(transport: TransportName): number {
    return transport === "udp" ? this.udp.port : transport === "tls" ? (this.tls?.port ?? 0) : this.tcp.port;
  }

  /** Whether `port` is a backend-side port of ours: every worker's, since a backend may answer a dialog at another worker's port. */
  owns(port: number | undefined): boolean {
    return (
      port === this.udp.port ||
      port === this.tcp.port ||
      port === this.tls?.port ||
      (port !== undefined && port !== 0 && this.#ports?.includes(port) === true)
    );
  }

  /** A flow towards a backend target: our one UDP socket, or a link. */
  flow(t: { host: string; port: number; transport: string }): Flow | undefined {
    return t.transport === "udp"
      ? this.udp.flowTo(t.host, t.port)
      : t.transport === "tcp" || t.transport === "tls"
        ? this.links.flow(t.host, t.port, t.transport)
        : undefined;
  }

  stats(): BackendSideStats {
    return { connections: this.listeners.reduce((n, l) => n + l.connectionCount, 0) };
  }

  /** Stops accepting and closes every flow: the socket, the links, the listeners. */
  async close(): Promise<void> {
    this.udp.close();
    this.links.close();
    await Promise.all(this.listeners.map((l) => l.close()));
  }
}
