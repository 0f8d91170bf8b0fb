import type { SipRequest, Via } from "../sip/index.ts";
import { findParam } from "../sip/index.ts";
import { unmapped } from "../transport/address.ts";
import type { Flow } from "../transport/flow.ts";
import type { BufferPool, PoolSlot } from "../transport/pool.ts";
import type { ProxyCounters, Side, Target } from "./ports.ts";
import type { Timer } from "./timer-queue.ts";
import { type ClientTransaction, clientKey, type ServerTransaction } from "./transactions.ts";

/** One forwarded request: its server transaction and the current attempt downstream. */
export interface Forward {
  readonly st: ServerTransaction;
  /**
   * Read only while the server transaction or an attempt holds its slot: let
   * go once both have their final response (letGo), so what lingers after
   * a call keeps no message, and nothing reads bytes whose slot is reused.
   */
  req: SipRequest | undefined;
  readonly method: string;
  /** The pool slot under req; each attempt takes a reference of its own. */
  readonly slot: PoolSlot | undefined;
  /** Let go with the request (letGo): a slice of its text. */
  callId: string | undefined;
  readonly side: Side;
  /** Chosen by the dispatcher (and so eligible for failover), or routed by the policy to one flow. */
  readonly dispatched: boolean;
  /** The backends tried so far (made at the first try). */
  tried: Set<Target> | undefined;
  /** Route values removed from the top before it goes on (ours; all of them when foreign ones are stripped). */
  readonly remove: number;
  readonly recordRoute: boolean;
  ct: ClientTransaction | undefined;
  target: Target | undefined;
  /** The Route values and Request-URI the request went out with (for CANCEL and ACK). */
  routesOut: readonly string[];
  requestUri: string;
  via: string;
  provisional: boolean;
  cancelled: boolean;
  /** Timer C (INVITE only), made when first armed. */
  timerC: Timer | undefined;
  /** The Record-Route values the last attempt went out with (dialog-creating requests only). */
  recordRouted: readonly string[] | undefined;
  /** Every server transaction ends: the latest its final response may come (see cancel.ts, armDeadline). */
  deadline: Timer | undefined;
}

/**
 * Both the answer upstream and the current attempt are final: the request
 * is needed no more, nor what only a retry, a CANCEL or a hop-by-hop ACK
 * would read. What is left lingers with the transactions (32 s over UDP):
 * 2xx retransmissions still pass (recordRouted, target, st).
 */
export function letGo(f: Forward): void {
  const ct = f.ct;
  if (!f.st.finished || (ct !== undefined && (ct.state === "calling" || ct.state === "proceeding"))) return;
  f.req = undefined;
  f.callId = undefined;
  f.tried = undefined;
  f.routesOut = NO_ROUTES;
  f.requestUri = "";
  f.via = "";
}

const NO_ROUTES: readonly string[] = [];

/** The forward's own timers stop, and go: it has its final answer, or its server transaction ended. */
export function stopTimers(f: Forward): void {
  f.timerC?.stop();
  f.timerC = undefined;
  f.deadline?.stop();
  f.deadline = undefined;
}

const OUT_OF_DIALOG_RESENDS = 1;

/**
 * Timer G resends of a final answer: out of dialog the source may be
 * forged, so an answer (ours, or a backend's 407 challenge) goes out
 * twice, T1 apart (a path that loses 1 % loses both one time in 10 000),
 * and again only when the request does (principle 9); in a dialog
 * sipedge made, as RFC 3261 §17.2.1 says.
 */
export function resends(f: Forward): number {
  return f.dispatched ? OUT_OF_DIALOG_RESENDS : Number.POSITIVE_INFINITY;
}

/**
 * One worker's transactions (RFC 3261 §17): server transactions by their
 * key, client transactions by our branch, the forward each belongs to, and
 * the ones past their final response that only linger to absorb
 * retransmissions, which the budget bounds (principle 4).
 */
export class TransactionTable {
  readonly #servers = new Map<string, ServerTransaction>();
  readonly #clients = new Map<string, ClientTransaction>();
  /** Server transactions still awaiting their final response: the work in flight. */
  pending = 0;
  /** Finished transactions kept at most, on each side (limits.maxLingering); set again on SIGHUP. */
  maxLingering: number;
  /** Server transactions past their final response, oldest first: what the pool can reclaim. */
  readonly #lingering = new Set<ServerTransaction>();
  /** Client transactions past their final response, oldest first. */
  readonly #lingeringClients = new Set<ClientTransaction>();
  readonly #oldestServer = new Oldest(this.#lingering);
  readonly #oldestClient = new Oldest(this.#lingeringClients);
  readonly #pool: BufferPool;
  readonly #counters: ProxyCounters;

  constructor(pool: BufferPool, counters: ProxyCounters, maxLingering: number) {
    this.#pool = pool;
    this.#counters = counters;
    this.maxLingering = maxLingering;
  }

  get servers(): number {
    return this.#servers.size;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** The server transaction under `key` (see serverKey). */
  server(key: string): ServerTransaction | undefined {
    return this.#servers.get(key);
  }

  /** The INVITE server transaction an ACK or CANCEL belongs to. */
  inviteOf(req: SipRequest): ServerTransaction | undefined {
    return this.#servers.get(serverKey(req, "INVITE"));
  }

  /** RFC 3261 §17.2.1: the ACK for a non-2xx answer ends at the INVITE server transaction that sent it, if any. */
  acked(ack: SipRequest): boolean {
    const st = this.inviteOf(ack);
    if (st === undefined || (st.state !== "completed" && st.state !== "confirmed")) return false;
    st.acked();
    return true;
  }

  /** The client transaction a response names by its top Via's branch and its CSeq method. */
  client(branch: string, method: string): ClientTransaction | undefined {
    return this.#clients.get(clientKey(branch, method));
  }

  forward(t: ServerTransaction | ClientTransaction): Forward | undefined {
    return t.forward as Forward | undefined;
  }

  /** A new server transaction: work in flight until its final response. */
  openServer(st: ServerTransaction): void {
    this.pending++;
    this.#servers.set(st.key, st);
  }

  /** A new client transaction, and the forward it is an attempt of (none for a CANCEL). */
  openClient(ct: ClientTransaction, f: Forward | undefined): void {
    this.#clients.set(ct.key, ct);
    ct.forward = f;
  }

  attach(st: ServerTransaction, f: Forward): void {
    st.forward = f;
  }

  /** Every client transaction, then every server transaction, ended (the worker is closing). */
  terminateAll(): void {
    for (const ct of [...this.#clients.values()]) ct.terminate();
    for (const st of [...this.#servers.values()]) st.terminate();
  }

  /** The client transactions over `flow`, as they stand now. */
  clientsOn(flow: Flow): ClientTransaction[] {
    const out: ClientTransaction[] = [];
    for (const ct of this.#clients.values()) if (ct.flow === flow) out.push(ct);
    return out;
  }

  serverLingering(st: ServerTransaction): void {
    this.#lingering.add(st);
    if (this.#lingering.size > this.maxLingering) this.reclaim();
  }

  /**
   * The pool runs short, or too many finished transactions are kept (their
   * state is heap memory the budget must bound too): end the ones that only
   * linger to absorb retransmissions (RFC 3261 Timers J, I, L), oldest
   * first, before any new work is refused. A retransmission they would have
   * answered is passed on as new instead, which the next hop answers again.
   */
  reclaim(): void {
    for (let left = this.#lingering.size; left > 0; left--) {
      if (this.#pool.level === "normal" && this.#lingering.size <= this.maxLingering) return;
      const st = this.#oldestServer.take();
      if (st === undefined) return;
      this.#counters.reclaimed++;
      st.terminate();
    }
  }

  /** A server transaction ended: forgotten, with its forward (returned, for its timers to stop). */
  serverDone(st: ServerTransaction): Forward | undefined {
    this.#lingering.delete(st);
    this.#servers.delete(st.key);
    const f = st.forward as Forward | undefined;
    st.forward = undefined;
    return f;
  }

  /**
   * A client transaction past its final response lingers for late copies of
   * it (Timers D, K, M); like finished server transactions, only so many
   * linger, the oldest ending early (a late 2xx copy is then a stray).
   */
  lingerClient(ct: ClientTransaction): void {
    if (this.#lingeringClients.has(ct)) return;
    this.#lingeringClients.add(ct);
    if (this.#lingeringClients.size <= this.maxLingering) return;
    const oldest = this.#oldestClient.take();
    if (oldest === undefined) return;
    this.#counters.reclaimed++;
    oldest.terminate();
  }

  clientDone(ct: ClientTransaction): void {
    this.#lingeringClients.delete(ct);
    if (this.#clients.get(ct.key) === ct) this.#clients.delete(ct.key);
    ct.forward = undefined;
  }
}

/**
 * The oldest of a Set of lingering transactions, each taken once (and
 * ended by the taker, which deletes it). One iterator kept across calls: it
 * resumes where it stopped, past the entries taken before, where a new one
 * (`const [oldest] = set`) steps over every deleted entry from the start
 * of the Set's table, up to as many as it holds between rebuilds (~1 µs at
 * 4 096 lingering, several times a call once the bound is reached). Entries
 * added meanwhile come after it, in order (a Set iterator sees them).
 */
class Oldest<T> {
  readonly #set: Set<T>;
  #cursor: SetIterator<T>;

  constructor(set: Set<T>) {
    this.#set = set;
    this.#cursor = set.values();
  }

  take(): T | undefined {
    let next = this.#cursor.next();
    // Done: the Set was emptied through it once; an iterator that finished stays finished.
    if (next.done === true) {
      this.#cursor = this.#set.values();
      next = this.#cursor.next();
    }
    return next.done === true ? undefined : next.value;
  }
}

/**
 * RFC 3261 §17.2.3: a server transaction is the top Via's branch and
 * sent-by plus the method (ACK and CANCEL look for their INVITE); without
 * the magic cookie, the RFC 2543 fallback keys on the request's identity.
 */
export function serverKey(req: SipRequest, method: string): string {
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

/**
 * Whether a response came from the peer its client transaction's request
 * went to: the same address over the same transport. Not necessarily the
 * same socket: a UDP peer may answer from another port of its own, and a
 * backend with several of our connections may answer on another (sipp's
 * single-socket mode does).
 */
export function sameFlow(sent: Flow, heard: Flow): boolean {
  return (
    sent === heard ||
    (sent.transport === heard.transport && unmapped(sent.remoteAddress) === unmapped(heard.remoteAddress))
  );
}
