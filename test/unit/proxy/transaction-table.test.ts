import { describe, expect, it } from "vitest";
import type { ProxyCounters } from "../../../src/proxy/ports.ts";
import { TimerQueue } from "../../../src/proxy/timer-queue.ts";
import { type Forward, letGo, stopTimers, TransactionTable } from "../../../src/proxy/transaction-table.ts";
import type { ClientTransaction, ServerTransaction } from "../../../src/proxy/transactions.ts";
import type { BufferPool } from "../../../src/transport/pool.ts";
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

describe("the lingering bound", () => {
  /** A table over fakes: each transaction, ended, leaves the table as a real one does; `ended` lists them in order. */
  function table(maxLingering: number) {
    const pool = { level: "normal" } as { level: BufferPool["level"] };
    const counters = { reclaimed: 0 } as ProxyCounters;
    const t = new TransactionTable(pool as BufferPool, counters, maxLingering);
    const ended: string[] = [];
    const server = (name: string) => {
      const st = {
        key: name,
        terminate: () => {
          ended.push(name);
          t.serverDone(st);
        },
      } as unknown as ServerTransaction;
      return st;
    };
    const client = (name: string) => {
      const ct = {
        key: `${name}|O`,
        terminate: () => {
          ended.push(name);
          t.clientDone(ct);
        },
      } as unknown as ClientTransaction;
      return ct;
    };
    return { t, pool, counters, ended, server, client };
  }

  it("ends the oldest still lingering first, on each side, past transactions that ended on their own and after a drain", () => {
    const { t, counters, ended, server, client } = table(3);
    const sts = Array.from({ length: 12 }, (_, i) => server(`s${i}`));
    const cts = Array.from({ length: 12 }, (_, i) => client(`c${i}`));
    for (let i = 0; i < 8; i++) {
      t.serverLingering(sts[i] as ServerTransaction);
      t.lingerClient(cts[i] as ClientTransaction);
      t.lingerClient(cts[i] as ClientTransaction); // twice: counted once
      if (i === 4) {
        // Their own timers end s2 and c3 (in the middle), and s4 (the newest).
        t.serverDone(sts[2] as ServerTransaction);
        t.clientDone(cts[3] as ClientTransaction);
        t.serverDone(sts[4] as ServerTransaction);
      }
    }
    expect(ended).toEqual(["s0", "c0", "s1", "c1", "c2", "s3", "c4"]);
    expect(counters.reclaimed).toBe(7);
    // Drained by their timers, then lingering again: still the oldest first.
    for (const i of [6, 7]) t.serverDone(sts[i] as ServerTransaction);
    for (const i of [5, 6, 7]) t.clientDone(cts[i] as ClientTransaction);
    ended.length = 0;
    for (let i = 8; i < 12; i++) {
      t.serverLingering(sts[i] as ServerTransaction);
      t.lingerClient(cts[i] as ClientTransaction);
    }
    expect(ended).toEqual(["s5", "s8", "c8"]);
  });

  it("ends every lingering server transaction while the pool runs short, and stops once it does not", () => {
    const { t, pool, ended, server } = table(100);
    for (let i = 0; i < 5; i++) t.serverLingering(server(`s${i}`));
    pool.level = "low";
    t.reclaim();
    expect(ended).toEqual(["s0", "s1", "s2", "s3", "s4"]);
    pool.level = "normal";
    t.serverLingering(server("s5"));
    t.reclaim();
    expect(ended).toHaveLength(5);
  });
});
