import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { invite } from "../helpers/dialog.ts";
import { freePort, lossyLink, sleep } from "../helpers/net.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { perTest, startSipedge } from "../helpers/sipedge.ts";
import { FIXTURE_SCENARIOS, runUac, startUas } from "../helpers/sipp.ts";

const scope = perTest();
const { processes } = scope;

describe("failover", () => {
  it("moves new calls off a stopped backend, and back once it returns", async () => {
    const [a, b] = [await freePort(), await freePort()];
    let uasA = startUas(processes, a);
    const uasB = startUas(processes, b);
    const sipedge = scope.use(await startSipedge([a, b], { sip: { firstResponseTimeout: "600ms" } }));
    await sleep(300);
    const target = `127.0.0.1:${sipedge.udp}`;

    expect(await runUac(processes, target, { calls: 10, rate: 20 })).toEqual({ calls: 10, successful: 10, failed: 0 });
    await processes.kill(uasA.child);
    // Calls that hash to the stopped backend wait out the first-response timeout, then go to the other.
    expect(await runUac(processes, target, { calls: 20, rate: 10 })).toEqual({ calls: 20, successful: 20, failed: 0 });
    expect(sipedge.worker.proxy.counters.failovers).toBeGreaterThan(0);

    uasA = startUas(processes, a);
    await sleep(1500); // the passive suspect mark (interval x upAfter) runs out
    expect(await runUac(processes, target, { calls: 20, rate: 20 })).toEqual({ calls: 20, successful: 20, failed: 0 });
    await sleep(1200);
    expect(uasA.counts().calls).toBeGreaterThan(0);
    expect(uasB.counts().calls).toBeGreaterThan(0);
  });

  it("moves a call to the next backend when one answers 503", async () => {
    const [busy, good] = [await freePort(), await freePort()];
    const overloaded = startUas(processes, busy, { scenario: join(FIXTURE_SCENARIOS, "uas_unavailable.xml") });
    const healthy = startUas(processes, good);
    const sipedge = scope.use(await startSipedge([busy, good]));
    await sleep(300);
    expect(await runUac(processes, `127.0.0.1:${sipedge.udp}`, { calls: 20, rate: 20 })).toEqual({
      calls: 20,
      successful: 20,
      failed: 0,
    });
    await sleep(1200);
    // Calls hashed to the overloaded backend were answered 503 there, then completed on the other.
    expect(overloaded.counts().calls).toBeGreaterThan(0);
    expect(healthy.counts().calls).toBe(20);
  });

  it("answers 503 with Retry-After when no backend is left", async () => {
    const dead = await freePort();
    const sipedge = scope.use(await startSipedge([dead], { sip: { firstResponseTimeout: "300ms", retryAfter: 7 } }));
    const client = await StreamClient.connect(sipedge.tcp, false);
    client.send(invite("TCP", client.localPort, `nobody-${Date.now()}`));
    const res = await client.waitFor((m) => m.kind === "response" && m.status >= 200);
    expect(res.kind === "response" && res.status).toBe(503);
    // sip.retryAfter (7) plus jitter of up to half as much again.
    const after = Number(res.values("retry-after")[0]);
    expect(after).toBeGreaterThanOrEqual(7);
    expect(after).toBeLessThanOrEqual(10);
    client.close();
  });
});

describe("loop detection", () => {
  it("answers 482 when a request it forwarded comes back to its client side", async () => {
    const sipedge = scope.use(await startSipedge([], { selfLoop: true }));
    const client = await StreamClient.connect(sipedge.tcp, false);
    client.send(invite("TCP", client.localPort, `loop-${Date.now()}`));
    const res = await client.waitFor((m) => m.kind === "response" && m.status >= 200);
    expect(res.kind === "response" && res.status).toBe(482);
    client.close();
  });
});

describe("retransmission towards a UDP backend", () => {
  it("gets a call through when the first INVITE to the backend is lost, for a TLS client that never retransmits", async () => {
    const port = await freePort();
    const uas = startUas(processes, port);
    let invites = 0;
    const link = await lossyLink(port, (d) => d.toString("latin1", 0, 7) === "INVITE " && invites++ === 0);
    const sipedge = scope.use(
      await startSipedge([link.port], { sip: { firstResponseTimeout: "5s", timers: { t1: "200ms" } } }),
    );
    await sleep(300);
    const client = await StreamClient.connect(sipedge.tls, true);
    client.send(invite("TLS", client.localPort, `retrans-${Date.now()}`));
    const ok = await client.waitFor((m) => m.kind === "response" && m.status === 200, 8000);
    expect(ok.kind === "response" && ok.status).toBe(200);
    expect(invites).toBeGreaterThanOrEqual(2);
    await sleep(1200);
    expect(uas.counts().calls).toBe(1);
    client.close();
    link.close();
  });
});
