import type { Trunk } from "../../config/schema.ts";
import type { EndpointRegistry } from "../../proxy/endpoints.ts";
import type { FlowTokens } from "../../proxy/flow-token.ts";
import type { PeerAddress, Sides } from "../../proxy/ports.ts";
import type { TrunkMatcher } from "../../proxy/trunks.ts";
import type { Flow } from "../../transport/flow.ts";
import type { ConnectionListener } from "../../transport/listener.ts";
import type { HandOffs } from "../handoff.ts";
import type { BackendSide } from "./backend-side.ts";
import type { ClientListeners } from "./client-listeners.ts";
import type { Threading } from "./threading.ts";

/** What a worker's two sides are made of. */
export interface SidesParts {
  readonly backend: BackendSide;
  readonly clients: ClientListeners;
  readonly threading: Pick<Threading, "index" | "handOffs" | "tokens">;
  /** Each worker holds every worker's endpoints, from their announcements. */
  readonly endpoints: EndpointRegistry;
  /** Made before the client listeners, which ask it whether a new connection may stay. */
  readonly trunks: TrunkMatcher;
}

/** The proxy core's view of one worker's sockets and of its peers (proxy/ports.ts). */
export class WorkerSides implements Sides {
  readonly backend: BackendSide;
  readonly worker: number;
  readonly tokens: FlowTokens;
  readonly #clients: ClientListeners;
  /** Every listener whose connections a flow id may name: the backend side's, then the clients'. */
  readonly #streams: readonly ConnectionListener[];
  readonly #handOffs: HandOffs | undefined;
  readonly #endpoints: EndpointRegistry;
  /** Reconfigured on SIGHUP. */
  readonly #trunks: TrunkMatcher;

  constructor(parts: SidesParts) {
    this.backend = parts.backend;
    this.worker = parts.threading.index;
    this.tokens = parts.threading.tokens;
    this.#clients = parts.clients;
    this.#streams = [...parts.backend.listeners, ...parts.clients.streams];
    this.#handOffs = parts.threading.handOffs;
    this.#endpoints = parts.endpoints;
    this.#trunks = parts.trunks;
  }

  /** SIGHUP: the trunks of the new config. */
  reconfigure(trunks: readonly Trunk[]): void {
    this.#trunks.reconfigure(trunks);
  }

  backendFlow(t: { host: string; port: number; transport: string }): Flow | undefined {
    return this.backend.flow(t);
  }

  clientUdpFlow(host: string, port: number, listener = 0): Flow | undefined {
    return this.#clients.udp[listener]?.flowTo(host, port);
  }

  udpListenerOf(flow: Flow): number {
    return Math.max(
      0,
      this.#clients.udp.findIndex((u) => u.port === flow.localPort && u.address === flow.localAddress),
    );
  }

  connection(id: number): Flow | undefined {
    for (const s of this.#streams) {
      const c = s.connection(id);
      if (c !== undefined) return c;
    }
    return undefined;
  }

  isLocal(host: string, port: number | undefined): boolean {
    return (
      (host === this.backend.address && this.backend.owns(port)) ||
      this.#clients.bound.some((l) => l.address === host && l.port === (port ?? (l.transport === "tls" ? 5061 : 5060)))
    );
  }

  trunkOf(flow: Flow): string | undefined {
    return this.#trunks.of(flow);
  }

  trusted(flow: Flow): boolean {
    return this.#trunks.trusted(flow);
  }

  handOff(owner: number, bytes: Buffer, replyTo: PeerAddress, flowId: number): boolean {
    return this.#handOffs?.offer(owner, bytes, replyTo, flowId) ?? false;
  }

  endpointsBound(keys: readonly string[], flow: number, expiresMs: number): void {
    this.#endpoints.bind(keys, flow, expiresMs);
    this.#handOffs?.announce({ keys, flow, expiresMs });
  }

  currentFlow(flow: number): number | undefined {
    return this.#endpoints.current(flow);
  }
}
