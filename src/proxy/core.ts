import { checkMessage, dispositionOf, findParam, parseMessage, type SipRequest } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import type { BufferPool, PoolSlot } from "../transport/pool.ts";
import { Bugs } from "./bugs.ts";
import { Cancellation } from "./cancel.ts";
import { Downstream } from "./downstream.ts";
import { Forwarder } from "./forwarding.ts";
import { LocalAnswers } from "./local-answers.ts";
import type { Dispatcher, ProxyCounters, ProxySettings, ProxyStats, Side, Sides, TrunkCounters } from "./ports.ts";
import { type Decision, type OwnRoutes, Router } from "./routing.ts";
import { Screening } from "./screening.ts";
import { type LoadSample, LoadShedder, type RationChange } from "./shedder.ts";
import { TimerQueue } from "./timer-queue.ts";
import { countRequest, countResponse, trunkCounters, zeroCounters } from "./traffic-counters.ts";
import { serverKey, stopTimers, TransactionTable } from "./transaction-table.ts";
import { type ClientEvents, type ClientTransaction, type ServerEvents, ServerTransaction } from "./transactions.ts";
import { answerUnparsable } from "./unparsable.ts";

/**
 * The transaction-stateful proxy core (RFC 3261 §16) of one IO worker: the
 * owner of the pipeline (parse, validate, route, screen, start the
 * transaction). All its state (transactions, forwards) lives in this object
 * and the collaborators it makes, one each, and is touched only by the
 * thread that owns it.
 */
export class ProxyCore {
  readonly counters: ProxyCounters = zeroCounters();
  #settings: ProxySettings;
  readonly #sides: Sides;
  readonly #dispatcher: Dispatcher;
  readonly #router: Router;
  readonly #answers: LocalAnswers;
  readonly #cancels: Cancellation;
  readonly #forwarder: Forwarder;
  readonly #downstream: Downstream;
  readonly #screening: Screening;
  readonly #bugs = new Bugs(this.counters);
  readonly #pool: BufferPool;
  readonly #table: TransactionTable;
  readonly #shedder = new LoadShedder();
  /** The slot of the message being received (everything here runs inside one receive call). */
  #slot: PoolSlot | undefined;
  /** Every timer of this worker's transactions and forwards. */
  readonly #timers = new TimerQueue((err) => this.#bugs.caught("timer", err));
  /**
   * What transactions report, one set of handlers for all of them (a client
   * transaction's forward is looked up): handlers made per transaction were
   * closures and contexts every lingering transaction kept.
   */
  readonly #serverEvents: ServerEvents = {
    finished: () => {
      this.#table.pending--;
    },
    lingering: (t) => this.#bugs.safely("timer", () => this.#table.serverLingering(t)),
    terminated: (t) => this.#bugs.safely("timer", () => this.#serverDone(t)),
  };
  readonly #clientEvents: ClientEvents = {
    response: (t, res) => {
      const f = this.#table.forward(t);
      if (f !== undefined) this.#downstream.response(f, t, res, this.#slot);
    },
    timeout: (t) => this.#bugs.safely("timer", () => this.#withForward(t, "timeout")),
    silent: (t) => this.#bugs.safely("timer", () => this.#withForward(t, "silent")),
    unsent: (t) => this.#bugs.safely("timer", () => this.#withForward(t, "lost")),
  };
  readonly #clientEnded = (t: ClientTransaction) => this.#table.clientDone(t);

  constructor(settings: ProxySettings, sides: Sides, dispatcher: Dispatcher, pool: BufferPool) {
    this.#settings = settings;
    this.#sides = sides;
    this.#dispatcher = dispatcher;
    this.#pool = pool;
    this.#table = new TransactionTable(pool, this.counters, settings.maxLingering);
    this.#router = new Router(sides, dispatcher, settings.foreignRoute);
    this.#answers = new LocalAnswers(this.counters, settings);
    // One set of parts for the collaborators, each taking what it needs; all made once, here.
    const parts = {
      sides,
      dispatcher,
      pool,
      table: this.#table,
      queue: this.#timers,
      answers: this.#answers,
      counters: this.counters,
      shedder: this.#shedder,
      events: this.#clientEvents,
      ended: this.#clientEnded,
    };
    this.#forwarder = new Forwarder(settings, parts);
    this.#cancels = new Cancellation(settings, parts);
    const more = { ...parts, forwarder: this.#forwarder, cancels: this.#cancels };
    this.#downstream = new Downstream(settings, more);
    this.#screening = new Screening(settings.maxTransactions, more);
  }

  get transactions(): { server: number; client: number } {
    return { server: this.#table.servers, client: this.#table.clients };
  }

  stats(): ProxyStats {
    return { counters: this.counters, transactions: this.transactions };
  }

  /**
   * A connection closed: attempts on it that heard nothing will hear
   * nothing, so fail them over now rather than at the first-response
   * timeout (this is how a refused TCP connect to a backend shows).
   */
  flowClosed(flow: Flow): void {
    this.#bugs.safely("closed", () => {
      for (const ct of this.#table.clientsOn(flow)) {
        if (ct.state !== "calling" && ct.state !== "proceeding") continue;
        const f = this.#table.forward(ct);
        ct.terminate();
        if (f !== undefined) this.#downstream.lost(f, ct);
      }
    });
  }

  /**
   * How much CPU this worker's thread used over the last window, how busy
   * its event loop was, and the share of its UDP read turns that found a
   * backlog: the CPU ration follows them (proxy/shedder.ts).
   */
  loadSample(load: LoadSample): RationChange {
    return this.#shedder.sample(load);
  }

  /** New requests each window may start while the thread is saturated; undefined: no ration. */
  get ration(): number | undefined {
    return this.#shedder.ration;
  }

  /** SIGHUP: settings for the transactions that start from now on. */
  reconfigure(settings: ProxySettings): void {
    this.#settings = settings;
    this.#table.maxLingering = settings.maxLingering;
    this.#screening.maxTransactions = settings.maxTransactions;
    this.#router.reconfigure(settings.foreignRoute);
    this.#answers.reconfigure(settings);
    this.#cancels.reconfigure(settings);
    this.#forwarder.reconfigure(settings);
    this.#downstream.reconfigure(settings);
  }

  /**
   * SIGTERM: from now on new out-of-dialog requests get 503 with
   * Retry-After (so clients try another instance) and OPTIONS to sipedge
   * says 503; dialogs and transactions under way carry on.
   */
  drain(): void {
    this.#screening.draining = true;
  }

  /** No transaction is under way: a draining worker may close. */
  get idle(): boolean {
    return this.#table.servers === 0 && this.#table.clients === 0;
  }

  /** Ends every transaction and timer (the worker is closing its sockets). */
  close(): void {
    this.#table.terminateAll();
    this.#timers.clear();
  }

  /** Entry point for every whole SIP message a flow delivers. */
  /** `pinned`: the client flow another worker resolved this request to (a hand-off). */
  receive(bytes: Buffer, flow: Flow, side: Side, pinned?: number): void {
    this.counters.received++;
    // The backend side listens to configured members only (a hand-off was checked where it arrived).
    if (side === "backend" && pinned === undefined && !this.#fromMember(flow)) {
      this.counters.strangers++;
      return;
    }
    // The message lives in a pool slot from here; whatever keeps it takes a reference of its own.
    // With the pool empty it is read where it lies, and only a refusal can come of it.
    let slot = this.#pool.copy(bytes, false);
    if (slot === undefined || this.#pool.level !== "normal") {
      this.#table.reclaim();
      slot ??= this.#pool.copy(bytes, false);
    }
    this.#slot = slot;
    const held = slot?.bytes ?? bytes;
    try {
      this.#receive(held, flow, side, pinned);
    } catch (err) {
      // principle 3: a bug costs one message, never the worker.
      this.#caught(pinned === undefined ? side : "handoff", err, held, flow);
    } finally {
      this.#slot = undefined;
      if (slot !== undefined) this.#pool.release(slot);
    }
  }

  /**
   * A handler threw on a message: counted, logged (a line a second at
   * most), the message dropped; a request that started no transaction is
   * answered 500 so its sender need not wait for a timeout. Nothing here may
   * throw in turn.
   */
  #caught(where: string, err: unknown, bytes: Buffer, flow: Flow): void {
    this.#bugs.caught(where, err);
    try {
      const parsed = parseMessage(bytes);
      if (!parsed.ok || parsed.value.kind !== "request") return;
      const req = parsed.value;
      if (req.method === "ACK" || this.#table.server(serverKey(req, req.method)) !== undefined) return;
      this.#answers.respond(req, flow, { status: 500, reason: "Server Internal Error" });
    } catch {
      // The answer is best effort; the count and the log line above are what matter.
    }
  }

  /** Whether a backend-side message comes from a configured member's address. */
  #fromMember(flow: Flow): boolean {
    return this.#dispatcher.memberAt(flow.remoteAddress, flow.remotePort, flow.transport) !== undefined;
  }

  #receive(bytes: Buffer, flow: Flow, side: Side, pinned: number | undefined): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) {
      this.counters.malformed++;
      const unparsable = /^ACK /.test(bytes.toString("latin1", 0, 4))
        ? undefined
        : answerUnparsable(bytes, flow.reliable, parsed.error.code);
      if (unparsable !== undefined) this.#answers.respond(unparsable.req, flow, unparsable.answer);
      return;
    }
    const msg = parsed.value;
    if (msg.kind === "request" && msg.method === "ACK" && this.#ownAck(msg)) return;
    const valid = checkMessage(msg);
    if (!valid.ok) {
      this.counters.malformed++;
      if (msg.kind === "request" && msg.method !== "ACK") {
        const d = dispositionOf(valid.error.code, "request", flow.reliable ? "stream" : "datagram");
        if (d.action === "respond") this.#answers.respond(msg, flow, { status: d.status, reason: d.reason });
      }
      return;
    }
    const trunkName = side === "client" ? this.#sides.trunkOf(flow) : undefined;
    const trunk = trunkName === undefined ? undefined : trunkCounters(this.counters, trunkName);
    if (trunk !== undefined) trunk.lastSeen = Date.now();
    if (msg.kind === "response") {
      countResponse(this.counters, msg.status);
      this.#downstream.arrived(msg, flow);
    } else {
      countRequest(this.counters, msg.method, flow.transport);
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
    if (!to.ok || !this.#answers.ours(findParam(to.value.params, "tag")?.value)) return false;
    this.#table.acked(ack);
    return true;
  }

  #request(
    req: SipRequest,
    flow: Flow,
    side: Side,
    pinned: number | undefined,
    trunk: TrunkCounters | undefined,
  ): void {
    // Our Route values are read once: the routing policy decides from them where this may go.
    const ours = this.#router.ownRoutes(req);
    const toTagged = hasToTag(req);
    const callId = req.callId();
    const route =
      side === "client"
        ? this.#router.fromClient(ours, toTagged, callId.ok ? callId.value : "")
        : this.#router.fromBackend(ours, pinned);
    if (route.kind === "elsewhere") {
      this.#forwarder.handOff(req, flow, route.owner, route.flowId);
      return;
    }
    if (route.kind === "forged") {
      // Never a route into someone else's flow or to a backend we did not name: refused before any transaction.
      this.counters.forgedTokens++;
      if (req.method !== "ACK") this.#answers.respond(req, flow, { status: 403, reason: "Forbidden" });
      return;
    }
    if (req.method === "ACK") {
      if (!this.#table.acked(req)) this.#forwarder.stateless(req, side, route);
      return;
    }
    if (req.method === "CANCEL") {
      this.#cancels.received(req, flow);
      return;
    }
    const key = serverKey(req, req.method);
    const existing = this.#table.server(key);
    if (existing !== undefined) {
      existing.retransmitted();
      return;
    }
    const answer = this.#screening.answer(req, flow, side, route, trunk);
    if (answer !== undefined) {
      this.#answers.respond(req, flow, answer);
      return;
    }
    if (route.kind === "dispatch" || route.kind === "backend" || route.kind === "client") {
      this.#start(key, req, flow, side, route, ours.list, toTagged);
    }
  }

  /** Opens the server transaction and sends the request where the policy said: the pool, a backend, a client flow. */
  #start(
    key: string,
    req: SipRequest,
    flow: Flow,
    side: Side,
    route: Extract<Decision, { kind: "dispatch" | "backend" | "client" }>,
    routes: OwnRoutes["list"],
    toTagged: boolean,
  ): void {
    const st = new ServerTransaction(
      key,
      req,
      this.#pool.hold(this.#slot),
      flow,
      this.#settings.timers,
      this.#timers,
      this.#serverEvents,
    );
    this.#table.openServer(st);
    if (req.method === "INVITE") st.respond([this.#answers.build(req, flow, { status: 100, reason: "Trying" })], 100);
    const forward = this.#forwarder.open(st, req, this.#slot, side, route, routes, toTagged);
    this.#table.attach(st, forward);
    this.#cancels.armDeadline(forward);
    if (req.method === "INVITE") this.#cancels.armTimerC(forward);
    if (route.kind === "dispatch") {
      this.#forwarder.attempt(forward);
      return;
    }
    const dest = this.#forwarder.flowFor(route);
    if (dest === undefined) {
      this.#answers.finish(forward, this.#answers.unavailable());
      return;
    }
    this.#forwarder.send(forward, req, dest, route.kind === "backend" ? route.target : undefined);
  }

  #serverDone(st: ServerTransaction): void {
    const f = this.#table.serverDone(st);
    if (f !== undefined) stopTimers(f);
  }

  /** An attempt heard no final answer, one way or another: its forward's downstream side acts on it. */
  #withForward(ct: ClientTransaction, ended: "timeout" | "silent" | "lost"): void {
    const f = this.#table.forward(ct);
    if (f !== undefined) this.#downstream[ended](f, ct);
  }
}

function hasToTag(req: SipRequest): boolean {
  const to = req.to();
  return to.ok && findParam(to.value.params, "tag") !== undefined;
}
