import { queryObjects } from "node:v8";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TimerQueue } from "../../../src/proxy/timer-queue.ts";
import {
  type ClientEvents,
  ClientTransaction,
  type ServerEvents,
  ServerTransaction,
} from "../../../src/proxy/transactions.ts";
import type { SipRequest, SipResponse } from "../../../src/sip/index.ts";
import type { Flow } from "../../../src/transport/flow.ts";
import { BufferPool, type Held, type PoolSlot } from "../../../src/transport/pool.ts";
import { request, response } from "../../helpers/sip.ts";

const T = { t1: 500, t2: 4000, t4: 5000 };
const HEAD =
  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: t1\r\n";

/** A flow that records when it was asked to send (the clock is faked). */
function recordingFlow(reliable: boolean): Flow & { sent: number[] } {
  const sent: number[] = [];
  return {
    id: 1,
    transport: reliable ? "tcp" : "udp",
    reliable,
    remoteAddress: "127.0.0.1",
    remotePort: 5080,
    localAddress: "127.0.0.1",
    localPort: 5060,
    closed: false,
    sent,
    peerNames: () => [],
    send() {
      sent.push(Date.now());
      return true;
    },
  };
}

function res(status: number, method: string): SipResponse {
  return response(`SIP/2.0 ${status} X\r\n${HEAD}CSeq: 1 ${method}\r\n\r\n`);
}

function req(method: string): SipRequest {
  return request(`${method} sip:c@d SIP/2.0\r\n${HEAD}CSeq: 1 ${method}\r\n\r\n`);
}

function events(): ClientEvents & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    response: (_t, r) => log.push(`response ${r.status}`),
    timeout: () => log.push("timeout"),
    silent: () => log.push("silent"),
    unsent: () => log.push("unsent"),
  };
}

let pool: BufferPool;
let queue: TimerQueue;

/** A client transaction sending "x", holding a fresh slot, with a 2 s first-response timeout. */
function clientTx(
  branch: string,
  flow: Flow,
  invite: boolean,
  ev: ClientEvents,
  ended: (t: ClientTransaction) => void,
): ClientTransaction {
  return new ClientTransaction(
    branch,
    flow,
    invite ? "INVITE" : "OPTIONS",
    [Buffer.from("x")],
    held(),
    { ...T, firstResponse: 2000 },
    queue,
    ev,
    ended,
  );
}

/** Server transaction events: `terminated` as given; finishes counted in `finishes`. */
let finishes = 0;
function ending(terminated: () => void): ServerEvents {
  return { finished: () => finishes++, lingering: () => {}, terminated };
}

/** A transaction's reference on a fresh slot (the receive path's own reference already given back). */
function held(): Held {
  const slot = pool.acquire(100) as PoolSlot;
  const h = pool.hold(slot);
  pool.release(slot);
  return h;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  queue = new TimerQueue((err) => {
    throw err;
  });
  pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
  finishes = 0;
});

afterEach(() => {
  // Every transaction has ended by its timers: every slot it held is home (no leak on any path).
  vi.runAllTimers();
  expect(pool.inUse).toBe(0);
  vi.useRealTimers();
});

describe("client transactions (RFC 3261 §17.1)", () => {
  it("non-INVITE over UDP: Timer E doubles up to T2, Timer F gives up at 64*T1", () => {
    const flow = recordingFlow(false);
    const ev = events();
    clientTx("b1", flow, false, ev, () => {});
    vi.advanceTimersByTime(64 * T.t1);
    expect(flow.sent.slice(0, 7)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    expect(ev.log).toEqual(["silent", "timeout"]);
  });

  it("INVITE over UDP: Timer A doubles until a provisional, then stops", () => {
    const flow = recordingFlow(false);
    const ev = events();
    const ct = clientTx("b2", flow, true, ev, () => {});
    vi.advanceTimersByTime(1600);
    ct.receive(res(180, "INVITE"));
    vi.advanceTimersByTime(10_000);
    expect(flow.sent).toEqual([0, 500, 1500]);
    expect(ev.log).toEqual(["response 180"]);
    ct.terminate();
  });

  it("INVITE: a ringing call outlives Timer B (it runs in Calling only; the proxy's Timer C bounds ringing)", () => {
    const ev = events();
    const ct = clientTx("b2r", recordingFlow(false), true, ev, () => {});
    ct.receive(res(180, "INVITE"));
    vi.advanceTimersByTime(64 * T.t1 + 10_000);
    expect(ev.log).toEqual(["response 180"]);
    expect(ct.state).toBe("proceeding");
    ct.terminate();
  });

  it("does not retransmit over a reliable transport", () => {
    const flow = recordingFlow(true);
    clientTx("b3", flow, true, events(), () => {});
    vi.advanceTimersByTime(64 * T.t1);
    expect(flow.sent).toEqual([0]);
  });

  it("reports silence only when nothing at all came back in time", () => {
    const ev = events();
    const ct = clientTx("b4", recordingFlow(false), true, ev, () => {});
    vi.advanceTimersByTime(300);
    ct.receive(res(100, "INVITE"));
    vi.advanceTimersByTime(5000);
    expect(ev.log).toEqual(["response 100"]);
    ct.terminate();
  });

  it("repeats the hop-by-hop ACK for a retransmitted non-2xx final response, then ends after Timer D", () => {
    const flow = recordingFlow(false);
    const ended = vi.fn();
    const ct = clientTx("b5", flow, true, events(), ended);
    ct.receive(res(486, "INVITE"));
    ct.ack([Buffer.from("ack")]);
    ct.receive(res(486, "INVITE"));
    expect(flow.sent.length).toBe(3);
    vi.advanceTimersByTime(32_000);
    expect(ended).toHaveBeenCalledOnce();
  });
});

describe("server transactions (RFC 3261 §17.2, RFC 6026)", () => {
  it("INVITE over UDP: Timer G retransmits a non-2xx final until the ACK, Timer I ends it", () => {
    const flow = recordingFlow(false);
    const ended = vi.fn();
    const st = new ServerTransaction("k", req("INVITE"), held(), flow, T, queue, ending(ended));
    st.respond([Buffer.from("486")], 486);
    vi.advanceTimersByTime(3600);
    expect(flow.sent).toEqual([0, 500, 1500, 3500]);
    st.acked();
    vi.advanceTimersByTime(T.t4 - 1);
    expect(ended).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(ended).toHaveBeenCalledOnce();
    expect(flow.sent.length).toBe(4);
  });

  it("INVITE over UDP: an answer with one resend goes out twice, then only when the request comes again; ends at Timer H", () => {
    const flow = recordingFlow(false);
    const ended = vi.fn();
    const st = new ServerTransaction("k", req("INVITE"), held(), flow, T, queue, ending(ended));
    st.respond([Buffer.from("503")], 503, true, undefined, 1);
    vi.advanceTimersByTime(3600);
    expect(flow.sent).toEqual([0, 500]);
    st.retransmitted();
    expect(flow.sent).toEqual([0, 500, 3600]);
    vi.advanceTimersByTime(64 * T.t1);
    expect(ended).toHaveBeenCalledOnce();
  });

  it("answers a retransmitted request with the last response", () => {
    const flow = recordingFlow(false);
    const st = new ServerTransaction(
      "k",
      req("OPTIONS"),
      held(),
      flow,
      T,
      queue,
      ending(() => {}),
    );
    st.respond([Buffer.from("200")], 200);
    st.retransmitted();
    expect(flow.sent.length).toBe(2);
  });

  it("INVITE 2xx: Accepted state passes 2xx retransmissions on and ends after Timer L", () => {
    const flow = recordingFlow(true);
    const ended = vi.fn();
    const st = new ServerTransaction("k", req("INVITE"), held(), flow, T, queue, ending(ended));
    st.respond([Buffer.from("200")], 200);
    expect(st.state).toBe("accepted");
    st.respond([Buffer.from("200")], 200);
    st.respond([Buffer.from("486")], 486);
    expect(flow.sent.length).toBe(2);
    vi.advanceTimersByTime(64 * T.t1);
    expect(ended).toHaveBeenCalledOnce();
  });

  it("non-INVITE over a reliable transport ends at once after its final response (Timer J = 0)", () => {
    const ended = vi.fn();
    const st = new ServerTransaction("k", req("OPTIONS"), held(), recordingFlow(true), T, queue, ending(ended));
    st.respond([Buffer.from("200")], 200);
    vi.advanceTimersByTime(0);
    expect(ended).toHaveBeenCalledOnce();
  });

  it("holds the request's slot until the final response, then only the last response's", () => {
    const st = new ServerTransaction(
      "k",
      req("OPTIONS"),
      held(),
      recordingFlow(false),
      T,
      queue,
      ending(() => {}),
    );
    st.respond([Buffer.from("100")], 100, false, held());
    expect(pool.inUse).toBe(2);
    st.respond([Buffer.from("200")], 200, false, held());
    // The request and the provisional went; the 200 stays for retransmissions until Timer J.
    expect(pool.inUse).toBe(1);
    st.respond([Buffer.from("late")], 500, false, held());
    expect(pool.inUse).toBe(1);
    expect(finishes).toBe(1);
  });
});

describe("client transactions and the pool", () => {
  it("gives the request's slot back at the final response, and ends (reported unsent) when its first send fails", async () => {
    const ct = clientTx("p1", recordingFlow(false), false, events(), () => {});
    expect(pool.inUse).toBe(1);
    ct.receive(res(200, "OPTIONS"));
    expect(pool.inUse).toBe(0);

    const refused = { ...recordingFlow(false), send: () => false };
    const ev = events();
    const ended = vi.fn();
    clientTx("p2", refused, true, ev, ended);
    await Promise.resolve();
    expect(ev.log).toEqual(["unsent"]);
    expect(ended).toHaveBeenCalledOnce();
    expect(pool.inUse).toBe(0);
  });

  it("ends (reported unsent) at its first retransmission when that is refused: a first send held and refused unseen", () => {
    for (const invite of [true, false]) {
      const flow = recordingFlow(false);
      let accepted = 1; // the first send "succeeds", as one held to a batch's end does
      flow.send = () => accepted-- > 0;
      const ev = events();
      const ended = vi.fn();
      const ct = clientTx(`r${invite}`, flow, invite, ev, ended);
      vi.advanceTimersByTime(T.t1 - 1);
      expect(ev.log).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(ev.log).toEqual(["unsent"]);
      expect(ct.state).toBe("terminated");
      expect(ended).toHaveBeenCalledOnce();
      expect(pool.inUse).toBe(0);
    }
  });

  it("keeps on after a refused retransmission once the backend has answered (a non-INVITE's Timer E in proceeding)", () => {
    const flow = recordingFlow(false);
    let sends = 0;
    flow.send = () => sends++ < 2;
    const ev = events();
    const ct = clientTx("q1", flow, false, ev, () => {});
    vi.advanceTimersByTime(T.t1); // the first retransmission goes
    ct.receive(res(100, "OPTIONS"));
    vi.advanceTimersByTime(T.t2); // the next is refused
    expect(sends).toBe(3);
    expect(ct.state).toBe("proceeding");
    expect(ev.log).toEqual(["response 100"]);
    ct.receive(res(200, "OPTIONS"));
    expect(ev.log).toEqual(["response 100", "response 200"]);
  });
});

/** The class of a slot reference (not exported): made from one, given back at once. */
function classOfHold(): new () => unknown {
  const h = held();
  h.release();
  return h.constructor as new () => unknown;
}

describe("what a lingering transaction keeps", () => {
  // Counted with v8.queryObjects (after a full GC): 1 000 calls a second linger 32 s, so
  // every object a finished transaction keeps is 32 000 of them on the heap.
  it("a client transaction past its final response keeps only its end timer (D, K, M) and no slot reference", () => {
    const timerClass = queue.timer(() => {}).constructor as new () => unknown;
    const holdClass = classOfHold();
    const count = (c: new () => unknown) => queryObjects(c, { format: "count" }) as number;
    const timersBefore = count(timerClass);
    const holdsBefore = count(holdClass);
    const kept: ClientTransaction[] = [];
    for (let i = 0; i < 100; i++) {
      const ct = clientTx(`b${i}`, recordingFlow(false), true, events(), () => {});
      ct.receive(res(200, "INVITE"));
      expect(ct.state).toBe("accepted");
      kept.push(ct);
    }
    // Timers A and the first-response timer went with the final response; Timer M stays, one each.
    expect(count(timerClass) - timersBefore).toBeLessThanOrEqual(100 + 2);
    expect(count(holdClass) - holdsBefore).toBeLessThanOrEqual(2);
    expect(kept.length).toBe(100);
  });

  it("a server transaction past its final response keeps no reference on its request's slot", () => {
    const holdClass = classOfHold();
    const count = () => queryObjects(holdClass, { format: "count" }) as number;
    const before = count();
    const kept: ServerTransaction[] = [];
    for (let i = 0; i < 100; i++) {
      const st = new ServerTransaction(
        `k${i}`,
        req("INVITE"),
        held(),
        recordingFlow(false),
        T,
        queue,
        ending(() => {}),
      );
      st.respond([Buffer.from("200")], 200);
      kept.push(st);
    }
    expect(count() - before).toBeLessThanOrEqual(2);
    expect(kept.length).toBe(100);
  });
});
