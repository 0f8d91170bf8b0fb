import { HeaderId, type SipRequest } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import { UNHELD } from "../transport/pool.ts";
import { type LocalAnswers, REQUEST_TIMEOUT } from "./local-answers.ts";
import type { ProxySettings } from "./ports.ts";
import { buildInTransaction } from "./requests.ts";
import type { TimerQueue } from "./timer-queue.ts";
import { type Forward, sameFlow, type TransactionTable } from "./transaction-table.ts";
import { type ClientEvents, ClientTransaction } from "./transactions.ts";

/** A CANCEL's own answers change nothing: its INVITE's are what count (RFC 3261 §9.1). */
const IGNORED: ClientEvents = { response: () => {}, timeout: () => {}, silent: () => {}, unsent: () => {} };

/** What cancelling needs of the worker that owns it, given once. */
export interface CancellationParts {
  readonly table: TransactionTable;
  readonly answers: LocalAnswers;
  readonly queue: TimerQueue;
  /** Called when a CANCEL's client transaction ends. */
  readonly ended: (t: ClientTransaction) => void;
}

type CancelTimers = ProxySettings["timers"] & { readonly firstResponse: number };

/**
 * What ends a pending request early: a CANCEL from its caller (RFC 3261
 * §16.10), Timer C on a ringing INVITE (§16.6 step 11), and the deadline
 * every server transaction has. One per worker; a throw in a timer here is
 * counted as a bug under `timer` by the queue.
 */
export class Cancellation {
  readonly #table: TransactionTable;
  readonly #answers: LocalAnswers;
  readonly #queue: TimerQueue;
  readonly #clientEnded: (t: ClientTransaction) => void;
  #timers: ProxySettings["timers"];
  /** The timers a CANCEL's client transaction runs by: one object for all of them. */
  #cancelTimers: CancelTimers;

  constructor(settings: ProxySettings, parts: CancellationParts) {
    this.#table = parts.table;
    this.#answers = parts.answers;
    this.#queue = parts.queue;
    this.#clientEnded = parts.ended;
    this.#timers = settings.timers;
    this.#cancelTimers = cancelTimers(settings);
  }

  /** SIGHUP: for the requests that start from now on. */
  reconfigure(settings: ProxySettings): void {
    this.#timers = settings.timers;
    this.#cancelTimers = cancelTimers(settings);
  }

  /** A CANCEL came: answered itself, and what it names is cancelled downstream as soon as it may be. */
  received(req: SipRequest, flow: Flow): void {
    const st = this.#table.inviteOf(req);
    // Only the peer that sent the INVITE may cancel it: its branch and Via are no secret to a proxy upstream.
    if (st === undefined || !sameFlow(st.flow, flow)) {
      this.#answers.respond(req, flow, { status: 481, reason: "Call/Transaction Does Not Exist" });
      return;
    }
    // RFC 3261 §16.10: answer the CANCEL itself, then cancel what is pending.
    this.#answers.respond(req, flow, { status: 200, reason: "OK" });
    const f = this.#table.forward(st);
    if (f === undefined || f.cancelled || st.finished) return;
    f.cancelled = true;
    // Without a provisional response the CANCEL waits for one (RFC 3261 §9.1);
    // a backend that stays silent gets no more time than the failover would give it.
    if (f.provisional) this.send(f);
  }

  /** RFC 3261 §9.1: CANCEL only after a provisional response, on the INVITE's branch. */
  send(f: Forward): void {
    const ct = f.ct;
    if (ct === undefined || ct.state !== "proceeding") return;
    const req = f.req;
    if (req === undefined) return;
    const to = req.indexOf(HeaderId.To);
    const bytes = buildInTransaction(req, "CANCEL", f.requestUri, f.via, f.routesOut, req.headerValue(to));
    const cancel = new ClientTransaction(
      ct.branch,
      ct.flow,
      "CANCEL",
      [bytes],
      UNHELD,
      this.#cancelTimers,
      this.#queue,
      IGNORED,
      this.#clientEnded,
    );
    this.#table.openClient(cancel, undefined);
  }

  /** RFC 3261 §16.6 step 11: Timer C bounds how long an INVITE may ring. */
  armTimerC(f: Forward): void {
    f.timerC ??= this.#queue.timer(() => this.#expire(f));
    f.timerC.start(this.#timers.timerC);
  }

  /**
   * Every server transaction ends, whatever the next hop does or fails to
   * do: past its deadline it is answered 408 here. A non-INVITE gets Timer F
   * (64×T1) and a T4 of slack, after which its client transaction has
   * always reported; an INVITE rings under Timer C, which provisional
   * responses restart, so it also gets an absolute bound of twice Timer C
   * (Kamailio's tm caps an INVITE at max_inv_lifetime, 180 s, the same way)
   * against a next hop that keeps sending 180s.
   */
  armDeadline(f: Forward): void {
    const { t1, t4, timerC } = this.#timers;
    const lifetime = f.method === "INVITE" ? 2 * timerC : 64 * t1 + t4;
    f.deadline = this.#queue.timer(() => {
      if (f.st.finished) return;
      this.#expire(f);
      // An attempt we cancelled still gets its 487 (and our ACK); any other one is given up.
      if (!f.cancelled) f.ct?.terminate();
    });
    f.deadline.start(lifetime);
  }

  /** Out of time (Timer C, or the deadline): a ringing attempt is cancelled, the caller gets 408. */
  #expire(f: Forward): void {
    if (f.provisional && !f.cancelled) {
      f.cancelled = true;
      this.send(f);
    }
    this.#answers.finish(f, REQUEST_TIMEOUT);
  }
}

/** A CANCEL is not failed over, so it waits for an answer as long as Timer F runs. */
function cancelTimers(settings: ProxySettings): CancelTimers {
  return { ...settings.timers, firstResponse: 64 * settings.timers.t1 };
}
