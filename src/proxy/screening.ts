import { bareHost, isSipUri, type SipRequest } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import type { BufferPool } from "../transport/pool.ts";
import { admit } from "./admission.ts";
import type { Forwarder } from "./forwarding.ts";
import { FLOW_FAILED, type LocalAnswers } from "./local-answers.ts";
import type { Dispatcher, ProxyCounters, Side, Sides, TrunkCounters } from "./ports.ts";
import { registerProblem } from "./registration.ts";
import type { LocalResponse } from "./responses.ts";
import { type Decision, REFUSAL_RESPONSE } from "./routing.ts";
import type { LoadShedder } from "./shedder.ts";
import type { TransactionTable } from "./transaction-table.ts";

/** What screening needs of the worker that owns it, given once. */
export interface ScreeningParts {
  readonly sides: Sides;
  readonly dispatcher: Dispatcher;
  readonly pool: BufferPool;
  readonly table: TransactionTable;
  readonly shedder: LoadShedder;
  readonly forwarder: Forwarder;
  readonly answers: LocalAnswers;
  readonly counters: ProxyCounters;
}

/**
 * A new request's screening, before any transaction starts for it: the
 * answer sipedge gives it itself, if any. One per worker.
 */
export class Screening {
  /** SIGTERM: new out-of-dialog work is refused (see ProxyCore.drain). */
  draining = false;
  /** Server transactions awaiting their final response this worker may have (limits.maxTransactions). */
  maxTransactions: number;
  readonly #sides: Sides;
  readonly #dispatcher: Dispatcher;
  readonly #pool: BufferPool;
  readonly #table: TransactionTable;
  readonly #shedder: LoadShedder;
  readonly #forwarder: Forwarder;
  readonly #answers: LocalAnswers;
  readonly #counters: ProxyCounters;

  constructor(maxTransactions: number, parts: ScreeningParts) {
    this.maxTransactions = maxTransactions;
    this.#sides = parts.sides;
    this.#dispatcher = parts.dispatcher;
    this.#pool = parts.pool;
    this.#table = parts.table;
    this.#shedder = parts.shedder;
    this.#forwarder = parts.forwarder;
    this.#answers = parts.answers;
    this.#counters = parts.counters;
  }

  /**
   * What sipedge answers itself, before any transaction, if anything: a
   * question to sipedge (OPTIONS), RFC 3261 §16.3's checks, the routing
   * policy's refusals, and new work it will not take (draining, admission,
   * a REGISTER it refuses). Counted where an operator watches it.
   */
  answer(
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
      return !this.draining && this.#dispatcher.ready() ? { status: 200, reason: "OK" } : this.#answers.unavailable();
    }
    if (maxForwards === 0) return { status: 483, reason: "Too Many Hops" }; // RFC 3261 §16.3 step 3
    if (side === "client" && this.#forwarder.cameBack(req)) return { status: 482, reason: "Loop Detected" }; // step 4
    if (route.kind === "refuse") {
      this.#counters.unroutable[route.why]++;
      return REFUSAL_RESPONSE[route.why];
    }
    if (route.kind === "gone") {
      // RFC 5626 §5.3: no live flow to the endpoint; the registrar may try another.
      this.#counters.flowFailed++;
      return FLOW_FAILED;
    }
    // A To tag alone proves nothing: only a request inside a dialog sipedge made passes as established.
    const inDialog = route.kind !== "dispatch";
    if (this.draining && !inDialog) return this.#answers.unavailable();
    const refused = admit(
      { inDialog, trusted: side === "backend" || this.#sides.trusted(flow) },
      {
        level: this.#pool.level,
        transactions: this.#table.pending,
        maxTransactions: this.maxTransactions,
        ration: this.#shedder,
      },
    );
    if (refused !== undefined) {
      // principle 4: turned away early and cheaply, from the reserve if need be.
      this.#counters.overload[refused]++;
      return this.#answers.unavailable();
    }
    const problem = side === "client" && req.method === "REGISTER" ? registerProblem(req) : undefined;
    return problem === undefined ? undefined : { status: 400, reason: problem };
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
}
