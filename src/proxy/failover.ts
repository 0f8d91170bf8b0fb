import type { Side } from "./ports.ts";

/**
 * Where failover is decided: what a forwarded request does when its current
 * attempt downstream ends one way or another. Pure, so every outcome is a
 * row of a table test (test/unit/proxy/failover.test.ts); the core acts on
 * the verdict (counts, sends, answers).
 */

/** What the decision reads of a forward: the core's Forward is one. */
export interface AttemptState {
  /** Chosen by the dispatcher, so another backend may take it; else routed by the policy to one flow. */
  readonly dispatched: boolean;
  /** A provisional response came: the call is ringing somewhere, it is no longer moved. */
  readonly provisional: boolean;
  /** The caller cancelled it. */
  readonly cancelled: boolean;
  /** The side the request came from. */
  readonly side: Side;
}

/**
 * How the current attempt ended without a final response: nothing heard
 * within the first-response timeout (`silence`), Timer B/F (`timeout`), or
 * the request unsendable or its connection closed (`closed`). An attempt
 * that ended with a final response is decided by its status instead.
 */
export type HeardNoAnswer = "silence" | "timeout" | "closed";

/** The answer sipedge gives the caller itself when it finishes a forward. */
export type FinishStatus = 408 | 430 | 487 | 503;

/** Try the next backend. */
export type Retry = { readonly action: "retry" };
/** Pass the response upstream. */
export type Relay = { readonly action: "relay" };
/** Nothing yet: the attempt goes on (its transaction still reports). */
export type Wait = { readonly action: "wait" };
/** Answer the caller here. */
export type Finish = { readonly action: "finish"; readonly status: FinishStatus };
export type Verdict = Retry | Relay | Wait | Finish;

// One object per verdict, made once: deciding allocates nothing.
const RETRY: Retry = { action: "retry" };
const RELAY: Relay = { action: "relay" };
const WAIT: Wait = { action: "wait" };
const TIMED_OUT: Finish = { action: "finish", status: 408 };
const FLOW_FAILED: Finish = { action: "finish", status: 430 };
const TERMINATED: Finish = { action: "finish", status: 487 };
const UNAVAILABLE: Finish = { action: "finish", status: 503 };

/**
 * Only a dispatched request that has not rung and was not cancelled moves
 * to another backend: once a provisional came the call may be answered
 * there, and a cancelled one is over. `failoverOn`: the final statuses that
 * count as the backend failing (the config's `failover.on`).
 */
export function failover(f: AttemptState, ended: HeardNoAnswer, failoverOn: readonly number[]): Retry | Wait | Finish;
/** A final response (its status) is retried or relayed, never waited on or answered for. */
export function failover(f: AttemptState, status: number, failoverOn: readonly number[]): Retry | Relay;
export function failover(f: AttemptState, outcome: HeardNoAnswer | number, failoverOn: readonly number[]): Verdict {
  const movable = f.dispatched && !f.provisional && !f.cancelled;
  switch (outcome) {
    case "silence":
      // Nothing at all heard: a cancelled one is over (487); one routed to a single flow waits for Timer F.
      if (f.cancelled) return TERMINATED;
      return f.dispatched ? RETRY : WAIT;
    case "timeout":
      if (movable) return RETRY;
      return f.cancelled ? TERMINATED : TIMED_OUT;
    case "closed":
      // RFC 3261 §16.9: a transport error counts as a 503 from that hop; towards a backend whose
      // client flow is gone, 430 (RFC 5626 §5.3).
      if (f.cancelled) return TERMINATED;
      if (movable) return RETRY;
      return f.side === "backend" ? FLOW_FAILED : UNAVAILABLE;
    default:
      return outcome >= 300 && movable && failoverOn.includes(outcome) ? RETRY : RELAY;
  }
}
