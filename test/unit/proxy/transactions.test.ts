import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ClientEvents, ClientTransaction, ServerTransaction } from "../../../src/proxy/transactions.ts";
import type { SipRequest, SipResponse } from "../../../src/sip/index.ts";
import type { Flow } from "../../../src/transport/flow.ts";
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
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("client transactions (RFC 3261 §17.1)", () => {
  it("non-INVITE over UDP: Timer E doubles up to T2, Timer F gives up at 64*T1", () => {
    const flow = recordingFlow(false);
    const ev = events();
    new ClientTransaction("b1", flow, false, [Buffer.from("x")], { ...T, firstResponse: 2000 }, ev, () => {});
    vi.advanceTimersByTime(64 * T.t1);
    expect(flow.sent.slice(0, 7)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    expect(ev.log).toEqual(["silent", "timeout"]);
  });

  it("INVITE over UDP: Timer A doubles until a provisional, then stops", () => {
    const flow = recordingFlow(false);
    const ev = events();
    const ct = new ClientTransaction("b2", flow, true, [Buffer.from("x")], { ...T, firstResponse: 2000 }, ev, () => {});
    vi.advanceTimersByTime(1600);
    ct.receive(res(180, "INVITE"));
    vi.advanceTimersByTime(10_000);
    expect(flow.sent).toEqual([0, 500, 1500]);
    expect(ev.log).toEqual(["response 180"]);
  });

  it("does not retransmit over a reliable transport", () => {
    const flow = recordingFlow(true);
    new ClientTransaction("b3", flow, true, [Buffer.from("x")], { ...T, firstResponse: 2000 }, events(), () => {});
    vi.advanceTimersByTime(64 * T.t1);
    expect(flow.sent).toEqual([0]);
  });

  it("reports silence only when nothing at all came back in time", () => {
    const ev = events();
    const ct = new ClientTransaction(
      "b4",
      recordingFlow(false),
      true,
      [Buffer.from("x")],
      { ...T, firstResponse: 2000 },
      ev,
      () => {},
    );
    vi.advanceTimersByTime(300);
    ct.receive(res(100, "INVITE"));
    vi.advanceTimersByTime(5000);
    expect(ev.log).toEqual(["response 100"]);
  });

  it("repeats the hop-by-hop ACK for a retransmitted non-2xx final response, then ends after Timer D", () => {
    const flow = recordingFlow(false);
    const ended = vi.fn();
    const ct = new ClientTransaction(
      "b5",
      flow,
      true,
      [Buffer.from("x")],
      { ...T, firstResponse: 2000 },
      events(),
      ended,
    );
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
    const st = new ServerTransaction("k", req("INVITE"), flow, T, ended);
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

  it("answers a retransmitted request with the last response", () => {
    const flow = recordingFlow(false);
    const st = new ServerTransaction("k", req("OPTIONS"), flow, T, () => {});
    st.respond([Buffer.from("200")], 200);
    st.retransmitted();
    expect(flow.sent.length).toBe(2);
  });

  it("INVITE 2xx: Accepted state passes 2xx retransmissions on and ends after Timer L", () => {
    const flow = recordingFlow(true);
    const ended = vi.fn();
    const st = new ServerTransaction("k", req("INVITE"), flow, T, ended);
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
    const st = new ServerTransaction("k", req("OPTIONS"), recordingFlow(true), T, ended);
    st.respond([Buffer.from("200")], 200);
    vi.advanceTimersByTime(0);
    expect(ended).toHaveBeenCalledOnce();
  });
});
