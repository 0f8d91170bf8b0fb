import type { Config, Listener } from "../../config/schema.ts";
import type { MessageHandler } from "../../transport/flow.ts";
import type { ConnectionListener, ListenerAdmission } from "../../transport/listener.ts";
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

/** One worker's client-facing sockets, in config.listen's order. */
export interface ClientListeners {
  readonly udp: readonly UdpEndpoint[];
  /** TCP, TLS and WSS listeners. */
  readonly streams: readonly ConnectionListener[];
  /** TLS and WSS listeners by their index in config.listen: a reload gives them new certificates. */
  readonly tls: ReadonlyMap<number, ConnectionListener>;
  /** Every listener with the port it got (a 0 in the config made concrete). */
  readonly bound: readonly BoundListener[];
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
      const u = await UdpEndpoint.bind(l.address, l.port, parts.onMessage, parts.pool, {
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
  return { udp, streams, tls, bound };
}

function openStream(parts: ClientListenerParts, l: Listener, index: number): Promise<ConnectionListener> {
  const listening = {
    address: l.address,
    port: l.port,
    reusePort: parts.reusePort,
    ...parts.listening,
    admission: parts.admission,
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
