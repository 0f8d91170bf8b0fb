import type { Config, Listener, UnknownClient } from "../../config/schema.ts";
import type { Flow, MessageHandler } from "../../transport/flow.ts";
import type { HandshakeStats } from "../../transport/handshakes.ts";
import type { ConnectionListener, IdentityRefusal, ListenerAdmission } from "../../transport/listener.ts";
import type { BufferPool } from "../../transport/pool.ts";
import { StreamListener } from "../../transport/stream.ts";
import { UdpEndpoint } from "../../transport/udp.ts";
import { WsListener } from "../../transport/websocket.ts";
import type { ListenerOptions } from "./stream-options.ts";
import type { TlsIdentity } from "./tls-identity.ts";

export interface BoundListener {
  readonly transport: Listener["transport"];
  readonly address: string;
  readonly port: number;
}

/** The client side, for a scrape. */
export interface ClientSideStats {
  /** Open TCP, TLS and WSS connections. */
  readonly connections: number;
  /** TLS handshakes under way. */
  readonly handshaking: number;
  /** Connections not read while the pool is critically low. */
  readonly paused: number;
  /** Open client flows (connections) by transport: tcp, tls, wss. */
  readonly flows: Readonly<Record<string, number>>;
  /** Open connections per trunk. */
  readonly trunkConnections: Readonly<Record<string, number>>;
  /** Per TLS listener: handshakes done and failed, and how long they took. */
  readonly handshakes: readonly HandshakeStats[];
}

/** One worker's client-facing sockets, in config.listen's order. */
export class ClientListeners {
  readonly udp: readonly UdpEndpoint[];
  /** TCP, TLS and WSS listeners. */
  readonly streams: readonly ConnectionListener[];
  /** TLS and WSS listeners by their index in config.listen: a reload gives them new certificates. */
  readonly tls: ReadonlyMap<number, ConnectionListener>;
  /** Every listener with the port it got (a 0 in the config made concrete). */
  readonly bound: readonly BoundListener[];

  constructor(
    udp: readonly UdpEndpoint[],
    streams: readonly ConnectionListener[],
    tls: ReadonlyMap<number, ConnectionListener>,
    bound: readonly BoundListener[],
  ) {
    this.udp = udp;
    this.streams = streams;
    this.tls = tls;
    this.bound = bound;
  }

  /** `trunkOf`: the trunk a connection comes from, if any (the trunks are the sides', replaced on SIGHUP). */
  stats(trunkOf: (c: Flow) => string | undefined): ClientSideStats {
    let connections = 0;
    let handshaking = 0;
    let paused = 0;
    const flows: Record<string, number> = {};
    const trunkConnections: Record<string, number> = {};
    for (const s of this.streams) {
      connections += s.connectionCount;
      handshaking += s.handshaking;
      paused += s.paused;
      flows[s.transport] = (flows[s.transport] ?? 0) + s.connectionCount;
      for (const c of s.connections()) {
        const trunk = trunkOf(c);
        if (trunk !== undefined) trunkConnections[trunk] = (trunkConnections[trunk] ?? 0) + 1;
      }
    }
    const handshakes = [...this.tls.values()].flatMap((l) => l.handshakes?.all() ?? []);
    return { connections, handshaking, paused, flows, trunkConnections, handshakes };
  }
}

/** What the client side is opened from. */
export interface ClientListenerParts {
  readonly config: Config;
  /** Several workers share the client-facing ports (the [threads] supervisor sets it). */
  readonly reusePort: boolean;
  readonly listening: ListenerOptions;
  /** Who may connect, and how many TLS handshakes may run: shared by every client-facing listener. */
  readonly admission: ListenerAdmission;
  readonly tls: TlsIdentity;
  readonly pool: BufferPool;
  readonly onMessage: MessageHandler;
  /** Whether a new connection may stay once its certificate (or none) is known, by its listener's `unknownClient`. */
  readonly identify: (c: Flow, unknownClient: UnknownClient) => IdentityRefusal | undefined;
}

/** Binds every listener of config.listen, one after another in its order. */
export async function openClientListeners(parts: ClientListenerParts): Promise<ClientListeners> {
  const { config, reusePort } = parts;
  const udp: UdpEndpoint[] = [];
  const streams: ConnectionListener[] = [];
  const tls = new Map<number, ConnectionListener>();
  const bound: BoundListener[] = [];
  for (const [index, l] of config.listen.entries()) {
    if (l.transport === "udp") {
      const u = await UdpEndpoint.bind(l.address, l.port, parts.onMessage, {
        reusePort,
        receiveBuffer: config.limits.udpReceiveBuffer,
      });
      udp.push(u);
      bound.push({ transport: "udp", address: l.address, port: u.port });
    } else {
      const s = await openStream(parts, l, index);
      streams.push(s);
      if (l.transport !== "tcp") tls.set(index, s);
      bound.push({ transport: l.transport, address: l.address, port: s.port });
    }
  }
  return new ClientListeners(udp, streams, tls, bound);
}

function openStream(parts: ClientListenerParts, l: Listener, index: number): Promise<ConnectionListener> {
  const listening = {
    address: l.address,
    port: l.port,
    reusePort: parts.reusePort,
    ...parts.listening,
    admission: parts.admission,
    // A plain TCP client shows no certificate: only a requireCert trunk's address can refuse it.
    identify: (c: Flow) => parts.identify(c, "unknownClient" in l ? l.unknownClient : "anonymous"),
  };
  switch (l.transport) {
    case "tls":
      return StreamListener.listen({ ...listening, tls: parts.tls.clientListener(index) }, parts.onMessage);
    case "wss":
      return WsListener.listen(
        {
          ...listening,
          tls: parts.tls.clientListener(index),
          allowedOrigins: l.allowedOrigins === undefined ? undefined : new Set(l.allowedOrigins),
        },
        parts.onMessage,
      );
    default:
      return StreamListener.listen(listening, parts.onMessage);
  }
}
