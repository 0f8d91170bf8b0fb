import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ProxyCore } from "../../../src/proxy/core.ts";
import { FlowTokens } from "../../../src/proxy/flow-token.ts";
import type { Dispatcher, Sides, Target } from "../../../src/proxy/ports.ts";
import { parseMessage, type SipMessage } from "../../../src/sip/index.ts";
import type { Flow, TransportName } from "../../../src/transport/flow.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { fakeDispatcher, fakeSides, proxySettings } from "../../helpers/proxy-fakes.ts";

// The proxy core against fake sides and flows: no sockets, a fake clock.
// sipedge: clients reach 10.0.0.1:5060, backends 10.0.0.1:5070. Members: pbx-a (UDP), pbx-t (TCP).
const PBX_A: Target = { name: "pbx-a", host: "10.1.0.1", port: 5080, transport: "udp" };
const PBX_T: Target = { name: "pbx-t", host: "10.1.0.2", port: 5080, transport: "tcp" };
const SETTINGS = proxySettings();

interface FakeFlow extends Flow {
  readonly sent: SipMessage[];
  accepts: boolean;
}

let nextId = 1;
function fakeFlow(remoteAddress: string, remotePort: number, transport: TransportName = "udp"): FakeFlow {
  const sent: SipMessage[] = [];
  return {
    id: nextId++,
    transport,
    reliable: transport !== "udp",
    remoteAddress,
    remotePort,
    localAddress: "10.0.0.1",
    localPort: 5060,
    closed: false,
    sent,
    accepts: true,
    peerNames: () => [],
    send(slices) {
      if (!this.accepts) return false;
      const parsed = parseMessage(Buffer.concat(slices.map((s) => Buffer.from(s))));
      if (!parsed.ok) throw new Error(`sent something unparsable: ${parsed.error.code}`);
      sent.push(parsed.value);
      return true;
    },
  };
}

/** Every flow the core asked for, by where it goes: a send anywhere else is a stray. */
function harness(overrides: Partial<Sides> = {}, balancer: Partial<Dispatcher> = {}) {
  const flows = new Map<string, FakeFlow>();
  const flowTo = (host: string, port: number, transport: TransportName = "udp") => {
    const key = `${transport}:${host}:${port}`;
    let f = flows.get(key);
    if (f === undefined) {
      f = fakeFlow(host, port, transport);
      flows.set(key, f);
    }
    return f;
  };
  const bound: { keys: readonly string[]; expiresMs: number }[] = [];
  const tokens = new FlowTokens();
  const sides = fakeSides({
    backendFlow: (t) => flowTo(t.host, t.port, t.transport as TransportName),
    clientUdpFlow: (host, port) => flowTo(host, port),
    tokens,
    endpointsBound: (keys, _flow, expiresMs) => bound.push({ keys, expiresMs }),
    ...overrides,
  });
  const dispatcher = fakeDispatcher([PBX_A, PBX_T], balancer);
  const pool = new BufferPool({ bytes: 4 << 20, maxMessageSize: 65536 });
  const core = new ProxyCore(SETTINGS, sides, dispatcher, pool);
  const receive = (flow: Flow, text: string, side: "client" | "backend" = "client") =>
    core.receive(Buffer.from(text.replaceAll("\n", "\r\n"), "latin1"), flow, side);
  return { core, flows, flowTo, receive, tokens, bound, pool };
}

function message(lines: string[]): string {
  return `${lines.join("\n")}\nContent-Length: 0\n\n`;
}

function invite(opts: { routes?: string[]; toTag?: string; method?: string; uri?: string; branch?: string } = {}) {
  const method = opts.method ?? "INVITE";
  return message([
    `${method} ${opts.uri ?? "sip:bob@example.com"} SIP/2.0`,
    ...(opts.routes ?? []).map((r) => `Route: ${r}`),
    `Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-${opts.branch ?? "c1"};rport`,
    "Max-Forwards: 70",
    "From: <sip:alice@example.com>;tag=a",
    `To: <sip:bob@example.com>${opts.toTag === undefined ? "" : `;tag=${opts.toTag}`}`,
    "Call-ID: call-1",
    `CSeq: 1 ${method}`,
    "Contact: <sip:alice@192.0.2.9>",
  ]);
}

/** A response from a backend to the request it got, at the top Via. */
function answer(req: SipMessage, status: number, extra: string[] = []): string {
  return message([
    `SIP/2.0 ${status} X`,
    ...req.values("via").map((v) => `Via: ${v}`),
    ...["from", "call-id", "cseq"].map((h) => `${h}: ${req.values(h)[0]}`),
    `To: ${req.values("to")[0]};tag=b`,
    ...req.values("record-route").map((v) => `Record-Route: ${v}`),
    ...extra,
  ]);
}

function statuses(flow: FakeFlow): number[] {
  return flow.sent.flatMap((m) => (m.kind === "response" ? [m.status] : []));
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("proxy core: nothing a client sends makes it relay anywhere but a backend", () => {
  it("forwards an INVITE whose first header is a Route naming sipedge (used to throw: overlapping edits)", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite({ routes: ["<sip:10.0.0.1:5060;lr>"] }));
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    expect(backend.sent.map((m) => m.kind === "request" && m.method)).toEqual(["INVITE"]);
    expect(backend.sent[0]?.values("route")).toEqual([]);
    expect(h.core.counters.internalErrors).toEqual({});
  });

  it("sends a dialog's requests to the backend signed into its Record-Route, and no stray anywhere", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    const fwd = backend.sent[0] as SipMessage;
    h.receive(backend, answer(fwd, 200), "backend");
    const ok = ua.sent.find((m) => m.kind === "response" && m.status === 200) as SipMessage;
    // The UA's route set is the Record-Route reversed (RFC 3261 §12.1.2); it aims the BYE at a private host.
    const routes = [...ok.values("record-route")].reverse();
    h.receive(ua, invite({ method: "BYE", toTag: "b", routes, uri: "sip:x@127.0.0.1:6379;transport=tcp" }));
    expect(backend.sent.map((m) => m.kind === "request" && m.method)).toEqual(["INVITE", "BYE"]);
    expect([...h.flows.keys()]).toEqual([`udp:${PBX_A.host}:${PBX_A.port}`]);
  });

  it("refuses a foreign Route (403) and an in-dialog request through our Route without a backend in it", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite({ method: "MESSAGE", routes: ["<sip:127.0.0.1:9999;lr>"] }));
    h.receive(ua, invite({ method: "BYE", branch: "c2", toTag: "b", routes: ["<sip:10.0.0.1:5070;lr>"] }));
    expect(statuses(ua)).toEqual([403, 403]);
    expect(h.flows.size).toBe(0);
    expect(h.core.counters.unroutable).toMatchObject({ foreign_route: 1, no_dialog_route: 1 });
  });

  it("drops what reaches the backend side from an address that is no member", () => {
    const h = harness();
    const stranger = fakeFlow("198.51.100.66", 5080);
    const fl = h.tokens.issueUdp("192.0.2.9", 5060, 0);
    h.receive(stranger, invite({ routes: [`<sip:10.0.0.1:5060;lr;fl=${fl}>`] }), "backend");
    expect(h.flows.size).toBe(0);
    expect(stranger.sent).toEqual([]);
    expect(h.core.counters.strangers).toBe(1);
  });

  it("accepts a response only from the peer the request went to", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite({ method: "OPTIONS", uri: "sip:bob@example.com" }));
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    const fwd = backend.sent[0] as SipMessage;
    // Another member's address: past the allow-list, yet not where this request went.
    h.receive(fakeFlow(PBX_T.host, 5080), answer(fwd, 200), "backend");
    expect(statuses(ua)).toEqual([]);
    expect(h.core.counters.misdirectedResponses).toBe(1);
    h.receive(backend, answer(fwd, 200), "backend");
    expect(statuses(ua)).toEqual([200]);
  });

  it("makes branches nobody can guess: 64 random bits after the worker's mark", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite({ method: "OPTIONS", branch: "o1" }));
    h.receive(ua, invite({ method: "OPTIONS", branch: "o2" }));
    const branches = h
      .flowTo(PBX_A.host, PBX_A.port)
      .sent.map((m) => /branch=([^;,\s]+)/.exec(m.values("via")[0] ?? "")?.[1]);
    for (const b of branches) expect(b).toMatch(/^z9hG4bK-se[0-9a-f]{6}-[0-9a-f]{16}$/);
    expect(branches[0]).not.toBe(branches[1]);
  });
});

describe("proxy core: nobody poses as another", () => {
  it("lets only the peer that sent an INVITE cancel it (481 to anyone else, the call goes on)", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const other = fakeFlow("198.51.100.1", 5060, "tcp");
    h.receive(other, invite({ method: "CANCEL" }));
    expect(statuses(other)).toEqual([481]);
    h.receive(ua, invite({ method: "CANCEL" }));
    expect(statuses(ua)).toEqual([100, 200]);
  });
});

describe("proxy core: a client cannot hand a backend another UA's flow", () => {
  it("drops a client's answer whose Record-Route no longer carries the flow token sipedge wrote", () => {
    const h = harness();
    const pbx = h.flowTo(PBX_A.host, PBX_A.port);
    const fl = h.tokens.issueUdp("192.0.2.9", 5060, 0);
    const call = (branch: string) =>
      invite({ uri: "sip:alice@192.0.2.9", branch, routes: [`<sip:10.0.0.1:5060;lr;fl=${fl}>`] }).replace(
        "192.0.2.9:5060;branch",
        `${PBX_A.host}:${PBX_A.port};branch`,
      );
    h.receive(pbx, call("p1"), "backend");
    const ua = h.flowTo("192.0.2.9", 5060);
    const toUa = ua.sent[0] as SipMessage;
    const victim = h.tokens.issueUdp("203.0.113.50", 5060, 0);
    const forged = answer(toUa, 200).replace(/fl=[\w-]+/, `fl=${victim}`);
    h.receive(ua, forged, "client");
    expect(statuses(pbx)).toEqual([100]);
    expect(h.core.counters.forgedTokens).toBe(1);
    h.receive(ua, answer(toUa, 200), "client");
    expect(statuses(pbx)).toEqual([100, 200]);
  });
});

describe("proxy core: every transaction ends", () => {
  it("answers 503 when a dialog's backend cannot be written to, and keeps no transaction", async () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    const bk = h.tokens.issueBackend("pbx-t", "call-1");
    h.flowTo(PBX_T.host, PBX_T.port, "tcp").accepts = false;
    h.receive(ua, invite({ method: "BYE", toTag: "b", routes: [`<sip:10.0.0.1:5070;lr;bk=${bk}>`] }));
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses(ua)).toEqual([503]);
    await vi.advanceTimersByTimeAsync(64 * 500);
    expect(h.core.transactions).toEqual({ server: 0, client: 0 });
  });

  it("answers 503 at once when the connection a ringing INVITE went over closes", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    const bk = h.tokens.issueBackend("pbx-t", "call-1");
    h.receive(ua, invite({ toTag: "b", routes: [`<sip:10.0.0.1:5070;lr;bk=${bk}>`] }));
    const link = h.flowTo(PBX_T.host, PBX_T.port, "tcp");
    h.receive(link, answer(link.sent[0] as SipMessage, 180), "backend");
    h.core.flowClosed(link);
    expect(statuses(ua)).toEqual([100, 180, 503]);
  });

  it("ends a transaction whose next hop only ever rings, by its deadline (twice Timer C)", async () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    const fwd = backend.sent[0] as SipMessage;
    // A 180 every minute restarts Timer C (RFC 3261 §16.7 step 2); the deadline does not restart.
    for (let i = 0; i < 7; i++) {
      h.receive(backend, answer(fwd, 180), "backend");
      await vi.advanceTimersByTimeAsync(60_000);
    }
    expect(statuses(ua).at(-1)).toBe(408);
    await vi.advanceTimersByTimeAsync(64 * 500);
    expect(h.core.transactions.server).toBe(0);
  });
});

describe("proxy core: the request after the answer", () => {
  it("still ACKs the 487 that follows its own 408 on Timer C, though the caller has its answer", async () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    const fwd = backend.sent[0] as SipMessage;
    h.receive(backend, answer(fwd, 180), "backend");
    await vi.advanceTimersByTimeAsync(SETTINGS.timers.timerC);
    expect(statuses(ua).at(-1)).toBe(408);
    expect(backend.sent.map((m) => (m.kind === "request" ? m.method : m.status))).toEqual(["INVITE", "CANCEL"]);
    h.receive(backend, answer(fwd, 487), "backend");
    const ack = backend.sent.at(-1);
    expect(ack?.kind === "request" && ack.method).toBe("ACK");
    expect(ack?.values("via")[0]).toBe(fwd.values("via")[0]);
  });
});

describe("proxy core: no answer worth more than its request", () => {
  it("sends its own refusal of an out-of-dialog INVITE over UDP twice, not all along Timer G (the source may be forged)", async () => {
    const h = harness();
    const spoofed = fakeFlow("192.0.2.99", 5060);
    h.receive(spoofed, invite()); // the backend never answers: failover, then 503 from sipedge
    await vi.advanceTimersByTimeAsync(64 * 500);
    expect(statuses(spoofed)).toEqual([100, 503, 503]);
  });

  it("relays a backend's 407 to an out-of-dialog INVITE over UDP twice, not eleven times", async () => {
    const h = harness();
    const spoofed = fakeFlow("192.0.2.99", 5060);
    h.receive(spoofed, invite());
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    h.receive(backend, answer(backend.sent[0] as SipMessage, 407), "backend");
    await vi.advanceTimersByTimeAsync(64 * 500);
    expect(statuses(spoofed)).toEqual([100, 407, 407]);
  });
});

describe("proxy core: not a reflector", () => {
  it("answers one UDP source at most limits.answersPerSource times a second, and counts the rest", () => {
    const h = harness();
    const victim = fakeFlow("192.0.2.77", 5060);
    for (let i = 0; i < 600; i++)
      h.receive(victim, invite({ method: "MESSAGE", branch: `r${i}`, routes: ["<sip:192.0.2.1;lr>"] }));
    expect(statuses(victim)).toHaveLength(500);
    expect(h.core.counters.answersLimited).toBe(100);
  });
});

describe("proxy core: a bug costs one message, never the worker", () => {
  it("catches a throwing handler, counts it, answers 500 and handles the next message", () => {
    let calls = 0;
    const h = harness({
      trusted: () => {
        calls++;
        if (calls === 1) throw new Error("injected bug");
        return false;
      },
    });
    const ua = fakeFlow("192.0.2.9", 5060);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => h.receive(ua, invite({ method: "MESSAGE", branch: "m1" }))).not.toThrow();
    quiet.mockRestore();
    expect(statuses(ua)).toEqual([500]);
    expect(h.core.counters.internalErrors).toEqual({ client: 1 });
    h.receive(ua, invite({ method: "MESSAGE", branch: "m2" }));
    expect(h.flowTo(PBX_A.host, PBX_A.port).sent).toHaveLength(1);
    expect(h.pool.inUse).toBeGreaterThan(0); // the forwarded request's transaction holds it
  });
});

describe("proxy core: a bug in a timer costs that transaction, never the worker", () => {
  it("catches a throw on the first-response timeout, counts it under timer, and serves on", async () => {
    const h = harness(
      {},
      {
        failed: () => {
          throw new Error("injected bug");
        },
      },
    );
    const ua = fakeFlow("192.0.2.9", 5060);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    h.receive(ua, invite({ method: "MESSAGE" }));
    await vi.advanceTimersByTimeAsync(2500); // the backend is silent past firstResponseTimeout
    quiet.mockRestore();
    expect(h.core.counters.internalErrors).toEqual({ timer: 1 });
    h.receive(ua, invite({ method: "OPTIONS", uri: "sip:10.0.0.1:5060" }));
    expect(statuses(ua)).toContain(200);
  });
});

describe("proxy core: registrations", () => {
  const register = (contact: string) =>
    message([
      "REGISTER sip:example.com SIP/2.0",
      "Via: SIP/2.0/TCP 192.0.2.9:5060;branch=z9hG4bK-r1",
      "Max-Forwards: 70",
      "From: <sip:alice@example.com>;tag=a",
      "To: <sip:alice@example.com>",
      "Call-ID: reg-1",
      "CSeq: 1 REGISTER",
      `Contact: ${contact}`,
    ]);

  it("binds the endpoint under its AoR from what the registrar granted, not from the request", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060, "tcp");
    const contact = '<sip:alice@192.0.2.9;transport=tcp>;+sip.instance="<urn:uuid:1>";reg-id=1;expires=3600';
    h.receive(ua, register(contact));
    const backend = h.flowTo(PBX_A.host, PBX_A.port);
    const fwd = backend.sent[0] as SipMessage;
    expect(h.bound).toEqual([]);
    h.receive(backend, answer(fwd, 200, [`Contact: ${contact.replace("expires=3600", "expires=600")}`]), "backend");
    expect(h.bound).toEqual([{ keys: ['sip:alice@example.com "<urn:uuid:1>" 1'], expiresMs: 600_000 }]);
  });

  it("refuses a Contact expires that is not delta-seconds (it made a binding that never ended)", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060, "tcp");
    h.receive(ua, register("<sip:alice@192.0.2.9>;expires=abc"));
    expect(statuses(ua)).toEqual([400]);
    expect(h.flows.size).toBe(0);
  });
});

describe("proxy core: admission", () => {
  it("counts a To-tagged request without our Route as new work (refused while the pool is low)", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    const held = [];
    for (
      let slot = h.pool.copy([Buffer.alloc(1000)], false);
      slot !== undefined;
      slot = h.pool.copy([Buffer.alloc(1000)], false)
    ) {
      held.push(slot);
      if (h.pool.level !== "normal") break;
    }
    expect(h.pool.level).not.toBe("normal");
    h.receive(ua, invite({ method: "MESSAGE", toTag: "forged" }));
    expect(statuses(ua)).toEqual([503]);
    expect(h.core.counters.overload.pool).toBe(1);
  });
});

describe("proxy core: acting on failover's verdict (src/proxy/failover.ts)", () => {
  const PBX_B: Target = { name: "pbx-b", host: "10.1.0.3", port: 5080, transport: "udp" };
  const two = [PBX_A, PBX_B];
  const twoBackends = {
    pick: (_req: unknown, tried: ReadonlySet<Target>) => two.find((m) => !tried.has(m)),
    memberAt: (address: string) => two.find((m) => m.host === address),
  };

  it("retries a 503 on the next backend (ACKing the first), and answers 503 + Retry-After itself when none is left", () => {
    const h = harness({}, twoBackends);
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const a = h.flowTo(PBX_A.host, PBX_A.port);
    h.receive(a, answer(a.sent[0] as SipMessage, 503), "backend");
    expect(a.sent.map((m) => (m.kind === "request" ? m.method : m.status))).toEqual(["INVITE", "ACK"]);
    const b = h.flowTo(PBX_B.host, PBX_B.port);
    h.receive(b, answer(b.sent[0] as SipMessage, 503), "backend");
    expect(statuses(ua)).toEqual([100, 503]);
    expect(ua.sent.at(-1)?.values("retry-after")).toHaveLength(1);
    expect(h.core.counters.failovers).toBe(2);
    expect(h.core.counters.exhausted).toBe(1);
  });

  it("relays a 503 that follows a provisional: the call rang there", () => {
    const h = harness({}, twoBackends);
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    const a = h.flowTo(PBX_A.host, PBX_A.port);
    h.receive(a, answer(a.sent[0] as SipMessage, 180), "backend");
    h.receive(a, answer(a.sent[0] as SipMessage, 503), "backend");
    expect(statuses(ua)).toEqual([100, 180, 503]);
    expect(h.flowTo(PBX_B.host, PBX_B.port).sent).toEqual([]);
    expect(h.core.counters.failovers).toBe(0);
  });

  it("answers 487 to an INVITE cancelled before its backend said anything, once the backend stays silent", async () => {
    const h = harness({}, twoBackends);
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    h.receive(ua, invite({ method: "CANCEL" }));
    await vi.advanceTimersByTimeAsync(SETTINGS.firstResponseTimeout + 100);
    expect(statuses(ua)).toEqual([100, 200, 487]);
    // No provisional came, so no CANCEL went downstream (RFC 3261 §9.1; only the INVITE's retransmissions), nor a retry.
    const methods = h.flowTo(PBX_A.host, PBX_A.port).sent.map((m) => (m.kind === "request" ? m.method : 0));
    expect(new Set(methods)).toEqual(new Set(["INVITE"]));
    expect(h.flowTo(PBX_B.host, PBX_B.port).sent).toEqual([]);
  });

  it("answers 430 to a backend's request whose client flow closed under it (RFC 5626 §5.3)", () => {
    const ua = fakeFlow("192.0.2.9", 5060, "tcp");
    const h = harness({ connection: (id) => (id === ua.id && !ua.closed ? ua : undefined) });
    const pbx = fakeFlow(PBX_T.host, 40000, "tcp");
    const token = h.tokens.issue(ua.id);
    h.core.receive(
      Buffer.from(
        message([
          "INVITE sip:alice@192.0.2.9 SIP/2.0",
          `Route: <sip:10.0.0.1:5070;transport=tcp;lr;fl=${token}>`,
          "Via: SIP/2.0/TCP 10.1.0.2:5080;branch=z9hG4bK-b1",
          "Max-Forwards: 70",
          "From: <sip:bob@example.com>;tag=b",
          "To: <sip:alice@example.com>",
          "Call-ID: call-2",
          "CSeq: 1 INVITE",
        ]).replaceAll("\n", "\r\n"),
        "latin1",
      ),
      pbx,
      "backend",
    );
    expect(statuses(pbx)).toEqual([100]);
    h.core.flowClosed(ua);
    expect(statuses(pbx)).toEqual([100, 430]);
    expect(h.core.counters.flowFailed).toBe(1);
  });
});

describe("proxy core: stats", () => {
  it("gives its counters and the transactions under way, server and client side", () => {
    const h = harness();
    const ua = fakeFlow("192.0.2.9", 5060);
    h.receive(ua, invite());
    expect(h.core.stats()).toMatchObject({
      counters: { received: 1, requests: { "INVITE udp": 1 } },
      transactions: { server: 1, client: 1 },
    });
  });
});
