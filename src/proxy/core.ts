import { createHash, randomBytes } from "node:crypto";
import {
  type Address,
  bareHost,
  checkMessage,
  dispositionOf,
  findParam,
  HeaderId,
  isSipUri,
  type Located,
  MessageEditor,
  parseMessage,
  parseUri,
  type SipErrorCode,
  type SipRequest,
  type SipResponse,
  type Via,
} from "../sip/index.ts";
import { type Flow, flowOwner, type TransportName } from "../transport/flow.ts";
import { type BufferPool, type PoolSlot, UNHELD } from "../transport/pool.ts";
import { admit, type RejectReason, retryAfterWithJitter } from "./admission.ts";
import type { FlowTokens } from "./flow-token.ts";
import { LocalTags } from "./local-tags.ts";
import { buildInTransaction } from "./requests.ts";
import { buildResponse, type LocalResponse } from "./responses.ts";
import { LoadShedder } from "./shedder.ts";
import { ClientTransaction, ServerTransaction, type TimerBase } from "./transactions.ts";

/** A backend the dispatcher chose. */
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
  clientUdpFlow(host: string, port: number, listener?: number): Flow | undefined;
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

/** Where a request from a backend goes on the client side, by the flow token in our Route. */
type ClientFlow =
  | { readonly kind: "untokened" }
  | { readonly kind: "forged" }
  | { readonly kind: "here"; readonly flow: Flow }
  | { readonly kind: "elsewhere"; readonly owner: number; readonly flowId: number }
  | { readonly kind: "gone" };
const UNTOKENED: ClientFlow = { kind: "untokened" };

/** A request's Route values, and how many at the top name sipedge. */
interface OwnRoutes {
  readonly list: readonly Located<Address>[];
  readonly popped: number;
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
}

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
  /** Requests from backends whose flow token did not verify (403). */
  forgedTokens: number;
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

const COUNTED_METHODS = new Set([
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "OPTIONS",
  "REGISTER",
  "PRACK",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
  "INFO",
  "REFER",
  "MESSAGE",
  "UPDATE",
]);

/** One forwarded request: its server transaction and the current attempt downstream. */
interface Forward {
  readonly st: ServerTransaction;
  /** Read only while the server transaction or an attempt holds its slot (so not after a final response). */
  readonly req: SipRequest;
  /** The pool slot under req; each attempt takes a reference of its own. */
  readonly slot: PoolSlot | undefined;
  readonly callId: string | undefined;
  readonly side: Side;
  /** Chosen by the dispatcher (and so eligible for failover), or routed by Route/Request-URI. */
  readonly dispatched: boolean;
  readonly tried: Set<Target>;
  readonly popped: number;
  readonly recordRoute: boolean;
  ct: ClientTransaction | undefined;
  target: Target | undefined;
  /** The Route values and Request-URI the request went out with (for CANCEL and ACK). */
  routesOut: readonly string[];
  requestUri: string;
  via: string;
  provisional: boolean;
  cancelled: boolean;
  timerC: ReturnType<typeof setTimeout> | undefined;
}

const DIALOG_CREATING = new Set(["INVITE", "SUBSCRIBE", "REFER", "NOTIFY"]);

/** Parse failures in the start line, answerable with 400 once the headers read. */
const START_LINE_ERRORS: ReadonlySet<SipErrorCode> = new Set([
  "ERR_SIP_BAD_START_LINE",
  "ERR_SIP_BAD_METHOD",
  "ERR_SIP_BAD_VERSION",
]);

/**
 * The transaction-stateful proxy core (RFC 3261 §16) of one IO worker. All
 * its state (transactions, forwards) lives in this object and is touched
 * only by the thread that owns it.
 */
export class ProxyCore {
  readonly counters: ProxyCounters = {
    received: 0,
    malformed: 0,
    localResponses: 0,
    failovers: 0,
    exhausted: 0,
    strayResponses: 0,
    handedOff: 0,
    handOffRefused: 0,
    forgedTokens: 0,
    flowFailed: 0,
    reclaimed: 0,
    overload: { pool: 0, transactions: 0, load: 0 },
    trunks: {},
    requests: {},
    responses: {},
  };
  #settings: ProxySettings;
  readonly #sides: Sides;
  readonly #dispatcher: Dispatcher;
  readonly #servers = new Map<string, ServerTransaction>();
  readonly #clients = new Map<string, ClientTransaction>();
  readonly #forwards = new Map<ServerTransaction | ClientTransaction, Forward>();
  readonly #branchPrefix = `z9hG4bK-se${randomBytes(3).toString("hex")}-`;
  #branchCounter = 0;
  #draining = false;
  /** Server transactions still awaiting their final response: the work in flight. */
  #pending = 0;
  /** Server transactions past their final response, oldest first: what the pool can reclaim. */
  readonly #lingering = new Set<ServerTransaction>();
  /** Client transactions past their final response, oldest first. */
  readonly #lingeringClients = new Set<ClientTransaction>();
  readonly #pool: BufferPool;
  readonly #shedder = new LoadShedder();
  readonly #tags = new LocalTags();
  /** The slot of the message being received (everything here runs inside one receive call). */
  #slot: PoolSlot | undefined;

  constructor(settings: ProxySettings, sides: Sides, dispatcher: Dispatcher, pool: BufferPool) {
    this.#settings = settings;
    this.#sides = sides;
    this.#dispatcher = dispatcher;
    this.#pool = pool;
  }

  get transactions(): { server: number; client: number } {
    return { server: this.#servers.size, client: this.#clients.size };
  }

  /**
   * A connection closed: attempts on it that heard nothing will hear
   * nothing, so fail them over now rather than at the first-response
   * timeout (this is how a refused TCP connect to a backend shows).
   */
  flowClosed(flow: Flow): void {
    for (const ct of [...this.#clients.values()]) {
      if (ct.flow !== flow || ct.heard) continue;
      const f = this.#forwards.get(ct);
      ct.terminate();
      if (f !== undefined) this.#downstreamSilent(f, ct);
    }
  }

  /** How busy this worker's event loop was over the last window (0–1): the CPU ration follows it. */
  loadSample(utilization: number): void {
    this.#shedder.sample(utilization);
  }

  /** New requests each window may start while the loop is saturated; undefined: no ration. */
  get ration(): number | undefined {
    return this.#shedder.ration;
  }

  /** SIGHUP: settings for the transactions that start from now on. */
  reconfigure(settings: ProxySettings): void {
    this.#settings = settings;
  }

  /**
   * SIGTERM: from now on new out-of-dialog requests get 503 with
   * Retry-After (so clients try another instance) and OPTIONS to sipedge
   * says 503; dialogs and transactions under way carry on.
   */
  drain(): void {
    this.#draining = true;
  }

  /** No transaction is under way: a draining worker may close. */
  get idle(): boolean {
    return this.#servers.size === 0 && this.#clients.size === 0;
  }

  /** Ends every transaction and timer (the worker is closing its sockets). */
  close(): void {
    for (const ct of [...this.#clients.values()]) ct.terminate();
    for (const st of [...this.#servers.values()]) st.terminate();
  }

  /** Entry point for every whole SIP message a flow delivers. */
  /** `pinned`: the client flow another worker resolved this request to (a hand-off). */
  receive(bytes: Buffer, flow: Flow, side: Side, pinned?: number): void {
    this.counters.received++;
    // The message lives in a pool slot from here; whatever keeps it takes a reference of its own.
    // With the pool empty it is read where it lies, and only a refusal can come of it.
    let slot = this.#pool.copy([bytes], false);
    if (slot === undefined || this.#pool.level !== "normal") {
      this.#reclaim();
      slot ??= this.#pool.copy([bytes], false);
    }
    this.#slot = slot;
    this.#receive(slot?.bytes ?? bytes, flow, side, pinned);
    this.#slot = undefined;
    if (slot !== undefined) this.#pool.release(slot);
  }

  #receive(bytes: Buffer, flow: Flow, side: Side, pinned: number | undefined): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) {
      this.counters.malformed++;
      if (!/^ACK /.test(bytes.toString("latin1", 0, 4))) this.#rejectUnparsable(bytes, flow, parsed.error.code);
      return;
    }
    const msg = parsed.value;
    if (msg.kind === "request" && msg.method === "ACK" && this.#ownAck(msg)) return;
    const valid = checkMessage(msg);
    if (!valid.ok) {
      this.counters.malformed++;
      if (msg.kind === "request" && msg.method !== "ACK") {
        const d = dispositionOf(valid.error.code, "request", flow.reliable ? "stream" : "datagram");
        if (d.action === "respond") this.#respond(msg, flow, { status: d.status, reason: d.reason });
      }
      return;
    }
    const trunk = side === "client" ? this.#trunk(flow) : undefined;
    if (trunk !== undefined) trunk.lastSeen = Date.now();
    if (msg.kind === "response") {
      const cls = `${Math.floor(msg.status / 100)}xx`;
      this.counters.responses[cls] = (this.counters.responses[cls] ?? 0) + 1;
      this.#response(msg);
    } else {
      const key = `${COUNTED_METHODS.has(msg.method) ? msg.method : "OTHER"} ${flow.transport}`;
      this.counters.requests[key] = (this.counters.requests[key] ?? 0) + 1;
      if (trunk !== undefined) {
        trunk.requests++;
        if (msg.method === "INVITE" && !hasToTag(msg)) trunk.calls++;
      }
      this.#request(msg, flow, side, pinned, trunk);
    }
  }

  /**
   * The ACK for a final answer sipedge gave itself ends here (RFC 3261
   * §17.2.1: the ACK for a non-2xx answer is hop by hop; sipedge never
   * answers an INVITE with a 2xx of its own), known by our To tag before
   * anything else of it is decoded: under overload one comes for every
   * refused INVITE. It stops the answer's retransmissions where a
   * transaction sent it.
   */
  #ownAck(ack: SipRequest): boolean {
    const to = ack.to();
    if (!to.ok || !this.#tags.isOurs(findParam(to.value.params, "tag")?.value)) return false;
    this.#ackedHere(ack);
    return true;
  }

  /** RFC 3261 §17.2.1: the ACK for a non-2xx answer ends at the INVITE server transaction that sent it, if any. */
  #ackedHere(ack: SipRequest): boolean {
    const st = this.#servers.get(serverKey(ack, "INVITE"));
    if (st === undefined || (st.state !== "completed" && st.state !== "confirmed")) return false;
    st.acked();
    return true;
  }

  /**
   * A request that did not parse still earns an answer when the rest of it
   * reads (RFC 4475 §3.1.2): a bad start line (400, or 505 for another SIP
   * version) or, over UDP, a bad Content-Length or a missing empty line
   * (400). Re-read it with a neutral start line and no body to build one.
   */
  #rejectUnparsable(bytes: Buffer, flow: Flow, code: SipErrorCode): void {
    const d = dispositionOf(code, "request", flow.reliable ? "stream" : "datagram");
    const truncatedDatagram = code === "ERR_SIP_INCOMPLETE" && !flow.reliable;
    if (d.action !== "respond" && !START_LINE_ERRORS.has(code) && !truncatedDatagram) return;
    const text = bytes.toString("latin1");
    const eol = text.indexOf("\r\n");
    if (eol < 0 || /^SIP\//i.test(text)) return;
    const blank = text.indexOf("\r\n\r\n");
    const headers = text
      .slice(eol, blank < 0 ? text.length : blank + 2)
      .replace(/\r\n(?:content-length|l)[ \t]*:[^\r]*/gi, "");
    const again = parseMessage(Buffer.from(`OPTIONS sip:invalid SIP/2.0${headers}\r\n`, "latin1"));
    if (!again.ok || again.value.kind !== "request") return;
    const status = d.action === "respond" ? d : { status: 400, reason: "Bad Request" };
    this.#respond(again.value, flow, { status: status.status, reason: status.reason });
  }

  #request(
    req: SipRequest,
    flow: Flow,
    side: Side,
    pinned: number | undefined,
    trunk: TrunkCounters | undefined,
  ): void {
    // Our Route values are read once: the flow token, then the routing below.
    const ours = side === "backend" ? this.#ownRoutes(req) : undefined;
    const client = ours === undefined ? UNTOKENED : this.#clientFlow(ours, pinned);
    if (client.kind === "elsewhere") {
      this.#handOff(req, flow, client.owner, client.flowId);
      return;
    }
    if (client.kind === "forged") {
      // Never a route into someone else's flow: refused before any transaction.
      this.counters.forgedTokens++;
      if (req.method !== "ACK") this.#respond(req, flow, { status: 403, reason: "Forbidden" });
      return;
    }
    if (req.method === "ACK") {
      if (this.#ackedHere(req)) return;
      this.#forwardStateless(req, side, client, ours ?? this.#ownRoutes(req));
      return;
    }
    if (req.method === "CANCEL") {
      this.#cancel(req, flow);
      return;
    }
    const key = serverKey(req, req.method);
    const existing = this.#servers.get(key);
    if (existing !== undefined) {
      existing.retransmitted();
      return;
    }
    const mf = req.maxForwards();
    const maxForwards = mf.ok ? mf.value : undefined;
    if (req.method === "OPTIONS" && (maxForwards === 0 || this.#addressedToUs(req))) {
      const ready = !this.#draining && this.#dispatcher.ready();
      if (trunk !== undefined) trunk.keepalives++;
      this.#respond(req, flow, ready ? { status: 200, reason: "OK" } : this.#unavailable());
      return;
    }
    if (maxForwards === 0) {
      this.#respond(req, flow, { status: 483, reason: "Too Many Hops" }); // RFC 3261 §16.3 step 3
      return;
    }
    if (side === "client" && this.#cameBack(req)) {
      this.#respond(req, flow, { status: 482, reason: "Loop Detected" }); // RFC 3261 §16.3 step 4
      return;
    }
    const inDialog = hasToTag(req);
    if (this.#draining && !inDialog) {
      this.#respond(req, flow, this.#unavailable());
      return;
    }
    const refused = admit(
      { method: req.method, inDialog, trusted: side === "backend" || this.#sides.trusted(flow) },
      {
        level: this.#pool.level,
        transactions: this.#pending,
        maxTransactions: this.#settings.maxTransactions,
        ration: this.#shedder,
      },
    );
    if (refused !== undefined) {
      // DESIGN.md principle 4: turned away early and cheaply, from the reserve if need be.
      this.counters.overload[refused]++;
      this.#respond(req, flow, this.#unavailable());
      return;
    }
    const st = new ServerTransaction(key, req, this.#pool.hold(this.#slot), flow, this.#settings.timers, {
      finished: () => this.#pending--,
      lingering: (t) => {
        this.#lingering.add(t);
        if (this.#lingering.size > this.#settings.maxLingering) this.#reclaim();
      },
      terminated: (t) => this.#serverDone(t),
    });
    this.#pending++;
    this.#servers.set(key, st);
    if (req.method === "INVITE") st.respond([this.#local(req, flow, { status: 100, reason: "Trying" })], 100);

    const routes = ours ?? this.#ownRoutes(req);
    const { list, popped } = routes;
    // Dispatch what is not routed: no Route left after ours, and not an
    // in-dialog request that followed our Record-Route.
    const dispatched = side === "client" && popped === list.length && !(inDialog && popped > 0);
    const callId = req.callId();
    const forward: Forward = {
      st,
      req,
      slot: this.#slot,
      callId: callId.ok ? callId.value : undefined,
      side,
      dispatched,
      tried: new Set(),
      popped,
      recordRoute: DIALOG_CREATING.has(req.method) && !inDialog,
      ct: undefined,
      target: undefined,
      routesOut: list.slice(popped).map((r) => req.buf.toString("latin1", r.start, r.end)),
      requestUri: req.uriText,
      via: "",
      provisional: false,
      cancelled: false,
      timerC: undefined,
    };
    this.#forwards.set(st, forward);
    if (req.method === "INVITE") this.#armTimerC(forward);
    if (dispatched) {
      this.#attempt(forward);
      return;
    }
    // Routed: by the next Route value, else the Request-URI (the remote target).
    const dest = this.#routed(req, routes, side, client);
    if (dest === undefined) {
      if (side === "backend") this.counters.flowFailed++;
      this.#finish(
        forward,
        // RFC 5626 §5.3: no live flow to the endpoint; the registrar may try another.
        side === "backend" ? { status: 430, reason: "Flow Failed" } : { status: 404, reason: "Not Found" },
      );
      return;
    }
    this.#send(forward, dest, undefined);
  }

  /** Picks the next backend and forwards to it; 503 with Retry-After when none is left. */
  #attempt(f: Forward): void {
    const target = this.#dispatcher.pick(f.req, f.tried);
    if (target === undefined) {
      this.counters.exhausted++;
      this.#finish(f, this.#unavailable());
      return;
    }
    f.tried.add(target);
    const flow = this.#sides.backendFlow(target);
    if (flow === undefined) {
      this.#dispatcher.failed(target);
      this.#attempt(f);
      return;
    }
    this.#send(f, flow, target);
  }

  /** Forwards one attempt over `flow`; `target` is the backend when the dispatcher chose it. */
  #send(f: Forward, flow: Flow, target: Target | undefined): void {
    const req = f.req;
    const branch = this.#branch();
    f.via = `SIP/2.0/${flow.transport.toUpperCase()} ${this.#sentBy(flow, f.side)};branch=${branch};rport`;
    const editor = new MessageEditor(req).prependVia(f.via);
    const top = req.via();
    if (top.ok && top.value[0] !== undefined) {
      const v = top.value[0];
      // RFC 3581 §4 / RFC 3261 §18.2.1: where the request really came from.
      if (v.rport !== undefined || v.host !== f.st.flow.remoteAddress) {
        editor.setTopViaSource(f.st.flow.remoteAddress, v.rport !== undefined ? f.st.flow.remotePort : undefined);
      }
    }
    if (f.popped > 0) editor.removeRoutes(f.popped);
    const mf = req.maxForwards();
    editor.setMaxForwards(mf.ok && mf.value !== undefined ? Math.min(mf.value, 256) - 1 : 70);
    if (f.recordRoute) {
      // RFC 3261 §16.6 step 4, with two entries since the two sides are
      // different sockets: the top one names the side the request leaves by.
      const inbound = this.#recordRouteFor(f.st.flow, f.side);
      const outbound =
        f.side === "client"
          ? `<sip:${this.#sentBy(flow, "client")}${uriTransport(flow.transport)};lr>`
          : this.#recordRouteFor(flow, "client");
      editor.insertRecordRoute(outbound).insertRecordRoute(inbound);
    }
    if (f.side === "client" && req.method === "REGISTER") {
      // RFC 3327 §4.3: the registrar routes requests for this AoR back through
      // us, and the flow token (RFC 5626 §5.1, `ob` for an outbound UA) onto this flow.
      const outbound = registersOutbound(req);
      const token = this.#tokenFor(f.st.flow);
      const transport = uriTransport(flow.transport);
      editor.insertPath(`<sip:${this.#sentBy(flow, "client")}${transport};lr;fl=${token}${outbound ? ";ob" : ""}>`);
    }
    const slices = editor.slices();
    f.target = target;
    const isInvite = req.method === "INVITE";
    const ct = new ClientTransaction(
      branch,
      flow,
      isInvite,
      slices,
      this.#pool.hold(f.slot),
      { ...this.#settings.timers, firstResponse: this.#settings.firstResponseTimeout },
      {
        response: (t, res) => this.#downstreamResponse(f, t, res),
        timeout: (t) => this.#downstreamTimeout(f, t),
        silent: (t) => this.#downstreamSilent(f, t),
      },
      (t) => this.#clientDone(t),
    );
    f.ct = ct;
    this.#clients.set(clientKey(branch, req.method), ct);
    this.#forwards.set(ct, f);
  }

  /**
   * host:port for our Via on a request leaving by `flow`: towards a backend
   * (it came from a client) the backend-side listener of that transport, so
   * new connections and datagrams from the backend find us; towards a client
   * the socket the flow uses.
   */
  #sentBy(flow: Flow, from: Side): string {
    return from === "client"
      ? `${hostOf(this.#sides.backend.address)}:${this.#sides.backend.port(flow.transport)}`
      : `${hostOf(flow.localAddress)}:${flow.localPort}`;
  }

  /** A Record-Route value naming the socket a flow uses; stream flows carry their id to come back on. */
  #recordRouteFor(flow: Flow, side: Side): string {
    const token = side === "client" ? `;fl=${this.#tokenFor(flow)}` : "";
    return `<sip:${hostOf(flow.localAddress)}:${flow.localPort}${uriTransport(flow.transport)};lr${token}>`;
  }

  /** RFC 5626 §5.2: a connection by its flow id; a UDP peer by its address pair and our listener. */
  #tokenFor(flow: Flow): string {
    const tokens = this.#sides.tokens;
    return flow.reliable
      ? tokens.issue(flow.id)
      : tokens.issueUdp(flow.remoteAddress, flow.remotePort, this.#sides.udpListenerOf(flow));
  }

  #downstreamResponse(f: Forward, ct: ClientTransaction, res: SipResponse): void {
    const status = res.status;
    const current = f.ct === ct;
    if (status >= 200) this.#lingerClient(ct);
    if (f.target !== undefined) {
      const failure = status >= 300 && this.#settings.failoverOn.includes(status);
      if (failure) this.#dispatcher.failed(f.target);
      else this.#dispatcher.answered(f.target);
    }
    if (status === 100) return; // hop by hop: sipedge sent its own
    if (!current) return; // an attempt abandoned for silence answered late
    const callId = f.callId;
    if (status < 200) {
      f.provisional = true;
      if (f.cancelled) this.#sendCancel(f);
      else if (f.req.method === "INVITE") this.#armTimerC(f); // RFC 3261 §16.7 step 2: reset on each provisional
      this.#forwardUp(f, res);
      return;
    }
    if (status < 300) {
      if (!f.st.finished && f.req.method === "INVITE" && f.target !== undefined && callId !== undefined) {
        this.#dispatcher.dialogStarted(f.target, callId, this.#sides.trunkOf(f.st.flow));
      }
      if (f.req.method === "BYE" && callId !== undefined) this.#dispatcher.dialogEnded(callId);
      if (f.req.method === "REGISTER" && f.side === "client" && f.st.flow.reliable) this.#bound(f.req, f.st.flow);
      this.#forwardUp(f, res);
      this.#clearTimerC(f);
      return;
    }
    if (f.req.method === "INVITE") {
      const to = res.indexOf(HeaderId.To);
      ct.ack([buildInTransaction(f.req, "ACK", f.requestUri, f.via, f.routesOut, res.headerValue(to))]);
    }
    if (f.dispatched && !f.provisional && !f.cancelled && this.#settings.failoverOn.includes(status)) {
      this.counters.failovers++;
      this.#attempt(f);
      return;
    }
    this.#forwardUp(f, res);
    this.#clearTimerC(f);
  }

  #downstreamSilent(f: Forward, ct: ClientTransaction): void {
    if (f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    if (f.cancelled) {
      ct.terminate();
      this.#finish(f, { status: 487, reason: "Request Terminated" });
      return;
    }
    if (!f.dispatched) return;
    // Keep the abandoned attempt to absorb a late answer, but stop its retransmissions.
    this.counters.failovers++;
    this.#attempt(f);
  }

  #downstreamTimeout(f: Forward, ct: ClientTransaction): void {
    if (f.ct === ct && f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    if (f.dispatched && !f.provisional && !f.cancelled) {
      this.counters.failovers++;
      this.#attempt(f);
      return;
    }
    this.#finish(
      f,
      f.cancelled ? { status: 487, reason: "Request Terminated" } : { status: 408, reason: "Request Timeout" },
    );
  }

  /** Sends a response received from downstream upstream, without our Via (RFC 3261 §16.7 step 9). */
  #forwardUp(f: Forward, res: SipResponse): void {
    const edited = new MessageEditor(res).removeTopVia();
    if (!edited.ok) return;
    // RFC 5626 §5.4: tell an outbound UA how often to keep its flow alive, unless its registrar did.
    if (
      f.req.method === "REGISTER" &&
      res.status >= 200 &&
      res.status < 300 &&
      f.side === "client" &&
      f.st.flow.reliable &&
      res.values("flow-timer").length === 0 &&
      registersOutbound(f.req)
    ) {
      edited.value.addHeader("Flow-Timer", String(Math.round(this.#settings.flowTimer / 1000)));
    }
    // The response's slot stays while the transaction keeps it for retransmissions.
    f.st.respond(edited.value.slices(), res.status, false, this.#pool.hold(this.#slot));
  }

  /** Answers the upstream side locally, ending the forward. */
  #finish(f: Forward, r: LocalResponse): void {
    this.#clearTimerC(f);
    if (f.st.finished) return;
    f.st.respond([this.#local(f.req, f.st.flow, r)], r.status, true);
  }

  #cancel(req: SipRequest, flow: Flow): void {
    const st = this.#servers.get(serverKey(req, "INVITE"));
    if (st === undefined) {
      this.#respond(req, flow, { status: 481, reason: "Call/Transaction Does Not Exist" });
      return;
    }
    // RFC 3261 §16.10: answer the CANCEL itself, then cancel what is pending.
    this.#respond(req, flow, { status: 200, reason: "OK" });
    const f = this.#forwards.get(st);
    if (f === undefined || f.cancelled || st.finished) return;
    f.cancelled = true;
    // Without a provisional response the CANCEL waits for one (RFC 3261 §9.1);
    // a backend that stays silent gets no more time than the failover would give it.
    if (f.provisional) this.#sendCancel(f);
  }

  /** RFC 3261 §9.1: CANCEL only after a provisional response, on the INVITE's branch. */
  #sendCancel(f: Forward): void {
    const ct = f.ct;
    if (ct === undefined || ct.state !== "proceeding") return;
    const to = f.req.indexOf(HeaderId.To);
    const bytes = buildInTransaction(f.req, "CANCEL", f.requestUri, f.via, f.routesOut, f.req.headerValue(to));
    const cancel = new ClientTransaction(
      ct.branch,
      ct.flow,
      false,
      [bytes],
      UNHELD,
      { ...this.#settings.timers, firstResponse: 64 * this.#settings.timers.t1 },
      { response: () => {}, timeout: () => {}, silent: () => {} },
      (t) => this.#clientDone(t),
    );
    this.#clients.set(clientKey(ct.branch, "CANCEL"), cancel);
  }

  /** RFC 3261 §16.6 step 11: Timer C bounds how long an INVITE may ring. */
  #armTimerC(f: Forward): void {
    this.#clearTimerC(f);
    f.timerC = setTimeout(() => {
      f.timerC = undefined;
      if (f.provisional) {
        f.cancelled = true;
        this.#sendCancel(f);
      }
      this.#finish(f, { status: 408, reason: "Request Timeout" });
    }, this.#settings.timers.timerC);
  }

  #clearTimerC(f: Forward): void {
    if (f.timerC !== undefined) clearTimeout(f.timerC);
    f.timerC = undefined;
  }

  #response(res: SipResponse): void {
    const vias = res.via();
    const top = vias.ok ? vias.value[0] : undefined;
    const cseq = res.cseq();
    const ct =
      top?.branch === undefined || !cseq.ok ? undefined : this.#clients.get(clientKey(top.branch, cseq.value.method));
    if (ct === undefined) {
      // RFC 3261 §16.7: nothing waits for it; 2xx retransmissions are met by the Accepted state.
      this.counters.strayResponses++;
      return;
    }
    ct.receive(res);
  }

  /**
   * ACK for a 2xx (and any request with no transaction) goes on statelessly
   * along its route set (RFC 3261 §16.11), with a Via whose branch is
   * derived from the incoming one so retransmissions get the same.
   */
  #forwardStateless(req: SipRequest, side: Side, client: ClientFlow, ours: OwnRoutes): void {
    const { popped, list } = ours;
    // Nowhere to go (RFC 3261 §16.3 step 3), come back to us (step 4), or addressed to sipedge itself
    // with no Route left (an ACK to us whose To tag is not ours: an answer from before a restart):
    // with no transaction to stop it, forwarding any of these would send it round and round.
    const mf = req.maxForwards();
    if ((mf.ok && mf.value === 0) || (side === "client" && this.#cameBack(req))) return;
    if (popped === list.length && this.#uriIsLocal(req)) return;
    const flow = this.#routed(req, ours, side, client);
    if (flow === undefined) return;
    const vias = req.via();
    const topBranch = vias.ok ? (vias.value[0]?.branch ?? "") : "";
    const branch = `z9hG4bK-sl${createHash("sha1").update(topBranch).update(req.uriText).digest("hex").slice(0, 16)}`;
    const editor = new MessageEditor(req).prependVia(
      `SIP/2.0/${flow.transport.toUpperCase()} ${this.#sentBy(flow, side)};branch=${branch}`,
    );
    if (popped > 0) editor.removeRoutes(popped);
    editor.setMaxForwards(mf.ok && mf.value !== undefined ? Math.max(mf.value - 1, 0) : 70);
    flow.send(editor.slices());
  }

  /**
   * Where a routed request goes: towards a backend when it came from a
   * client; towards a client on the stream its flow token resolved to, else
   * by UDP to the next Route value or the Request-URI.
   */
  #routed(req: SipRequest, { list, popped }: OwnRoutes, side: Side, client: ClientFlow): Flow | undefined {
    if (client.kind === "here") return client.flow;
    if (client.kind !== "untokened") return undefined;
    const uri = parseUri(list[popped]?.value.uri ?? req.uriText);
    if (!uri.ok || !isSipUri(uri.value)) return undefined;
    const host = bareHost(uri.value.host);
    const transport = (findParam(uri.value.params, "transport")?.value ?? "udp").toLowerCase();
    // RFC 7118 §5: only the UA opens a WebSocket; without its flow there is no way to it.
    if (transport === "ws" || transport === "wss") return undefined;
    const port = uri.value.port ?? (transport === "tls" || uri.value.scheme === "sips" ? 5061 : 5060);
    return side === "client"
      ? this.#sides.backendFlow({ host, port, transport })
      : this.#sides.clientUdpFlow(host, port);
  }

  /**
   * A REGISTER over a client stream succeeded: its endpoints (RFC 5626
   * `+sip.instance` and `reg-id`, else AoR and Contact URI) are on that flow
   * now, for as long as the registration lasts.
   */
  #bound(req: SipRequest, flow: Flow): void {
    const contacts = req.contacts();
    const to = req.to();
    // "*" removes the AoR's bindings: they expire here on their own.
    if (!contacts.ok || contacts.value === undefined || contacts.value.star || !to.ok) return;
    const expiresHeader = req.expires();
    const fallback = (expiresHeader.ok ? expiresHeader.value : undefined) ?? 3600;
    const byExpiry = new Map<number, string[]>();
    for (const c of contacts.value.list) {
      const instance = findParam(c.params, "+sip.instance")?.value;
      const regId = findParam(c.params, "reg-id")?.value;
      const key = instance !== undefined && regId !== undefined ? `${instance} ${regId}` : `${to.value.uri} ${c.uri}`;
      const expires = Number(findParam(c.params, "expires")?.value ?? fallback);
      const keys = byExpiry.get(expires) ?? [];
      keys.push(key);
      byExpiry.set(expires, keys);
    }
    for (const [expires, keys] of byExpiry) this.#sides.endpointsBound(keys, flow.id, expires * 1000);
  }

  /** The counters of the trunk a client flow belongs to, if it belongs to one. */
  #trunk(flow: Flow): TrunkCounters | undefined {
    const name = this.#sides.trunkOf(flow);
    if (name === undefined) return undefined;
    let c = this.counters.trunks[name];
    if (c === undefined) {
      c = { requests: 0, keepalives: 0, calls: 0, lastSeen: 0 };
      this.counters.trunks[name] = c;
    }
    return c;
  }

  /**
   * The client flow a request from a backend is for, by the flow token in
   * the first of our Route values that carries one (Record-Route or Path):
   * that flow while it lives; else the flow its endpoints re-registered over
   * (RFC 5626: the endpoint, not the socket); owned by another worker, a
   * hand-off; gone, a 430. `pinned`: another worker already resolved it.
   */
  #clientFlow({ list, popped }: OwnRoutes, pinned: number | undefined): ClientFlow {
    let id = pinned;
    if (id === undefined) {
      const token = list
        .slice(0, popped)
        .map((r) => flowTokenOf(r.value.uri))
        .find((t) => t !== undefined);
      if (token === undefined) return UNTOKENED;
      const verified = this.#sides.tokens.verify(token);
      if (verified === undefined) return { kind: "forged" };
      if (verified.kind === "udp") {
        // Any worker sends from the shared (reusePort) UDP socket: no hand-off.
        const udp = this.#sides.clientUdpFlow(verified.address, verified.port, verified.listener);
        return udp === undefined ? { kind: "gone" } : { kind: "here", flow: udp };
      }
      // Issued before a restart: that flow ended with the process.
      if (!verified.current) return { kind: "gone" };
      id = verified.flowId;
    }
    const self = this.#sides.worker;
    if (flowOwner(id) !== self) return { kind: "elsewhere", owner: flowOwner(id), flowId: id };
    const live = this.#sides.connection(id);
    if (live !== undefined && !live.closed) return { kind: "here", flow: live };
    const now = pinned === undefined ? this.#sides.currentFlow(id) : undefined;
    if (now === undefined || now === id) return { kind: "gone" };
    if (flowOwner(now) !== self) return { kind: "elsewhere", owner: flowOwner(now), flowId: now };
    const moved = this.#sides.connection(now);
    return moved !== undefined && !moved.closed ? { kind: "here", flow: moved } : { kind: "gone" };
  }

  /**
   * Passes the request, as received, to its flow's owner, which handles it
   * as if the backend had sent it there; responses go back from the owner to
   * the backend's address (RFC 3261 §18.2.2: UDP to the source, streams to
   * the Via sent-by). A full queue is a counted refusal, never a wait.
   */
  #handOff(req: SipRequest, flow: Flow, owner: number, flowId: number): void {
    const top = req.via();
    const via = top.ok ? top.value[0] : undefined;
    const replyTo: PeerAddress =
      flow.reliable && via !== undefined
        ? {
            host: bareHost(via.host),
            port: via.port ?? (flow.transport === "tls" ? 5061 : 5060),
            transport: flow.transport,
          }
        : { host: flow.remoteAddress, port: flow.remotePort, transport: flow.transport };
    if (this.#sides.handOff(owner, req.buf, replyTo, flowId)) {
      this.counters.handedOff++;
      return;
    }
    this.counters.handOffRefused++;
    if (req.method !== "ACK") this.#respond(req, flow, this.#unavailable());
  }

  /**
   * A request reaching the client side that already carries a Via this
   * worker added went out to a backend and was sent back to us: a loop, as
   * sipedge never hands a request from a backend to another backend.
   */
  #cameBack(req: SipRequest): boolean {
    const vias = req.via();
    return vias.ok && vias.value.some((v) => v.branch?.startsWith(this.#branchPrefix) === true);
  }

  /** The request's Route values, and how many at the top name sipedge (RFC 3261 §16.4: they are popped). */
  #ownRoutes(req: SipRequest): OwnRoutes {
    const routes = req.addresses(HeaderId.Route);
    const list = routes.ok ? routes.value : [];
    let popped = 0;
    while (popped < list.length && this.#namesUs((list[popped] as Located<Address>).value)) popped++;
    return { list, popped };
  }

  #namesUs(a: Address): boolean {
    const uri = parseUri(a.uri);
    return uri.ok && isSipUri(uri.value) && this.#sides.isLocal(bareHost(uri.value.host), uri.value.port);
  }

  /** OPTIONS with no user part to one of our addresses is a question to sipedge itself. */
  #addressedToUs(req: SipRequest): boolean {
    const uri = req.uri();
    return uri.ok && isSipUri(uri.value) && uri.value.user === undefined && this.#uriIsLocal(req);
  }

  /** The Request-URI names one of sipedge's own sockets (whatever its user part). */
  #uriIsLocal(req: SipRequest): boolean {
    const uri = req.uri();
    return uri.ok && isSipUri(uri.value) && this.#sides.isLocal(bareHost(uri.value.host), uri.value.port);
  }

  #unavailable(): LocalResponse {
    const after = retryAfterWithJitter(this.#settings.retryAfter);
    return { status: 503, reason: "Service Unavailable", headers: [`Retry-After: ${after}`] };
  }

  #local(req: SipRequest, flow: Flow, r: LocalResponse): Buffer {
    this.counters.localResponses++;
    const final = r.status >= 200 ? { ...r, toTag: this.#tags.tagFor(req) } : r;
    return buildResponse(req, final, { address: flow.remoteAddress, port: flow.remotePort });
  }

  /** A stateless local answer (no transaction): OPTIONS, CANCEL, 483, 400. */
  #respond(req: SipRequest, flow: Flow, r: LocalResponse): void {
    flow.send([this.#local(req, flow, r)], r.status >= 300);
  }

  #branch(): string {
    this.#branchCounter = (this.#branchCounter + 1) % Number.MAX_SAFE_INTEGER;
    return this.#branchPrefix + this.#branchCounter.toString(36);
  }

  /**
   * The pool runs short, or too many finished transactions are kept (their
   * state is heap memory the budget must bound too): end the ones that only
   * linger to absorb retransmissions (RFC 3261 Timers J, I, L), oldest
   * first, before any new work is refused. A retransmission they would have
   * answered is passed on as new instead, which the next hop answers again.
   */
  #reclaim(): void {
    for (const st of this.#lingering) {
      if (this.#pool.level === "normal" && this.#lingering.size <= this.#settings.maxLingering) return;
      this.counters.reclaimed++;
      st.terminate();
    }
  }

  #serverDone(st: ServerTransaction): void {
    this.#lingering.delete(st);
    this.#servers.delete(st.key);
    const f = this.#forwards.get(st);
    if (f !== undefined) this.#clearTimerC(f);
    this.#forwards.delete(st);
  }

  /**
   * A client transaction past its final response lingers for late copies of
   * it (Timers D, K, M); like finished server transactions, only so many
   * linger, the oldest ending early (a late 2xx copy is then a stray).
   */
  #lingerClient(ct: ClientTransaction): void {
    if (this.#lingeringClients.has(ct)) return;
    this.#lingeringClients.add(ct);
    if (this.#lingeringClients.size <= this.#settings.maxLingering) return;
    const [oldest] = this.#lingeringClients;
    this.counters.reclaimed++;
    oldest?.terminate();
  }

  #clientDone(ct: ClientTransaction): void {
    this.#lingeringClients.delete(ct);
    for (const method of ["INVITE", "CANCEL", "OTHER"]) {
      const key = clientKey(ct.branch, method);
      if (this.#clients.get(key) === ct) this.#clients.delete(key);
    }
    this.#forwards.delete(ct);
  }
}

/**
 * RFC 3261 §17.2.3: a server transaction is the top Via's branch and
 * sent-by plus the method (ACK and CANCEL look for their INVITE); without
 * the magic cookie, the RFC 2543 fallback keys on the request's identity.
 */
function serverKey(req: SipRequest, method: string): string {
  const vias = req.via();
  const top: Via | undefined = vias.ok ? vias.value[0] : undefined;
  const sentBy = top === undefined ? "" : `${top.host}:${top.port ?? ""}`;
  if (top?.branch?.startsWith("z9hG4bK") && top.branch.length > 7) return `${top.branch}|${sentBy}|${method}`;
  const callId = req.callId();
  const cseq = req.cseq();
  const from = req.from();
  const fromTag = from.ok ? (findParam(from.value.params, "tag")?.value ?? "") : "";
  return `2543|${callId.ok ? callId.value : ""}|${cseq.ok ? cseq.value.seq : ""}|${fromTag}|${sentBy}|${method === "ACK" || method === "CANCEL" ? "INVITE" : method}|${req.uriText}`;
}

/** Client transactions by our branch; CANCEL shares its INVITE's branch but is a transaction of its own. */
function clientKey(branch: string, method: string): string {
  return method === "INVITE" || method === "ACK" ? `${branch}|I` : method === "CANCEL" ? `${branch}|C` : `${branch}|O`;
}

/** A REGISTER whose Contact has a reg-id: the UA uses outbound (RFC 5626 §4.2.1). */
function registersOutbound(req: SipRequest): boolean {
  const contacts = req.contacts();
  return (
    contacts.ok &&
    contacts.value?.star === false &&
    contacts.value.list.some((c) => findParam(c.params, "reg-id") !== undefined)
  );
}

/** The `fl` URI parameter (a flow token) sipedge put in its own Record-Route or Path value. */
function flowTokenOf(uri: string): string | undefined {
  return /;fl=([A-Za-z0-9_-]+)/.exec(uri)?.[1];
}

function hasToTag(req: SipRequest): boolean {
  const to = req.to();
  return to.ok && findParam(to.value.params, "tag") !== undefined;
}

/** The URI `transport` parameter for a flow's transport: RFC 7118 §5.2 names WS and WSS both `ws`. */
function uriTransport(t: TransportName): string {
  return t === "udp" ? "" : `;transport=${t === "wss" ? "ws" : t}`;
}

function hostOf(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}
