import { hash, randomFillSync } from "node:crypto";
import { detached, HeaderId, MessageEditor, type SipRequest, type SipResponse, uriHost } from "../sip/index.ts";
import type { Flow, TransportName } from "../transport/flow.ts";
import type { BufferPool, PoolSlot } from "../transport/pool.ts";
import type { LocalAnswers } from "./local-answers.ts";
import type { Dispatcher, PeerAddress, ProxyCounters, ProxySettings, Side, Sides, Target } from "./ports.ts";
import { registersOutbound } from "./registration.ts";
import { backendParam, type Decision, type OwnRoutes } from "./routing.ts";
import type { TimerQueue } from "./timer-queue.ts";
import type { Forward, TransactionTable } from "./transaction-table.ts";
import { type ClientEvents, ClientTransaction, type ServerTransaction } from "./transactions.ts";

const DIALOG_CREATING = new Set(["INVITE", "SUBSCRIBE", "REFER", "NOTIFY"]);

type RequestTimers = ProxySettings["timers"] & { readonly firstResponse: number };

/** What a forwarder needs of the worker that owns it, given once. */
export interface ForwarderParts {
  readonly sides: Sides;
  readonly dispatcher: Dispatcher;
  readonly pool: BufferPool;
  readonly table: TransactionTable;
  readonly queue: TimerQueue;
  readonly answers: LocalAnswers;
  readonly counters: ProxyCounters;
  /** What the attempts' client transactions report, one set of handlers for all of them. */
  readonly events: ClientEvents;
  readonly ended: (t: ClientTransaction) => void;
}

/**
 * Sending a request on (RFC 3261 §16.6): which backend an attempt goes to,
 * our Via with a branch nobody can guess, Record-Route and Path with their
 * tokens, Max-Forwards, and the client transaction that carries it; and
 * the stateless forwarding of an ACK (§16.11); and the hand-off of a
 * backend's request to the worker that owns its client flow. One per worker.
 */
export class Forwarder {
  readonly #sides: Sides;
  readonly #dispatcher: Dispatcher;
  readonly #pool: BufferPool;
  readonly #table: TransactionTable;
  readonly #queue: TimerQueue;
  readonly #answers: LocalAnswers;
  readonly #counters: ProxyCounters;
  readonly #clientEvents: ClientEvents;
  readonly #clientEnded: (t: ClientTransaction) => void;
  /** This worker's mark on its branches (a request that comes back with it has looped), then 64 random bits. */
  readonly #branchPrefix = `z9hG4bK-se${randomHex(3)}-`;
  readonly #random = new RandomBits();
  /** The timers client transactions run by: one object for all of them, not one per transaction. */
  #requestTimers: RequestTimers;

  constructor(settings: ProxySettings, parts: ForwarderParts) {
    this.#sides = parts.sides;
    this.#dispatcher = parts.dispatcher;
    this.#pool = parts.pool;
    this.#table = parts.table;
    this.#queue = parts.queue;
    this.#answers = parts.answers;
    this.#counters = parts.counters;
    this.#clientEvents = parts.events;
    this.#clientEnded = parts.ended;
    this.#requestTimers = requestTimers(settings);
  }

  /** SIGHUP: for the attempts that start from now on. */
  reconfigure(settings: ProxySettings): void {
    this.#requestTimers = requestTimers(settings);
  }

  /** The forward of a request the policy sends on, with no attempt yet; `routes`: our Route values (routing.ts). */
  open(
    st: ServerTransaction,
    req: SipRequest,
    slot: PoolSlot | undefined,
    side: Side,
    route: Extract<Decision, { kind: "dispatch" | "backend" | "client" }>,
    routes: OwnRoutes["list"],
    toTagged: boolean,
  ): Forward {
    const callId = req.callId();
    return {
      st,
      req,
      method: req.method,
      slot,
      callId: callId.ok ? callId.value : undefined,
      side,
      dispatched: route.kind === "dispatch",
      tried: undefined,
      remove: route.remove,
      recordRoute: DIALOG_CREATING.has(req.method) && !toTagged,
      ct: undefined,
      target: undefined,
      routesOut: routeTexts(req, routes, route.remove),
      requestUri: req.uriText,
      via: "",
      provisional: false,
      cancelled: false,
      timerC: undefined,
      recordRouted: undefined,
      deadline: undefined,
    };
  }

  /** Picks the next backend and forwards to it; 503 with Retry-After when none is left. */
  attempt(f: Forward): void {
    const req = f.req;
    if (req === undefined) return; // answered, and its last attempt too: nothing to try again
    const target = this.#dispatcher.pick(req, f.tried ?? NONE_TRIED);
    if (target === undefined) {
      this.#counters.exhausted++;
      this.#answers.finish(f, this.#answers.unavailable());
      return;
    }
    f.tried ??= new Set();
    f.tried.add(target);
    const flow = this.#sides.backendFlow(target);
    if (flow === undefined) {
      this.#dispatcher.failed(target);
      this.attempt(f);
      return;
    }
    this.send(f, req, flow, target);
  }

  /** Forwards one attempt over `flow`; `target` is the backend when the dispatcher chose it. */
  send(f: Forward, req: SipRequest, flow: Flow, target: Target | undefined): void {
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
    if (f.remove > 0) editor.removeRoutes(f.remove);
    const mf = req.maxForwards();
    editor.setMaxForwards(mf.ok && mf.value !== undefined ? Math.min(mf.value, 256) - 1 : 70);
    if (f.recordRoute) {
      // RFC 3261 §16.6 step 4, with two entries since the two sides are
      // different sockets: the top one names the side the request leaves by.
      // The backend-side entry names, signed, the member this dialog lives on:
      // the dialog's requests from the client go there and nowhere else (routing.ts).
      const callId = f.callId ?? "";
      const inbound = this.#recordRouteFor(f.st.flow, f.side, callId, req);
      const bk = target === undefined ? "" : backendParam(this.#sides.tokens, target, callId);
      const outbound =
        f.side === "client"
          ? `<sip:${this.#sentBy(flow, "client")}${uriTransport(flow.transport)};lr${bk}>`
          : this.#recordRouteFor(flow, "client", callId, req);
      editor.insertRecordRoute(outbound).insertRecordRoute(inbound);
      // Kept only where recordRouteKept reads it, a client's answer, and as strings of their own: they linger with the call.
      f.recordRouted = f.side === "backend" ? [detached(outbound), detached(inbound)] : undefined;
    }
    if (f.side === "client" && req.method === "REGISTER") {
      // RFC 3327 §4.3: the registrar routes requests for this AoR back through
      // us, and the flow token (RFC 5626 §5.1, `ob` for an outbound UA) onto this flow.
      const outbound = registersOutbound(req);
      const token = this.#tokenFor(f.st.flow);
      const transport = uriTransport(flow.transport);
      editor.insertPath(`<sip:${this.#sentBy(flow, "client")}${transport};lr;fl=${token}${outbound ? ";ob" : ""}>`);
    }
    const slices = [editor.toBuffer()];
    f.target = target;
    const ct = new ClientTransaction(
      branch,
      flow,
      req.method,
      slices,
      this.#pool.hold(f.slot),
      this.#requestTimers,
      this.#queue,
      this.#clientEvents,
      this.#clientEnded,
    );
    f.ct = ct;
    this.#table.openClient(ct, f);
  }

  /**
   * host:port for our Via on a request leaving by `flow`: towards a backend
   * (it came from a client) the backend-side listener of that transport, so
   * new connections and datagrams from the backend find us; towards a client
   * the socket the flow uses.
   */
  #sentBy(flow: Flow, from: Side): string {
    return from === "client"
      ? `${uriHost(this.#sides.backend.address)}:${this.#sides.backend.port(flow.transport)}`
      : `${uriHost(flow.localAddress)}:${flow.localPort}`;
  }

  /**
   * A Record-Route value naming the socket a flow uses: a client flow's
   * carries its flow token to come back on; a backend's, the member it is.
   */
  #recordRouteFor(flow: Flow, side: Side, callId: string, req: SipRequest): string {
    let token = "";
    if (side === "client") token = `;fl=${this.#tokenFor(flow)}`;
    else {
      const member = this.memberBehind(flow, req);
      if (member !== undefined) token = backendParam(this.#sides.tokens, member, callId);
    }
    return `<sip:${uriHost(flow.localAddress)}:${flow.localPort}${uriTransport(flow.transport)};lr${token}>`;
  }

  /** RFC 5626 §5.2: a connection by its flow id; a UDP peer by its address pair and our listener. */
  #tokenFor(flow: Flow): string {
    const tokens = this.#sides.tokens;
    return flow.reliable
      ? tokens.issue(flow.id)
      : tokens.issueUdp(flow.remoteAddress, flow.remotePort, this.#sides.udpListenerOf(flow));
  }

  /**
   * A client's answer that makes a dialog with a backend carries our two
   * Record-Route values as we wrote them, on top (RFC 3261 §12.1.1: the UAS
   * copies them; anything upstream of it adds below). A client that edits
   * the values naming sipedge (another UA's flow token in place of its own)
   * would make the backend send that UA its dialog. Backends are trusted to
   * echo; only a client's answer is checked.
   */
  recordRouteKept(f: Forward, res: SipResponse): boolean {
    if (f.side !== "backend" || f.recordRouted === undefined) return true;
    const rr = res.addresses(HeaderId.RecordRoute);
    if (!rr.ok) return false;
    if (rr.value.length === 0) return true; // no route set at all: the dialog's requests come by Contact, untokened
    return f.recordRouted.every((v, i) => {
      const got = rr.value[i];
      return got !== undefined && res.buf.toString("latin1", got.start, got.end) === v;
    });
  }

  /** Where the policy sends a routed request: the client flow a token named, or the dialog's backend. */
  flowFor(route: Extract<Decision, { kind: "backend" | "client" }>): Flow | undefined {
    return route.kind === "client" ? route.flow : this.#sides.backendFlow(route.target);
  }

  /**
   * ACK for a 2xx (and any ACK with no transaction) goes on statelessly
   * along its route set (RFC 3261 §16.11), with a Via whose branch is
   * derived from the incoming one so retransmissions get the same; only
   * where the routing policy sends requests: the backend our Record-Route
   * names, or a client flow a token names. Anything else has nowhere to go.
   */
  stateless(req: SipRequest, side: Side, route: Decision): void {
    // Come back to us (RFC 3261 §16.3 step 4) or out of hops (step 3): with no transaction to stop it,
    // forwarding it would send it round and round.
    const mf = req.maxForwards();
    if ((mf.ok && mf.value === 0) || (side === "client" && this.cameBack(req))) return;
    if (route.kind !== "client" && route.kind !== "backend") return;
    const flow = this.flowFor(route);
    if (flow === undefined) return;
    const vias = req.via();
    const topBranch = vias.ok ? (vias.value[0]?.branch ?? "") : "";
    const branch = `z9hG4bK-sl${hash("sha1", topBranch + req.uriText, "hex").slice(0, 16)}`;
    const editor = new MessageEditor(req).prependVia(
      `SIP/2.0/${flow.transport.toUpperCase()} ${this.#sentBy(flow, side)};branch=${branch}`,
    );
    if (route.remove > 0) editor.removeRoutes(route.remove);
    editor.setMaxForwards(mf.ok && mf.value !== undefined ? Math.max(mf.value - 1, 0) : 70);
    flow.send([editor.toBuffer()]);
  }

  /**
   * The member a backend's request comes from. Its address was checked on
   * arrival (receive); members sharing that address are told apart by the
   * port: a datagram's source, or, for a connection the backend opened from
   * a port of its own, the port its Via says it listens on.
   */
  memberBehind(flow: Flow, req: SipRequest): Target | undefined {
    let port = flow.remotePort;
    if (flow.reliable) {
      const vias = req.via();
      port = (vias.ok ? vias.value[0]?.port : undefined) ?? (flow.transport === "tls" ? 5061 : 5060);
    }
    return this.#dispatcher.memberAt(flow.remoteAddress, port, flow.transport);
  }

  /**
   * A request reaching the client side that already carries a Via this
   * worker added went out to a backend and was sent back to us: a loop, as
   * sipedge never hands a request from a backend to another backend.
   */
  cameBack(req: SipRequest): boolean {
    const vias = req.via();
    return vias.ok && vias.value.some((v) => v.branch?.startsWith(this.#branchPrefix) === true);
  }

  /**
   * Passes the request, as received, to its flow's owner, which handles it
   * as if the backend had sent it there; responses go back from the owner to
   * the backend (RFC 3261 §18.2.2: UDP to the source; over a stream, where
   * the member listens, not where its Via claims: the Via is the peer's word).
   * A full queue is a counted refusal, never a wait.
   */
  handOff(req: SipRequest, flow: Flow, owner: number, flowId: number): void {
    const member = flow.reliable ? this.memberBehind(flow, req) : undefined;
    const replyTo: PeerAddress =
      member !== undefined
        ? { host: member.host, port: member.port, transport: member.transport }
        : { host: flow.remoteAddress, port: flow.remotePort, transport: flow.transport };
    if (this.#sides.handOff(owner, req.buf, replyTo, flowId)) {
      this.#counters.handedOff++;
      return;
    }
    this.#counters.handOffRefused++;
    if (req.method !== "ACK") this.#answers.respond(req, flow, this.#answers.unavailable());
  }

  /** RFC 3261 §8.1.1.7: unique, and unguessable so that no one else can answer for the backend. */
  #branch(): string {
    return this.#branchPrefix + this.#random.hex64();
  }
}

function requestTimers(settings: ProxySettings): RequestTimers {
  return { ...settings.timers, firstResponse: settings.firstResponseTimeout };
}

/**
 * The Route values a request goes on with, as text. A plain loop, not a
 * closure over `req`: V8 puts a variable any closure captures into the
 * context every closure of that scope shares, so one made where a forward
 * opens (the core's #start, then) kept each request alive as long as
 * whatever else #start made (16.7 KB a lingering call in bench:call-path,
 * 7.4 KB without).
 */
function routeTexts(req: SipRequest, routes: OwnRoutes["list"], removed: number): string[] {
  const out: string[] = [];
  for (let i = removed; i < routes.length; i++) {
    const r = routes[i] as (typeof routes)[number];
    out.push(req.buf.toString("latin1", r.start, r.end));
  }
  return out;
}

/** Random bits for branches, drawn from the kernel a few kilobytes at a time rather than per call. */
class RandomBits {
  readonly #bytes = Buffer.alloc(4096);
  #used = this.#bytes.length;

  hex64(): string {
    if (this.#used + 8 > this.#bytes.length) {
      randomFillSync(this.#bytes);
      this.#used = 0;
    }
    const hex = this.#bytes.toString("hex", this.#used, this.#used + 8);
    this.#used += 8;
    return hex;
  }
}

function randomHex(bytes: number): string {
  return randomFillSync(Buffer.alloc(bytes)).toString("hex");
}

/** The URI `transport` parameter for a flow's transport: RFC 7118 §5.2 names WS and WSS both `ws`. */
/** No backend tried yet: a forward makes its own set only when it first tries one. */
const NONE_TRIED: ReadonlySet<Target> = new Set();

function uriTransport(t: TransportName): string {
  return t === "udp" ? "" : `;transport=${t === "wss" ? "ws" : t}`;
}
