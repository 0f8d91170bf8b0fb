import type { SipRequest } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import { UNHELD } from "../transport/pool.ts";
import { retryAfterWithJitter } from "./admission.ts";
import { AnswerLimit } from "./answer-limit.ts";
import { LocalTags } from "./local-tags.ts";
import type { ProxyCounters, ProxySettings } from "./ports.ts";
import { buildResponse, type LocalResponse } from "./responses.ts";
import { type Forward, letGo, resends, stopTimers } from "./transaction-table.ts";

export const FLOW_FAILED: LocalResponse = { status: 430, reason: "Flow Failed" };
export const REQUEST_TIMEOUT: LocalResponse = { status: 408, reason: "Request Timeout" };
export const REQUEST_TERMINATED: LocalResponse = { status: 487, reason: "Request Terminated" };

/**
 * The answers sipedge gives itself: stateless ones (no transaction), and
 * the final answer that ends a forward. Each is counted and, when final,
 * carries a To tag of ours (its ACK is known by it, proxy/local-tags.ts).
 */
export class LocalAnswers {
  readonly #counters: ProxyCounters;
  readonly #tags = new LocalTags();
  readonly #limit: AnswerLimit;
  #retryAfter: number;

  constructor(counters: ProxyCounters, settings: ProxySettings) {
    this.#counters = counters;
    this.#limit = new AnswerLimit(settings.answersPerSource);
    this.#retryAfter = settings.retryAfter;
  }

  /** SIGHUP. */
  reconfigure(settings: ProxySettings): void {
    this.#limit.perSecond = settings.answersPerSource;
    this.#retryAfter = settings.retryAfter;
  }

  /** Whether a To tag is one sipedge put on an answer of its own. */
  ours(tag: string | undefined): boolean {
    return this.#tags.isOurs(tag);
  }

  unavailable(): LocalResponse {
    const after = retryAfterWithJitter(this.#retryAfter);
    return { status: 503, reason: "Service Unavailable", headers: [`Retry-After: ${after}`] };
  }

  /** The bytes of an answer to `req`, which came over `flow`. */
  build(req: SipRequest, flow: Flow, r: LocalResponse): Buffer {
    this.#counters.localResponses++;
    const final = r.status >= 200 ? { ...r, toTag: this.#tags.tagFor(req) } : r;
    return buildResponse(req, final, { address: flow.remoteAddress, port: flow.remotePort });
  }

  /** A stateless local answer (no transaction): OPTIONS, CANCEL, 483, 400, refusals. */
  respond(req: SipRequest, flow: Flow, r: LocalResponse): void {
    if (!flow.reliable && !this.#limit.take(flow.remoteAddress)) {
      this.#counters.answersLimited++;
      return;
    }
    flow.send([this.build(req, flow, r)], r.status >= 300);
  }

  /** Answers the upstream side locally, ending the forward. */
  finish(f: Forward, r: LocalResponse): void {
    stopTimers(f);
    if (f.st.finished || f.req === undefined) return;
    f.st.respond([this.build(f.req, f.st.flow, r)], r.status, true, UNHELD, resends(f));
    letGo(f);
  }
}
