import {
  bareHost,
  checkMessage,
  dispositionOf,
  findParam,
  HeaderId,
  isSipUri,
  MessageEditor,
  parseMessage,
  type SipErrorCode,
  type SipRequest,
  type SipResponse,
} from "../sip/index.ts";
import type { Flow, TransportName } from "../transport/flow.ts";
import type { BufferPool, PoolSlot } from "../transport/pool.ts";
import { admit } from "./admission.ts";
import { Cancellation } from "./cancel.ts";
import { type Finish, type FinishStatus, failover, type Retry, type Wait } from "./failover.ts";
import { Forwarder, routeTexts } from "./forwarding.ts";
import { FLOW_FAILED, LocalAnswers, REQUEST_TERMINATED, REQUEST_TIMEOUT } from "./local-answers.ts";
import type { Dispatcher, PeerAddress, ProxyCounters, ProxySettings, Side, Sides, TrunkCounters } from "./ports.ts";
import { boundEndpoints, registerProblem, registersOutbound } from "./registration.ts";
import { buildInTransaction } from "./requests.ts";
import type { LocalResponse } from "./responses.ts";
import { type Decision, type OwnRoutes, REFUSAL_RESPONSE, Router } from "./routing.ts";
import { LoadShedder } from "./shedder.ts";
import { TimerQueue } from "./timer-queue.ts";
import {
  type Forward,
  letGo,
  resends,
  sameFlow,
  serverKey,
  stopTimers,
  TransactionTable,
} from "./transaction-table.ts";
import { type ClientEvents, type ClientTransaction, type ServerEvents, ServerTransaction } from "./transactions.ts";

/** Counter keys for responses by status class (the parser admits 100-699). */
const RESPONSE_CLASSES = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx"];

/** "METHOD transport", the key requests are counted by: made once for each pair, not per message. */
function requestKey(method: string, transport: TransportName): string {
  return (REQUEST_KEYS.get(method) ?? OTHER_KEYS)[transport];
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
const TRANSPORTS: readonly TransportName[] = ["udp", "tcp", "tls", "ws", "wss"];
const keysFor = (method: string) =>
  Object.fromEntries(TRANSPORTS.map((t) => [t, `${method} ${t}`])) as Record<TransportName, string>;
const REQUEST_KEYS = new Map([...COUNTED_METHODS].map((m) => [m, keysFor(m)]));
const OTHER_KEYS = keysFor("OTHER");

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
    unroutable: { foreign_route: 0, no_dialog_route: 0, unknown_backend: 0, no_flow_token: 0 },
    strangers: 0,
    misdirectedResponses: 0,
    answersLimited: 0,
    internalErrors: {},
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
  readonly #router: Router;
  readonly #answers: LocalAnswers;
  readonly #cancels: Cancellation;
  readonly #forwarder: Forwarder;
  /** When a caught bug was last logged: one line a second at most. */
  #bugLogged = 0;
  #draining = false;
  readonly #pool: BufferPool;
  readonly #table: TransactionTable;
  readonly #shedder = new LoadShedder();
  /** The slot of the message being received (everything here runs inside one receive call). */
  #slot: PoolSlot | undefined;
  /** Every timer of this worker's transactions and forwards. */
  readonly #timers = new TimerQueue((err) => this.#bug("timer", err));
  /**
   * What transactions report, one set of handlers for all of them (a client
   * transaction's forward is looked up): handlers made per transaction were
   * closures and contexts every lingering transaction kept.
   */
  readonly #serverEvents: ServerEvents = {
    finished: () => {
      this.#table.pending--;
    },
    lingering: (t) => this.#safely("timer", () => this.#table.serverLingering(t)),
    terminated: (t) => this.#safely("timer", () => this.#serverDone(t)),
  };
  readonly #clientEvents: ClientEvents = {
    response: (t, res) => {
      const f = this.#table.forward(t);
      if (f !== undefined) this.#downstreamResponse(f, t, res);
    },
    timeout: (t) => this.#safely("timer", () => this.#withForward(t, this.#downstreamTimeout)),
    silent: (t) => this.#safely("timer", () => this.#withForward(t, this.#downstreamSilent)),
    unsent: (t) => this.#safely("timer", () => this.#withForward(t, this.#downstreamLost)),
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
    this.#forwarder = new Forwarder(settings, {
      sides,
      dispatcher,
      pool,
      table: this.#table,
      queue: this.#timers,
      answers: this.#answers,
      counters: this.counters,
      events: this.#clientEvents,
      ended: this.#clientEnded,
    });
    this.#cancels = new Cancellation(settings, this.#table, this.#answers, this.#timers, this.#clientEnded);
  }

  get transactions(): { server: number; client: number } {
    return { server: this.#table.servers, client: this.#table.clients };
  }

  /**
   * A connection closed: attempts on it that heard nothing will hear
   * nothing, so fail them over now rather than at the first-response
   * timeout (this is how a refused TCP connect to a backend shows).
   */
  flowClosed(flow: Flow): void {
    this.#safely("closed", () => {
      for (const ct of this.#table.clientsOn(flow)) {
        if (ct.state !== "calling" && ct.state !== "proceeding") continue;
        const f = this.#table.forward(ct);
        ct.terminate();
        if (f !== undefined) this.#downstreamLost(f, ct);
      }
    });
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
    this.#table.maxLingering = settings.maxLingering;
    this.#router.reconfigure(settings.foreignRoute);
    this.#answers.reconfigure(settings);
    this.#cancels.reconfigure(settings);
    this.#forwarder.reconfigure(settings);
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
    let slot = this.#pool.copy([bytes], false);
    if (slot === undefined || this.#pool.level !== "normal") {
      this.#table.reclaim();
      slot ??= this.#pool.copy([bytes], false);
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
    this.#bug(where, err);
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

  /** A bug: counted by where it was caught, logged a line a second at most. */
  #bug(where: string, err: unknown): void {
    const errors = this.counters.internalErrors;
    errors[where] = (errors[where] ?? 0) + 1;
    const now = Date.now();
    if (now - this.#bugLogged >= 1000) {
      this.#bugLogged = now;
      console.error(`sipedge: internal error in ${where} handling (dropped, the worker goes on):`, err);
    }
  }

  /**
   * What runs outside a message (a timer, a transaction's timeout, a closed
   * connection) has the same boundary as a message: a bug there costs that
   * one transaction, never the worker.
   */
  #safely(where: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.#bug(where, err);
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
        if (d.action === "respond") this.#answers.respond(msg, flow, { status: d.status, reason: d.reason });
      }
      return;
    }
    const trunk = side === "client" ? this.#trunk(flow) : undefined;
    if (trunk !== undefined) trunk.lastSeen = Date.now();
    if (msg.kind === "response") {
      const cls = RESPONSE_CLASSES[Math.floor(msg.status / 100)] as string;
      this.counters.responses[cls] = (this.counters.responses[cls] ?? 0) + 1;
      this.#response(msg, flow);
    } else {
      const key = requestKey(msg.method, flow.transport);
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
    if (!to.ok || !this.#answers.ours(findParam(to.value.params, "tag")?.value)) return false;
    this.#ackedHere(ack);
    return true;
  }

  /** RFC 3261 §17.2.1: the ACK for a non-2xx answer ends at the INVITE server transaction that sent it, if any. */
  #ackedHere(ack: SipRequest): boolean {
    const st = this.#table.inviteOf(ack);
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
    this.#answers.respond(again.value, flow, { status: status.status, reason: status.reason });
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
      this.#handOff(req, flow, route.owner, route.flowId);
      return;
    }
    if (route.kind === "forged") {
      // Never a route into someone else's flow or to a backend we did not name: refused before any transaction.
      this.counters.forgedTokens++;
      if (req.method !== "ACK") this.#answers.respond(req, flow, { status: 403, reason: "Forbidden" });
      return;
    }
    if (req.method === "ACK") {
      if (!this.#ackedHere(req)) this.#forwarder.stateless(req, side, route);
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
    const answer = this.#answerHere(req, flow, side, route, trunk);
    if (answer !== undefined) {
      this.#answers.respond(req, flow, answer);
      return;
    }
    if (route.kind === "dispatch" || route.kind === "backend" || route.kind === "client") {
      this.#start(key, req, flow, side, route, ours.list, toTagged);
    }
  }

  /**
   * What sipedge answers itself, before any transaction, if anything: a
   * question to sipedge (OPTIONS), RFC 3261 §16.3's checks, the routing
   * policy's refusals, and new work it will not take (draining, admission,
   * a REGISTER it refuses). Counted where an operator watches it.
   */
  #answerHere(
    req: SipRequest,
    flow: Flow,
    side: Side,
    route: Decision,
    trunk: TrunkCounters | undefined,
  ): LocalResponse | undefined {
    const mf = req.maxForwards();
    const maxForwards = mf.ok ? mf.value : undefined;
    if (req.method === "OPTIONS" && (maxForwards === 0 || this.#addressedToUs(req))) {
      if (trunk !== undefined) trunk.keepalives++;
      return !this.#draining && this.#dispatcher.ready() ? { status: 200, reason: "OK" } : this.#answers.unavailable();
    }
    if (maxForwards === 0) return { status: 483, reason: "Too Many Hops" }; // RFC 3261 §16.3 step 3
    if (side === "client" && this.#forwarder.cameBack(req)) return { status: 482, reason: "Loop Detected" }; // step 4
    if (route.kind === "refuse") {
      this.counters.unroutable[route.why]++;
      return REFUSAL_RESPONSE[route.why];
    }
    if (route.kind === "gone") {
      // RFC 5626 §5.3: no live flow to the endpoint; the registrar may try another.
      this.counters.flowFailed++;
      return FLOW_FAILED;
    }
    // A To tag alone proves nothing: only a request inside a dialog sipedge made passes as established.
    const inDialog = route.kind !== "dispatch";
    if (this.#draining && !inDialog) return this.#answers.unavailable();
    const refused = admit(
      { inDialog, trusted: side === "backend" || this.#sides.trusted(flow) },
      {
        level: this.#pool.level,
        transactions: this.#table.pending,
        maxTransactions: this.#settings.maxTransactions,
        ration: this.#shedder,
      },
    );
    if (refused !== undefined) {
      // principle 4: turned away early and cheaply, from the reserve if need be.
      this.counters.overload[refused]++;
      return this.#answers.unavailable();
    }
    const problem = side === "client" && req.method === "REGISTER" ? registerProblem(req) : undefined;
    return problem === undefined ? undefined : { status: 400, reason: problem };
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
    const callId = req.callId();
    const forward: Forward = {
      st,
      req,
      method: req.method,
      slot: this.#slot,
      callId: callId.ok ? callId.value : undefined,
      side,
      dispatched: route.kind === "dispatch",
      tried: new Set(),
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

  #downstreamResponse(f: Forward, ct: ClientTransaction, res: SipResponse): void {
    const status = res.status;
    const current = f.ct === ct;
    if (status >= 200) this.#table.lingerClient(ct);
    if (f.target !== undefined) {
      const failure = status >= 300 && this.#settings.failoverOn.includes(status);
      if (failure) this.#dispatcher.failed(f.target);
      else this.#dispatcher.answered(f.target);
    }
    if (status === 100) return; // hop by hop: sipedge sent its own
    if (!current) return; // an attempt abandoned for silence answered late
    if (status < 300 && !this.#forwarder.recordRouteKept(f, res)) {
      // The backend would take its route set from this answer: one whose flow token is not the one we
      // gave this client would send the dialog's requests into another UA's flow. Dropped; counted.
      this.counters.forgedTokens++;
      return;
    }
    const callId = f.callId;
    if (status < 200) {
      f.provisional = true;
      if (f.cancelled) this.#cancels.send(f);
      else if (f.method === "INVITE") this.#cancels.armTimerC(f); // RFC 3261 §16.7 step 2: reset on each provisional
      this.#forwardUp(f, res);
      return;
    }
    if (status < 300) {
      if (!f.st.finished && f.method === "INVITE" && f.target !== undefined && callId !== undefined) {
        this.#dispatcher.dialogStarted(f.target, callId, this.#sides.trunkOf(f.st.flow));
      }
      if (f.method === "BYE" && callId !== undefined) this.#dispatcher.dialogEnded(callId);
      if (f.method === "REGISTER" && f.req !== undefined && f.side === "client" && f.st.flow.reliable)
        this.#bound(f.req, res, f.st.flow);
      this.#forwardUp(f, res);
      stopTimers(f);
      return;
    }
    if (f.method === "INVITE" && f.req !== undefined) {
      const to = res.indexOf(HeaderId.To);
      ct.ack([buildInTransaction(f.req, "ACK", f.requestUri, f.via, f.routesOut, res.headerValue(to))]);
    }
    const verdict = failover(f, status, this.#settings.failoverOn);
    if (verdict.action === "retry") {
      this.#follow(f, verdict);
      return;
    }
    this.#forwardUp(f, res);
    stopTimers(f);
  }

  #downstreamSilent(f: Forward, ct: ClientTransaction): void {
    if (f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    const verdict = failover(f, "silence", this.#settings.failoverOn);
    if (verdict.action === "finish") ct.terminate();
    // On a retry the abandoned attempt is kept to absorb a late answer.
    this.#follow(f, verdict);
  }

  /**
   * The attempt can hear nothing more: its request could not be sent, or
   * its connection closed before a final response. No server transaction
   * waits for an answer that cannot come (failover.ts says what comes instead).
   */
  #downstreamLost(f: Forward, ct: ClientTransaction): void {
    if (f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    this.#follow(f, failover(f, "closed", this.#settings.failoverOn));
  }

  #downstreamTimeout(f: Forward, ct: ClientTransaction): void {
    if (f.ct === ct && f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    this.#follow(f, failover(f, "timeout", this.#settings.failoverOn));
  }

  /** Acts on failover's verdict, other than relaying a response (its caller does that). */
  #follow(f: Forward, verdict: Retry | Wait | Finish): void {
    switch (verdict.action) {
      case "retry":
        this.counters.failovers++;
        this.#forwarder.attempt(f);
        return;
      case "finish":
        this.#answers.finish(f, this.#finalAnswer(verdict.status));
        return;
      case "wait":
        return;
    }
  }

  #finalAnswer(status: FinishStatus): LocalResponse {
    switch (status) {
      case 408:
        return REQUEST_TIMEOUT;
      case 487:
        return REQUEST_TERMINATED;
      case 430:
        this.counters.flowFailed++;
        return FLOW_FAILED;
      case 503:
        return this.#answers.unavailable();
    }
  }

  /** Sends a response received from downstream upstream, without our Via (RFC 3261 §16.7 step 9). */
  #forwardUp(f: Forward, res: SipResponse): void {
    const edited = new MessageEditor(res).removeTopVia();
    if (!edited.ok) return;
    // RFC 5626 §5.4: tell an outbound UA how often to keep its flow alive, unless its registrar did.
    if (
      f.method === "REGISTER" &&
      f.req !== undefined &&
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
    f.st.respond(edited.value.slices(), res.status, false, this.#pool.hold(this.#slot), resends(f));
    letGo(f);
  }

  #response(res: SipResponse, flow: Flow): void {
    const vias = res.via();
    const top = vias.ok ? vias.value[0] : undefined;
    const cseq = res.cseq();
    const ct = top?.branch === undefined || !cseq.ok ? undefined : this.#table.client(top.branch, cseq.value.method);
    if (ct === undefined) {
      // RFC 3261 §16.7: nothing waits for it; 2xx retransmissions are met by the Accepted state.
      this.counters.strayResponses++;
      return;
    }
    // Only the peer the request went to answers it: a branch alone is no proof (a forged final response).
    if (!sameFlow(ct.flow, flow)) {
      this.counters.misdirectedResponses++;
      return;
    }
    ct.receive(res);
  }

  /**
   * A REGISTER over a client stream succeeded: the endpoints the registrar
   * granted (RFC 5626 `+sip.instance` and `reg-id`, else the Contact URI,
   * each under the AoR) are on that flow now, for as long as it granted.
   */
  #bound(req: SipRequest, res: SipResponse, flow: Flow): void {
    for (const { keys, expires } of boundEndpoints(req, res)) {
      this.#sides.endpointsBound(keys, flow.id, expires * 1000);
    }
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
   * Passes the request, as received, to its flow's owner, which handles it
   * as if the backend had sent it there; responses go back from the owner to
   * the backend (RFC 3261 §18.2.2: UDP to the source; over a stream, where
   * the member listens, not where its Via claims: the Via is the peer's word).
   * A full queue is a counted refusal, never a wait.
   */
  #handOff(req: SipRequest, flow: Flow, owner: number, flowId: number): void {
    const member = flow.reliable ? this.#forwarder.memberBehind(flow, req) : undefined;
    const replyTo: PeerAddress =
      member !== undefined
        ? { host: member.host, port: member.port, transport: member.transport }
        : { host: flow.remoteAddress, port: flow.remotePort, transport: flow.transport };
    if (this.#sides.handOff(owner, req.buf, replyTo, flowId)) {
      this.counters.handedOff++;
      return;
    }
    this.counters.handOffRefused++;
    if (req.method !== "ACK") this.#answers.respond(req, flow, this.#answers.unavailable());
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

  #serverDone(st: ServerTransaction): void {
    const f = this.#table.serverDone(st);
    if (f !== undefined) stopTimers(f);
  }

  #withForward(ct: ClientTransaction, handle: (f: Forward, ct: ClientTransaction) => void): void {
    const f = this.#table.forward(ct);
    if (f !== undefined) handle.call(this, f, ct);
  }
}

function hasToTag(req: SipRequest): boolean {
  const to = req.to();
  return to.ok && findParam(to.value.params, "tag") !== undefined;
}
