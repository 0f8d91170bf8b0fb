import type { SipRequest } from "../sip/index.ts";
import type { Flow, TransportName } from "../transport/flow.ts";
import type { RejectReason } from "./admission.ts";
import type { FlowTokens } from "./flow-token.ts";
import type { TimerBase } from "./transactions.ts";

/**
 * The proxy's ports: what the proxy core asks of the worker that owns the
 * sockets (Sides) and of the load balancer (Dispatcher), its settings and
 * the counters it keeps. Other folders import these, never the core itself.
 */

/** A backend the dispatcher chose: a configured pool member. */
export interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly transport: "udp" | "tcp" | "tls";
}

/** What the proxy core asks of the load balancer (implemented in src/balance). */
export interface Dispatcher {
  /** The next backend for an out-of-dialog request, skipping those tried; undefined when none is left. */
  pick(req: SipRequest, tried: ReadonlySet<Target>): Target | undefined;
  /** Whether any backend can take new requests (local OPTIONS answers 200 or 503). */
  ready(): boolean;
  /** The backend answered something: it is alive. */
  answered(t: Target): void;
  /**
   * Passive health: the backend failed a transaction (nothing within the
   * first-response timeout, Timer B/F, a `failoverOn` answer such as 503,
   * or a closed connection).
   */
  failed(t: Target): void;
  /** A dialog was established on (INVITE 2xx) or ended from (BYE) a backend, for least-calls. */
  dialogStarted(t: Target, callId: string, trunk: string | undefined): void;
  dialogEnded(callId: string): void;
  /** A configured member by name (the one a dialog's Record-Route names); undefined once it is gone. */
  member(name: string): Target | undefined;
  /**
   * The configured member a backend-side message comes from, by its source
   * address (and port and transport where they tell members on one host
   * apart); undefined: not a backend at all.
   */
  memberAt(address: string, port: number, transport: TransportName): Target | undefined;
}

/** Where the proxy's two sides are, provided by the IO worker that owns the sockets. */
export interface Sides {
  /**
   * Where sipedge listens on the backend side, per transport: named in the
   * Via and the backend-facing Record-Route of what goes to backends.
   */
  readonly backend: { readonly address: string; port(transport: TransportName): number };
  /** A flow towards a backend target. */
  backendFlow(t: { host: string; port: number; transport: string }): Flow | undefined;
  /** A UDP flow to a client address, sent from client-facing UDP listener `listener` (default: the first). */
  clientUdpFlow(host: string, port: number, listener: number): Flow | undefined;
  /** Which client-facing UDP listener a UDP flow talks to (its index, for flow tokens). */
  udpListenerOf(flow: Flow): number;
  /** A live client stream connection by flow id. */
  connection(id: number): Flow | undefined;
  /** Whether host:port names one of sipedge's own sockets. */
  isLocal(host: string, port: number | undefined): boolean;
  /** The configured trunk a client flow comes from, if any. */
  trunkOf(flow: Flow): string | undefined;
  /** Whether a client flow is a trusted trunk's (never refused under overload). */
  trusted(flow: Flow): boolean;
  /** This IO worker's index: flow ids in another worker's range belong to that worker. */
  readonly worker: number;
  /**
   * Hands a request from a backend to the worker that owns its client flow,
   * over the bounded queue between the two; false when that queue is full
   * or the owner is gone. `replyTo` is where responses go back to.
   */
  handOff(owner: number, bytes: Buffer, replyTo: PeerAddress, flowId: number): boolean;
  /** Flow tokens for our Record-Route and Path values (one secret for every worker). */
  readonly tokens: FlowTokens;
  /** A REGISTER over client flow `flow` succeeded: its endpoints are bound there for `expiresMs`. */
  endpointsBound(keys: readonly string[], flow: number, expiresMs: number): void;
  /** The flow the endpoints last reached over `flow` use now (the endpoint registry), if any. */
  currentFlow(flow: number): number | undefined;
}

/** Where a backend's responses go. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
  readonly transport: TransportName;
}

export interface ProxySettings {
  readonly timers: TimerBase & { readonly timerC: number };
  readonly firstResponseTimeout: number;
  readonly failoverOn: readonly number[];
  readonly retryAfter: number;
  /** Flow-Timer (ms) for outbound registrations (RFC 5626 §5.4). */
  readonly flowTimer: number;
  /** Server transactions awaiting a final response beyond which new work gets 503. */
  readonly maxTransactions: number;
  /** Finished transactions kept to absorb retransmissions; beyond it the oldest end early. */
  readonly maxLingering: number;
  /** A client's out-of-dialog Route naming anyone but sipedge: refused (403) or stripped. */
  readonly foreignRoute: ForeignRoutePolicy;
  /** sipedge's own stateless answers to one UDP source, per second (proxy/answer-limit.ts). */
  readonly answersPerSource: number;
}

/** What the routing policy (proxy/routing.ts) does with a client's out-of-dialog Route not naming sipedge. */
export type ForeignRoutePolicy = "reject" | "strip";

/** Why the routing policy refused a request; a metric label. */
export type RoutingRefusal = "foreign_route" | "no_dialog_route" | "unknown_backend" | "no_flow_token";

/** Which side a message came from. */
export type Side = "client" | "backend";

/** Counters an operator watches (exported as sipedge_* metrics, summed over workers). */
export interface ProxyCounters {
  received: number;
  malformed: number;
  localResponses: number;
  failovers: number;
  exhausted: number;
  strayResponses: number;
  /** Requests from backends passed to the worker that owns their client flow. */
  handedOff: number;
  /** Requests refused (503) or dropped (ACK) because that hand-off queue was full. */
  handOffRefused: number;
  /** Requests whose flow or backend token did not verify (403). */
  forgedTokens: number;
  /** Requests the routing policy refused (proxy/routing.ts), by reason. */
  readonly unroutable: Record<RoutingRefusal, number>;
  /** Messages on the backend side from an address that is no configured member: dropped unread. */
  strangers: number;
  /** Responses matching a transaction's branch that came from another peer than its own: dropped. */
  misdirectedResponses: number;
  /** Stateless answers not sent: their UDP source had had its answers for this second. */
  answersLimited: number;
  /** Bugs: a handler threw; the message was dropped and the worker went on. By where it was caught. */
  readonly internalErrors: Record<string, number>;
  /** Requests from backends for an endpoint with no live flow left (430, RFC 5626 §5.3). */
  flowFailed: number;
  /** Finished transactions ended early to give their buffers back. */
  reclaimed: number;
  /** New work refused with 503 under overload, by reason. */
  readonly overload: Record<RejectReason, number>;
  /** Per configured trunk that has sent anything: what it sent. */
  trunks: Record<string, TrunkCounters>;
  /** Valid requests by "METHOD transport" (well-known methods; the rest as OTHER). */
  requests: Record<string, number>;
  /** Valid responses received, by class ("2xx"). */
  responses: Record<string, number>;
}

/** The proxy core, for a scrape. */
export interface ProxyStats {
  readonly counters: ProxyCounters;
  /** Transactions under way. */
  readonly transactions: { readonly server: number; readonly client: number };
}

/** What one inbound trunk sent to this worker. */
export interface TrunkCounters {
  requests: number;
  /** OPTIONS to sipedge itself: the trunk's keep-alives. */
  keepalives: number;
  /** Initial INVITEs: its calls per second is the rate of this. */
  calls: number;
  /** When it last sent anything (ms since the epoch). */
  lastSeen: number;
}
