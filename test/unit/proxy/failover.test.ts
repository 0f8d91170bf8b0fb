import { describe, expect, it } from "vitest";
import { type AttemptState, failover, type HeardNoAnswer, type Verdict } from "../../../src/proxy/failover.ts";

// Every way an attempt ends, for each kind of forward. failoverOn is the config's default, [503].
const FAILOVER_ON = [503];

const DISPATCHED: AttemptState = { dispatched: true, provisional: false, cancelled: false, side: "client" };
const RINGING: AttemptState = { ...DISPATCHED, provisional: true };
const CANCELLED: AttemptState = { ...DISPATCHED, cancelled: true };
const CANCELLED_RINGING: AttemptState = { ...DISPATCHED, provisional: true, cancelled: true };
/** Routed by the policy to the dialog's backend (from a client): no other backend may take it. */
const ROUTED: AttemptState = { dispatched: false, provisional: false, cancelled: false, side: "client" };
/** Routed to a client flow by its token (from a backend). */
const TO_CLIENT: AttemptState = { ...ROUTED, side: "backend" };

const retry: Verdict = { action: "retry" };
const relay: Verdict = { action: "relay" };
const wait: Verdict = { action: "wait" };
const finish = (status: 408 | 430 | 487 | 503): Verdict => ({ action: "finish", status });

describe("failover: a final response", () => {
  it.each<[string, AttemptState, number, Verdict]>([
    ["a 503 to a dispatched request tries the next backend", DISPATCHED, 503, retry],
    ["a status not in failover.on is relayed", DISPATCHED, 486, relay],
    ["a 2xx is relayed", DISPATCHED, 200, relay],
    ["a 503 after a provisional is relayed: the call rang there", RINGING, 503, relay],
    ["a 503 to a cancelled request is relayed", CANCELLED, 503, relay],
    ["a 503 from the dialog's backend is relayed: there is no other", ROUTED, 503, relay],
    ["a 503 from a client flow is relayed", TO_CLIENT, 503, relay],
  ])("%s", (_why, f, status, verdict) => {
    expect(failover(f, status, FAILOVER_ON)).toEqual(verdict);
  });

  it("fails over on whatever failover.on lists, and on nothing when it lists nothing", () => {
    expect(failover(DISPATCHED, 486, [486, 503])).toEqual(retry);
    expect(failover(DISPATCHED, 503, [])).toEqual(relay);
  });

  it("never fails over on a 2xx, even one failover.on lists", () => {
    expect(failover(DISPATCHED, 200, [200])).toEqual(relay);
  });
});

describe("failover: no final response", () => {
  it.each<[string, AttemptState, HeardNoAnswer, Verdict]>([
    // Nothing heard within the first-response timeout.
    ["silence: a dispatched request tries the next backend", DISPATCHED, "silence", retry],
    ["silence: a cancelled one is answered 487", CANCELLED, "silence", finish(487)],
    ["silence: a routed one waits for Timer F", ROUTED, "silence", wait],
    ["silence: towards a client flow, too", TO_CLIENT, "silence", wait],
    // Timer B/F.
    ["timeout: a dispatched request tries the next backend", DISPATCHED, "timeout", retry],
    ["timeout: a ringing one is answered 408", RINGING, "timeout", finish(408)],
    ["timeout: a cancelled one is answered 487", CANCELLED, "timeout", finish(487)],
    ["timeout: a cancelled ringing one is answered 487", CANCELLED_RINGING, "timeout", finish(487)],
    ["timeout: a routed one is answered 408", ROUTED, "timeout", finish(408)],
    // Unsendable, or its connection closed (RFC 3261 §16.9: as a 503 from that hop).
    ["closed: a dispatched request tries the next backend", DISPATCHED, "closed", retry],
    ["closed: a ringing one is answered 503", RINGING, "closed", finish(503)],
    ["closed: a cancelled one is answered 487", CANCELLED, "closed", finish(487)],
    ["closed: towards the dialog's backend, 503", ROUTED, "closed", finish(503)],
    ["closed: towards a client flow that is gone, 430 (RFC 5626 §5.3)", TO_CLIENT, "closed", finish(430)],
  ])("%s", (_why, f, ended, verdict) => {
    expect(failover(f, ended, FAILOVER_ON)).toEqual(verdict);
  });
});
