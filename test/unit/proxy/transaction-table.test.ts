import { describe, expect, it } from "vitest";
import { TimerQueue } from "../../../src/proxy/timer-queue.ts";
import { type Forward, letGo, stopTimers } from "../../../src/proxy/transaction-table.ts";
import type { ClientTransaction, ServerTransaction } from "../../../src/proxy/transactions.ts";
import { request } from "../../helpers/sip.ts";

const INVITE = request(
  "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c-1@10.0.0.1\r\nCSeq: 1 INVITE\r\n\r\n",
);

/** A forward as the forwarder leaves it after one attempt, its server and client transactions in the states given. */
function forward(finished: boolean, ctState: ClientTransaction["state"]): Forward {
  const queue = new TimerQueue(() => {});
  return {
    st: { finished } as ServerTransaction,
    req: INVITE,
    method: "INVITE",
    slot: undefined,
    callId: "c-1@10.0.0.1",
    side: "client",
    dispatched: true,
    tried: new Set(),
    remove: 0,
    recordRoute: true,
    ct: { state: ctState } as ClientTransaction,
    target: undefined,
    routesOut: ["<sip:10.0.0.9;lr>"],
    requestUri: "sip:bob@example.com",
    via: "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-se1-2;rport",
    provisional: true,
    cancelled: false,
    timerC: queue.timer(() => {}),
    recordRouted: undefined,
    deadline: queue.timer(() => {}),
  };
}

describe("what a finished forward keeps while its transactions linger", () => {
  it("lets go of the request and of what only a retry, a CANCEL or a hop-by-hop ACK reads, once both sides are final", () => {
    const f = forward(true, "accepted");
    letGo(f);
    expect(f.req).toBeUndefined();
    expect(f.callId).toBeUndefined();
    expect(f.tried).toBeUndefined();
    expect(f.routesOut).toEqual([]);
    expect(f.requestUri).toBe("");
    expect(f.via).toBe("");
  });

  it("keeps all of it while the attempt may still ring (a CANCEL needs its Via and Request-URI)", () => {
    const f = forward(true, "proceeding");
    letGo(f);
    expect(f.req).toBe(INVITE);
    expect(f.via).toContain("branch=z9hG4bK-se1-2");
    expect(f.requestUri).toBe("sip:bob@example.com");
    const unanswered = forward(false, "completed");
    letGo(unanswered);
    expect(unanswered.tried).toBeDefined();
  });

  it("drops its Timer C and deadline when they stop", () => {
    const f = forward(true, "accepted");
    stopTimers(f);
    expect(f.timerC).toBeUndefined();
    expect(f.deadline).toBeUndefined();
  });
});
