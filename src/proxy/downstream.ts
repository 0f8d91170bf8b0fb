import { HeaderId, MessageEditor, type SipRequest, type SipResponse } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import type { BufferPool, PoolSlot } from "../transport/pool.ts";
import type { Cancellation } from "./cancel.ts";
import { type Finish, type FinishStatus, failover, type Retry, type Wait } from "./failover.ts";
import type { Forwarder } from "./forwarding.ts";
import { FLOW_FAILED, type LocalAnswers, REQUEST_TERMINATED, REQUEST_TIMEOUT } from "./local-answers.ts";
import type { Dispatcher, ProxyCounters, ProxySettings, Sides } from "./ports.ts";
import { boundEndpoints, flowTimerFor } from "./registration.ts";
import { buildInTransaction } from "./requests.ts";
import type { LocalResponse } from "./responses.ts";
import { type Forward, letGo, resends, sameFlow, stopTimers, type TransactionTable } from "./transaction-table.ts";
import type { ClientTransaction } from "./transactions.ts";

/** What the downstream side needs of the worker that owns it, given once. */
export interface DownstreamParts {
  readonly sides: Sides;
  readonly dispatcher: Dispatcher;
  readonly pool: BufferPool;
  readonly table: TransactionTable;
  readonly forwarder: Forwarder;
  readonly cancels: Cancellation;
  readonly answers: LocalAnswers;
  readonly counters: ProxyCounters;
}

/**
 * What comes back from an attempt (RFC 3261 §16.7): a response is relayed
 * upstream without our Via, or fails over; silence, Timer B/F or a lost
 * connection fail over or end the forward here. failover.ts decides which;
 * this acts on it, and tells the dispatcher how the backend did. One per
 * worker.
 */
export class Downstream {
  readonly #sides: Sides;
  readonly #dispatcher: Dispatcher;
  readonly #pool: BufferPool;
  readonly #table: TransactionTable;
  readonly #forwarder: Forwarder;
  readonly #cancels: Cancellation;
  readonly #answers: LocalAnswers;
  readonly #counters: ProxyCounters;
  #failoverOn: readonly number[];
  #flowTimer: number;

  constructor(settings: ProxySettings, parts: DownstreamParts) {
    this.#sides = parts.sides;
    this.#dispatcher = parts.dispatcher;
    this.#pool = parts.pool;
    this.#table = parts.table;
    this.#forwarder = parts.forwarder;
    this.#cancels = parts.cancels;
    this.#answers = parts.answers;
    this.#counters = parts.counters;
    this.#failoverOn = settings.failoverOn;
    this.#flowTimer = settings.flowTimer;
  }

  /** SIGHUP. */
  reconfigure(settings: ProxySettings): void {
    this.#failoverOn = settings.failoverOn;
    this.#flowTimer = settings.flowTimer;
  }

  /** A response from downstream, to the client transaction it names. */
  arrived(res: SipResponse, flow: Flow): void {
    const vias = res.via();
    const top = vias.ok ? vias.value[0] : undefined;
    const cseq = res.cseq();
    const ct = top?.branch === undefined || !cseq.ok ? undefined : this.#table.client(top.branch, cseq.value.method);
    if (ct === undefined) {
      // RFC 3261 §16.7: nothing waits for it; 2xx retransmissions are met by the Accepted state.
      this.#counters.strayResponses++;
      return;
    }
    // Only the peer the request went to answers it: a branch alone is no proof (a forged final response).
    if (!sameFlow(ct.flow, flow)) {
      this.#counters.misdirectedResponses++;
      return;
    }
    ct.receive(res);
  }

  /**
   * A response to the forward's attempt, as its client transaction reports
   * it. `slot`: the pool slot under the response, which the server
   * transaction keeps for its retransmissions.
   */
  response(f: Forward, ct: ClientTransaction, res: SipResponse, slot: PoolSlot | undefined): void {
    const status = res.status;
    const current = f.ct === ct;
    if (status >= 200) this.#table.lingerClient(ct);
    if (f.target !== undefined) {
      const failure = status >= 300 && this.#failoverOn.includes(status);
      if (failure) this.#dispatcher.failed(f.target);
      else this.#dispatcher.answered(f.target);
    }
    if (status === 100) return; // hop by hop: sipedge sent its own
    if (!current) return; // an attempt abandoned for silence answered late
    if (status < 300 && !this.#forwarder.recordRouteKept(f, res)) {
      // The backend would take its route set from this answer: one whose flow token is not the one we
      // gave this client would send the dialog's requests into another UA's flow. Dropped; counted.
      this.#counters.forgedTokens++;
      return;
    }
    const callId = f.callId;
    if (status < 200) {
      f.provisional = true;
      if (f.cancelled) this.#cancels.send(f);
      else if (f.method === "INVITE") this.#cancels.armTimerC(f); // RFC 3261 §16.7 step 2: reset on each provisional
      this.#forwardUp(f, res, slot);
      return;
    }
    if (status < 300) {
      if (!f.st.finished && f.method === "INVITE" && f.target !== undefined && callId !== undefined) {
        this.#dispatcher.dialogStarted(f.target, callId, this.#sides.trunkOf(f.st.flow));
      }
      if (f.method === "BYE" && callId !== undefined) this.#dispatcher.dialogEnded(callId);
      const register = streamRegister(f);
      if (register !== undefined) this.#bound(register, res, f.st.flow);
      this.#forwardUp(f, res, slot);
      stopTimers(f);
      return;
    }
    if (f.method === "INVITE" && f.req !== undefined) {
      const to = res.indexOf(HeaderId.To);
      ct.ack([buildInTransaction(f.req, "ACK", f.requestUri, f.via, f.routesOut, res.headerValue(to))]);
    }
    const verdict = failover(f, status, this.#failoverOn);
    if (verdict.action === "retry") {
      this.#follow(f, verdict);
      return;
    }
    this.#forwardUp(f, res, slot);
    stopTimers(f);
  }

  silent(f: Forward, ct: ClientTransaction): void {
    if (f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    const verdict = failover(f, "silence", this.#failoverOn);
    if (verdict.action === "finish") ct.terminate();
    // On a retry the abandoned attempt is kept to absorb a late answer.
    this.#follow(f, verdict);
  }

  /**
   * The attempt can hear nothing more: its request could not be sent, or
   * its connection closed before a final response. No server transaction
   * waits for an answer that cannot come (failover.ts says what comes instead).
   */
  lost(f: Forward, ct: ClientTransaction): void {
    if (f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    this.#follow(f, failover(f, "closed", this.#failoverOn));
  }

  timeout(f: Forward, ct: ClientTransaction): void {
    if (f.ct === ct && f.target !== undefined) this.#dispatcher.failed(f.target);
    if (f.ct !== ct || f.st.finished) return;
    this.#follow(f, failover(f, "timeout", this.#failoverOn));
  }

  /** Acts on failover's verdict, other than relaying a response (its caller does that). */
  #follow(f: Forward, verdict: Retry | Wait | Finish): void {
    switch (verdict.action) {
      case "retry":
        this.#counters.failovers++;
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
        this.#counters.flowFailed++;
        return FLOW_FAILED;
      case 503:
        return this.#answers.unavailable();
    }
  }

  /** Sends a response received from downstream upstream, without our Via (RFC 3261 §16.7 step 9). */
  #forwardUp(f: Forward, res: SipResponse, slot: PoolSlot | undefined): void {
    const edited = new MessageEditor(res).removeTopVia();
    if (!edited.ok) return;
    const register = streamRegister(f);
    const flowTimer = register === undefined ? undefined : flowTimerFor(register, res, this.#flowTimer);
    if (flowTimer !== undefined) edited.value.addHeader("Flow-Timer", flowTimer);
    // The response's slot stays while the transaction keeps it for retransmissions.
    f.st.respond([edited.value.toBuffer()], res.status, false, this.#pool.hold(slot), resends(f));
    letGo(f);
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
}

/** A client's REGISTER over a stream (RFC 5626): its 2xx binds endpoints to that flow, and may get a Flow-Timer. */
function streamRegister(f: Forward): SipRequest | undefined {
  return f.method === "REGISTER" && f.side === "client" && f.st.flow.reliable ? f.req : undefined;
}
