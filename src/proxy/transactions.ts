import { detached, type SipRequest, type SipResponse } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import { type Held, UNHELD } from "../transport/pool.ts";
import type { Timer, TimerQueue } from "./timer-queue.ts";

/** RFC 3261 §17 timer bases, in milliseconds. */
export interface TimerBase {
  readonly t1: number;
  readonly t2: number;
  readonly t4: number;
}

type ServerState = "proceeding" | "completed" | "confirmed" | "accepted" | "terminated";

export interface ServerEvents {
  /** Once: the final response went out, or the transaction ended without one. */
  finished(t: ServerTransaction): void;
  /**
   * Once: it only lingers now, to absorb retransmissions (Timers J, L, I),
   * and could end early at no cost to the call; a non-2xx INVITE answer
   * still resent until its ACK (Timer G) is not lingering until then.
   */
  lingering(t: ServerTransaction): void;
  terminated(t: ServerTransaction): void;
}

/**
 * RFC 3261 §17.2 server transaction, with RFC 6026's Accepted state for
 * INVITE: it absorbs request retransmissions by resending the last
 * response, retransmits a final INVITE response over UDP until the ACK
 * (Timers G, H, I), and lingers after a final response (Timers J, L).
 */
export class ServerTransaction {
  readonly key: string;
  /**
   * The forward it belongs to (transaction-table.ts's Forward, set and read
   * by the table only; typed loosely here, which that module's types would
   * make an import cycle): a field rather than a Map keyed by transaction,
   * four entries a call set, read and deleted, and lingering with them.
   */
  forward: object | undefined = undefined;
  readonly flow: Flow;
  readonly isInvite: boolean;
  #state: ServerState = "proceeding";
  #last: readonly Uint8Array[] | undefined;
  /** The pool slots under the request (until a final response) and under #last. */
  #request: Held;
  #lastHeld: Held = UNHELD;
  #urgent = false;
  /** Timer G, made when a final INVITE answer is first resent over UDP (dropped at the ACK); its next interval and resends left. */
  #retransmit: Timer | undefined;
  #interval = 0;
  #resendsLeft = 0;
  /** Timers H, I, J, L. */
  readonly #end: Timer;
  readonly #timers: TimerBase;
  readonly #queue: TimerQueue;
  readonly #events: ServerEvents;
  /** Its timers' callbacks, one per class (TimerQueue.timer: no closure per transaction). */
  static readonly #terminate = (t: ServerTransaction): void => t.terminate();
  static readonly #resendOf = (t: ServerTransaction): void => t.#resend();

  /** `held`: this transaction's reference on the request's pool slot. */
  constructor(
    key: string,
    request: SipRequest,
    held: Held,
    flow: Flow,
    timers: TimerBase,
    queue: TimerQueue,
    events: ServerEvents,
  ) {
    this.key = detached(key);
    this.#request = held;
    this.flow = flow;
    this.isInvite = request.method === "INVITE";
    this.#timers = timers;
    this.#queue = queue;
    this.#events = events;
    this.#end = queue.timer(ServerTransaction.#terminate, this);
  }

  get state(): ServerState {
    return this.#state;
  }

  /** Whether a final response has been sent. */
  get finished(): boolean {
    return this.#state !== "proceeding";
  }

  /**
   * `urgent`: sipedge's own error response, which may use the pool's
   * reserve (and so may its retransmissions). `held`: a reference on the
   * slot under `slices` (a backend's response), kept while they are the
   * last response. From a final response on, the request is not needed.
   * `resends`: how often Timer G may resend a final INVITE answer over UDP
   * (besides when the request comes again): an answer to a datagram whose
   * source may be forged must not be worth ten times its request to
   * whoever that source names (a 262-byte INVITE earned 7.6 KB of 407s).
   */
  respond(
    slices: readonly Uint8Array[],
    status: number,
    urgent = false,
    held: Held = UNHELD,
    resends = Number.POSITIVE_INFINITY,
  ): void {
    if (
      this.#state === "terminated" ||
      (this.#state !== "proceeding" && !(this.#state === "accepted" && status < 300))
    ) {
      held.release();
      return;
    }
    this.#urgent = urgent;
    this.flow.send(slices, urgent);
    if (this.#state === "accepted") {
      held.release();
      return; // a 2xx retransmission, forwarded as is (RFC 6026 §7.1)
    }
    if (this.isInvite && status >= 200 && status < 300) {
      // RFC 6026 §7.1: a 2xx is never resent by the transaction (retransmissions come from
      // downstream), so nothing of it is kept through Accepted.
      held.release();
      this.#keep(undefined, UNHELD);
    } else {
      this.#keep(slices, held);
    }
    if (status < 200) return;
    this.#request = released(this.#request);
    this.#events.finished(this);
    const { t1 } = this.#timers;
    if (this.isInvite && status < 300) {
      this.#state = "accepted";
      this.#end.start(64 * t1); // Timer L
    } else if (this.isInvite) {
      this.#state = "completed";
      if (!this.flow.reliable && resends > 0) this.#startG(t1, resends);
      this.#end.start(64 * t1); // Timer H
      return;
    } else {
      this.#state = "completed";
      this.#end.start(this.flow.reliable ? 0 : 64 * t1); // Timer J
    }
    this.#events.lingering(this);
  }

  /** The same request again: send the last response again (RFC 3261 §17.2.1, §17.2.2; in Accepted, absorbed). */
  retransmitted(): void {
    if (this.#last !== undefined && this.#state !== "terminated" && this.#state !== "confirmed")
      this.flow.send(this.#last, this.#urgent);
  }

  /** ACK for a non-2xx final response: stop retransmitting, linger for Timer I. */
  acked(): void {
    if (this.#state !== "completed" || !this.isInvite) return;
    this.#state = "confirmed";
    this.#retransmit?.stop();
    this.#retransmit = undefined;
    this.#end.start(this.flow.reliable ? 0 : this.#timers.t4); // Timer I
    this.#events.lingering(this);
  }

  terminate(): void {
    if (this.#state === "terminated") return;
    if (this.#state === "proceeding") this.#events.finished(this);
    this.#state = "terminated";
    this.#retransmit?.stop();
    this.#end.stop();
    this.#request = released(this.#request);
    this.#keep(undefined, UNHELD);
    this.#events.terminated(this);
  }

  #keep(slices: readonly Uint8Array[] | undefined, held: Held): void {
    this.#lastHeld.release();
    this.#last = slices;
    this.#lastHeld = held;
  }

  /** Timer G: retransmit the final response, doubling up to T2, `left` times. */
  #startG(interval: number, left: number): void {
    this.#retransmit ??= this.#queue.timer(ServerTransaction.#resendOf, this);
    this.#interval = interval;
    this.#resendsLeft = left;
    this.#retransmit.start(interval);
  }

  #resend(): void {
    if (this.#state !== "completed" || this.#last === undefined) return;
    this.flow.send(this.#last, this.#urgent);
    if (--this.#resendsLeft <= 0) return;
    this.#interval = Math.min(2 * this.#interval, this.#timers.t2);
    this.#retransmit?.start(this.#interval);
  }
}

const NOTHING: readonly Uint8Array[] = [];

/** Lets go of a slot reference, and of the reference's own object: a lingering transaction keeps neither. */
function released(held: Held): Held {
  held.release();
  return UNHELD;
}

type ClientState = "calling" | "proceeding" | "completed" | "accepted" | "terminated";

export interface ClientEvents {
  response(t: ClientTransaction, res: SipResponse): void;
  /** Timer B or F fired with no final response. */
  timeout(t: ClientTransaction): void;
  /** Nothing at all came back within the first-response timeout. */
  silent(t: ClientTransaction): void;
  /** The request could not be sent at all (the flow is closed, its queue full, no buffer free): it has ended. */
  unsent(t: ClientTransaction): void;
}

/**
 * RFC 3261 §17.1 client transaction towards a backend: retransmits over
 * UDP (Timers A and E), gives up after Timer B/F, answers a non-2xx INVITE
 * response with the hop-by-hop ACK (Timer D), and reports silence after the
 * first-response timeout so the dispatcher can fail over early.
 */
export class ClientTransaction {
  /**
   * What the table knows it by: our branch and its method's kind
   * (clientKey), made once, so ending it neither rebuilds nor rehashes it;
   * the branch is read from it.
   */
  readonly key: string;
  /**
   * The forward it belongs to (transaction-table.ts's Forward, set and read
   * by the table only; typed loosely here, which that module's types would
   * make an import cycle): a field rather than a Map keyed by transaction,
   * four entries a call set, read and deleted, and lingering with them.
   */
  forward: object | undefined = undefined;
  readonly flow: Flow;
  /** The request's method (RFC 3261 §17.1.3: with the branch, what a response is matched by). */
  readonly method: string;
  readonly isInvite: boolean;
  /** The request's bytes, for retransmissions: let go at the final response (a lingering transaction keeps no message). */
  #request: readonly Uint8Array[];
  /** The pool slot under #request, until a final response or the end. */
  #held: Held;
  readonly #events: ClientEvents;
  readonly #timers: TimerBase;
  readonly #onTerminated: (t: ClientTransaction) => void;
  #state: ClientState = "calling";
  #heard = false;
  /**
   * Timers A and E (UDP only), and the interval of the next retransmission;
   * the first-response timer. Both go at the final response: a lingering
   * transaction keeps only its end timer (D, K, M).
   */
  #retransmit: Timer | undefined;
  #interval = 0;
  #firstResponse: Timer | undefined;
  /** Timers B and F, then D, K and M. */
  readonly #end: Timer;
  #ack: readonly Uint8Array[] | undefined;
  /** Its timers' callbacks, one per class (TimerQueue.timer: no closure per transaction). */
  static readonly #silentOf = (t: ClientTransaction): void => t.#silent();
  static readonly #endedOf = (t: ClientTransaction): void => t.#ended();
  static readonly #resendOf = (t: ClientTransaction): void => t.#resend();

  constructor(
    branch: string,
    flow: Flow,
    method: string,
    request: readonly Uint8Array[],
    held: Held,
    timers: TimerBase & { readonly firstResponse: number },
    queue: TimerQueue,
    events: ClientEvents,
    onTerminated: (t: ClientTransaction) => void,
  ) {
    this.key = detached(clientKey(branch, method));
    this.flow = flow;
    this.method = method;
    this.isInvite = method === "INVITE";
    this.#request = request;
    this.#held = held;
    this.#events = events;
    this.#timers = timers;
    this.#onTerminated = onTerminated;
    this.#firstResponse = queue.timer(ClientTransaction.#silentOf, this);
    this.#end = queue.timer(ClientTransaction.#endedOf, this);
    if (!flow.reliable) this.#retransmit = queue.timer(ClientTransaction.#resendOf, this);
    if (!flow.send(request)) {
      // The connection is gone (or no buffer was free): no answer can come, so the caller acts now
      // (after the constructor has returned, so it knows this transaction). A datagram sent while a
      // batch or a stream read is handled leaves at its end (transport/datagram-socket.ts): the
      // kernel's refusal then is counted, and the first retransmission reports it (#resend).
      queueMicrotask(() => {
        if (this.#state === "terminated") return;
        // Reported while it still stands, so the caller can find what it was for; then it ends.
        this.#events.unsent(this);
        this.terminate();
      });
      return;
    }
    this.#interval = timers.t1;
    this.#retransmit?.start(timers.t1);
    this.#firstResponse?.start(timers.firstResponse);
    this.#end.start(64 * timers.t1); // Timer B / F
  }

  /** Our branch (RFC 3261 §8.1.1.7), which its request's top Via carries. */
  get branch(): string {
    return this.key.slice(0, -KIND_CHARS);
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Whether any response (even 100 Trying) has come back. */
  get heard(): boolean {
    return this.#heard;
  }

  receive(res: SipResponse): void {
    if (this.#state === "terminated") return;
    this.#heard = true;
    this.#firstResponse?.stop();
    const { t1, t2, t4 } = this.#timers;
    if (res.status < 200) {
      if (this.#state === "calling") {
        this.#state = "proceeding";
        // RFC 3261 §17.1.1.2: INVITE stops retransmitting; non-INVITE keeps on at T2.
        if (this.isInvite) this.#retransmit?.stop();
        else {
          this.#interval = t2;
          this.#retransmit?.start(t2);
        }
        // RFC 3261 §17.1.1.2: Timer B runs in Calling only; a ringing INVITE is bounded by the proxy's Timer C.
        if (this.isInvite) this.#end.stop();
      }
      if (this.#state === "proceeding") this.#events.response(this, res);
      return;
    }
    if (this.#state === "completed") {
      // A retransmitted final response: repeat the ACK (INVITE), else ignore.
      if (this.#ack !== undefined) this.flow.send(this.#ack);
      return;
    }
    if (this.#state === "accepted") {
      if (res.status < 300) this.#events.response(this, res); // RFC 6026 §7.2: pass 2xx retransmissions on
      return;
    }
    this.#retransmit?.stop();
    this.#retransmit = undefined;
    this.#firstResponse = undefined;
    if (this.isInvite && res.status < 300) {
      this.#state = "accepted";
      this.#end.start(64 * t1); // Timer M
    } else {
      this.#state = "completed";
      this.#end.start(this.flow.reliable ? 0 : this.isInvite ? Math.max(32_000, 64 * t1) : t4); // Timer D / K
    }
    this.#events.response(this, res);
    // Nothing is retransmitted after a final response: the request's bytes may go.
    this.#request = NOTHING;
    this.#held = released(this.#held);
  }

  /** The hop-by-hop ACK for a non-2xx final response (built by the caller, sent and kept for repeats). */
  ack(slices: readonly Uint8Array[]): void {
    this.#ack = slices;
    this.flow.send(slices);
  }

  /** Stop retransmitting and waiting; late responses are then ignored. */
  terminate(): void {
    if (this.#state === "terminated") return;
    this.#state = "terminated";
    this.#retransmit?.stop();
    this.#firstResponse?.stop();
    this.#end.stop();
    this.#request = NOTHING;
    this.#held = released(this.#held);
    this.#onTerminated(this);
  }

  #resend(): void {
    if (this.#state !== "calling" && this.#state !== "proceeding") return;
    if (!this.flow.send(this.#request) && this.#state === "calling") {
      // RFC 3261 §17.1.4: a transport failure ends the transaction and the TU hears of it. A first
      // send held to a batch's or a stream read's end is refused there unseen; its first
      // retransmission, T1 later, is refused at once, so the caller fails over then, not at
      // the first-response timeout or Timer B/F. Once the backend has answered, a refused
      // retransmission is not taken as the path's failure.
      this.#events.unsent(this);
      this.terminate();
      return;
    }
    // Timer A doubles without bound; Timer E doubles up to T2.
    this.#interval = this.isInvite ? 2 * this.#interval : Math.min(2 * this.#interval, this.#timers.t2);
    this.#retransmit?.start(this.#interval);
  }

  /** Timer B/F while waiting for a final response; D, K or M after one. */
  #ended(): void {
    if (this.#state === "calling" || this.#state === "proceeding") this.#timeout();
    else this.terminate();
  }

  #silent(): void {
    if (this.#state !== "calling") return;
    this.#events.silent(this);
  }

  #timeout(): void {
    if (this.#state !== "calling" && this.#state !== "proceeding") return;
    this.#events.timeout(this);
    this.terminate();
  }
}

/** The kind clientKey appends to a branch: "|I", "|C" or "|O". */
const KIND_CHARS = 2;

/** Client transactions by our branch; CANCEL shares its INVITE's branch but is a transaction of its own. */
export function clientKey(branch: string, method: string): string {
  return method === "INVITE" || method === "ACK" ? `${branch}|I` : method === "CANCEL" ? `${branch}|C` : `${branch}|O`;
}
