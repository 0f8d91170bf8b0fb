import { afterEach, describe, expect, it } from "vitest";
import type { SipMessage, SipResponse } from "../../src/sip/index.ts";
import { listeningPort, silentBackendConfig, startCli } from "../helpers/cli.ts";
import { type Dialog, dialogFrom, request, respond } from "../helpers/dialog.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { StreamClient, UdpPeer } from "../helpers/sip-client.ts";

const peers: UdpPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

/**
 * One IO worker in front of a backend that answers OPTIONS (its probes
 * among them) and nothing else, so every INVITE sent through stays a
 * transaction awaiting its answer.
 */
async function silentBackendSetup(
  limits: string,
  tcp = false,
): Promise<{ port: number; tcpPort: number; admin: number; client: UdpPeer; backend: UdpPeer }> {
  const backend = await UdpPeer.bind(true);
  const client = await UdpPeer.bind(false);
  peers.push(backend, client);
  const admin = await freePort();
  const cli = await startCli(
    silentBackendConfig(backend.port, admin, {
      extraListen: tcp ? ["{ transport: tcp, address: 127.0.0.1, port: 0 }"] : [],
      sip: "maxMessageSize: 4KiB, firstResponseTimeout: 60s",
      lines: [limits],
    }),
    "admin API",
  );
  await sleep(2000); // probed up
  const tcpPort = tcp ? listeningPort(cli.out(), "tcp") : 0;
  return { port: listeningPort(cli.out(), "udp"), tcpPort, admin, client, backend };
}

function invite(client: UdpPeer, port: number, callId: string): void {
  const text = request({
    method: "INVITE",
    uri: "sip:service@127.0.0.1",
    transport: "UDP",
    localPort: client.port,
    callId,
    cseq: 1,
    branch: callId,
    sdp: true,
  });
  client.send(text, port);
}

/**
 * A call set up through sipedge before the overload: the backend answers
 * this one INVITE by hand. Only requests inside a dialog sipedge made (its
 * signed Record-Route) count as established calls.
 */
async function establish(client: UdpPeer, port: number, backend: UdpPeer): Promise<Dialog> {
  invite(client, port, "up");
  const inv = await backend.take((m) => m.kind === "request" && m.method === "INVITE");
  const rr = inv.msg.values("record-route").map((v) => `Record-Route: ${v}`);
  const ok = respond(inv.msg, 200, "OK", [...rr, `Contact: <sip:callee@127.0.0.1:${backend.port}>`]);
  backend.send(ok.replace(/^(to: .*)$/im, "$1;tag=up"), inv.port);
  const answer = await client.take((m) => m.kind === "response" && m.status === 200);
  return dialogFrom(answer.msg);
}

/** A BYE inside the dialog (each with a branch of its own: a transaction of its own). */
function bye(client: UdpPeer, port: number, d: Dialog, branch: string): void {
  client.send(
    request({
      method: "BYE",
      uri: d.remoteTarget,
      transport: "UDP",
      localPort: client.port,
      callId: "up",
      cseq: 2,
      branch,
      routes: d.routes,
      to: d.to,
    }),
    port,
  );
}

/** The final response each Call-ID got, waiting until `count` have one or the time is up. */
async function finals(client: UdpPeer, count: number, timeoutMs = 10_000): Promise<SipResponse[]> {
  const got: SipResponse[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count && Date.now() < deadline) {
    const r = await client
      .take((m: SipMessage) => m.kind === "response" && m.status >= 200, 200)
      .catch(() => undefined);
    if (r !== undefined) got.push(r.msg as SipResponse);
  }
  return got;
}

async function metrics(admin: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
}

async function until(done: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe("overload: new work is refused with 503 + Retry-After, established calls carry on", () => {
  it("refuses new INVITEs once the transaction table is full, and still forwards BYE and answers OPTIONS", async () => {
    const { port, admin, client, backend } = await silentBackendSetup("limits: { maxTransactions: 5 }");
    const call = await establish(client, port, backend);
    for (let i = 0; i < 12; i++) invite(client, port, `full-${i}`);
    const refused = await finals(client, 7);
    expect(refused.map((r) => r.status)).toEqual(new Array(7).fill(503));
    for (const r of refused) {
      // RFC 3261 §20.33 with jitter: 30 s (sip.retryAfter) to 45 s.
      const after = Number(r.values("retry-after")[0]);
      expect(after).toBeGreaterThanOrEqual(30);
      expect(after).toBeLessThanOrEqual(45);
    }
    expect(await metrics(admin)).toMatch(/^sipedge_overload_rejected_total\{reason="transactions"\} 7$/m);
    // A request inside a dialog sipedge made is not refused: it reaches the backend.
    bye(client, port, call, "in-dialog");
    const got = await backend.take((m) => m.kind === "request" && m.method === "BYE");
    expect(got.msg.values("call-id")).toEqual(["up"]);
  });

  it("ends finished transactions early to make room before it refuses anything", async () => {
    const { port, admin, client, backend } = await silentBackendSetup("limits: { memory: 256KiB }");
    // OPTIONS through to the backend (it answers those): each finished transaction keeps its 200
    // for 32 s over UDP (Timer J), more than the tiny pool holds.
    for (let i = 0; i < 300; i++) {
      client.send(
        request({
          method: "OPTIONS",
          uri: "sip:someone@127.0.0.1",
          transport: "UDP",
          localPort: client.port,
          callId: `linger-${i}`,
          cseq: 1,
          branch: `linger-${i}`,
        }),
        port,
      );
      if (i % 20 === 19) await sleep(20);
    }
    const answered = await finals(client, 300);
    expect(answered.filter((r) => r.status === 200).length).toBe(300);
    const text = await metrics(admin);
    expect(text).toMatch(/^sipedge_transactions_reclaimed_total [1-9]/m);
    expect(text).not.toMatch(/^sipedge_overload_rejected_total\{reason="pool"\} [1-9]/m);
    // A new call is still let through.
    invite(client, port, "after-reclaim");
    const got = await backend.take((m) => m.kind === "request" && m.method === "INVITE");
    expect(got.msg.values("call-id")).toEqual(["after-reclaim"]);
  });

  it("refuses new INVITEs when the buffer pool runs low, while BYE still goes through", async () => {
    // A tiny budget: a few dozen held INVITEs take the pool below its low-water mark.
    const { port, admin, client, backend } = await silentBackendSetup("limits: { memory: 256KiB }");
    const call = await establish(client, port, backend);
    for (let i = 0; i < 150; i++) {
      invite(client, port, `pool-${i}`);
      if (i % 20 === 19) await sleep(20);
    }
    const refused = await finals(client, 1);
    expect(refused[0]?.status).toBe(503);
    const text = await metrics(admin);
    expect(text).toMatch(/^sipedge_overload_rejected_total\{reason="pool"\} [1-9]/m);
    const free = Number(/^sipedge_buffer_pool_free_ratio\{worker="0"\} (\S+)/m.exec(text)?.[1]);
    // Held at the low-water mark: each refused INVITE gives its slot back at once.
    expect(free).toBeGreaterThan(0.2);
    expect(free).toBeLessThan(0.3);
    bye(client, port, call, "in-dialog-low");
    const got = await backend.take((m) => m.kind === "request" && m.method === "BYE");
    expect(got.msg.values("call-id")).toEqual(["up"]);
  });

  it("gives a retransmitted refusal the same To tag and absorbs the ACK for it, wherever its Request-URI points", async () => {
    const { port, client, backend } = await silentBackendSetup("limits: { maxTransactions: 1 }");
    invite(client, port, "holds-the-table");
    await backend.take((m) => m.kind === "request" && m.method === "INVITE");
    // Addressed to the backend itself: an ACK forwarded by its Request-URI would reach it.
    const uri = `sip:svc@127.0.0.1:${backend.port}`;
    const base = {
      uri,
      transport: "UDP",
      localPort: client.port,
      callId: "refused-twice",
      cseq: 1,
      branch: "rt",
    } as const;
    const text = request({ ...base, method: "INVITE", sdp: true });
    client.send(text, port);
    const [first] = await finals(client, 1);
    client.send(text, port); // the same request again, as a UAC retransmits it
    const [again] = await finals(client, 1);
    expect([first?.status, again?.status]).toEqual([503, 503]);
    const tag = /;tag=([^;\s]+)/.exec(first?.values("to")[0] ?? "")?.[1];
    expect(tag).toBeDefined();
    // RFC 3261 §8.2.7: a stateless answer carries the same tag each time.
    expect(again?.values("to")[0]).toBe(first?.values("to")[0]);
    client.send(request({ ...base, method: "ACK", to: `<sip:service@127.0.0.1>;tag=${tag}` }), port);
    await expect(backend.take((m) => m.kind === "request" && m.method === "ACK", 1000)).rejects.toThrow();
  });

  it("below the critical mark stops reading new connections and refuses more, until buffers return", async () => {
    const { port, tcpPort, admin, client, backend } = await silentBackendSetup("limits: { memory: 256KiB }", true);
    const call = await establish(client, port, backend);
    const young = await StreamClient.connect(tcpPort, false);
    // In-dialog BYEs are not refused: held by transactions the backend does not answer, they take
    // the pool below its critical mark (10 % free).
    let free = 1;
    for (let i = 0; i < 600 && free >= 0.1; i++) {
      bye(client, port, call, `hold-${i}`);
      if (i % 20 === 19) {
        await sleep(30);
        free = Number(/^sipedge_buffer_pool_free_ratio\{worker="0"\} (\S+)/m.exec(await metrics(admin))?.[1]);
      }
    }
    expect(free).toBeLessThan(0.1);
    await until(async () => /^sipedge_connections_paused\{worker="0"\} 1$/m.test(await metrics(admin)));
    // Not read: sipedge does not answer what the new connection sends.
    const ask = (branch: string) =>
      young.send(
        request({
          method: "OPTIONS",
          uri: `sip:127.0.0.1:${tcpPort};transport=tcp`,
          transport: "TCP",
          localPort: young.localPort,
          callId: branch,
          cseq: 1,
          branch,
        }),
      );
    ask("while-critical");
    await expect(young.waitFor((m) => m.kind === "response", 1000)).rejects.toThrow();
    // A connection that comes now is closed at the door.
    const late = await StreamClient.connect(tcpPort, false);
    await until(async () => late.closed);
    expect(await metrics(admin)).toMatch(/^sipedge_connections_refused_total\{reason="pool"\} [1-9]/m);
    // The backend answers every BYE: the buffers come home, and the connection is read again.
    for (;;) {
      const bye = await backend.take((m) => m.kind === "request" && m.method === "BYE", 500).catch(() => undefined);
      if (bye === undefined) break;
      backend.send(respond(bye.msg, 200, "OK"), bye.port);
    }
    const answer = await young.waitFor((m) => m.kind === "response", 5000);
    expect(answer.kind === "response" && answer.status).toBe(200);
    expect(young.closed).toBe(false);
    young.close();
  });
});
