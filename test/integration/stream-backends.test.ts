import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { dialogFrom, inDialog, invite, respond } from "../helpers/dialog.ts";
import { freePort, sleep, startStunnel } from "../helpers/net.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { CERT_DIR, perTest, startSipedge } from "../helpers/sipedge.ts";
import { FIXTURE_SCENARIOS, runUac, startUas } from "../helpers/sipp.ts";

const scope = perTest();
const { processes } = scope;

describe("TCP backends", () => {
  it("completes every call over persistent TCP connections to sipp backends", async () => {
    const ports = [await freePort(), await freePort()];
    const uas = ports.map((p) => startUas(processes, p, { transport: "t1" }));
    const sipedge = scope.use(await startSipedge(ports, { backendTransport: "tcp" }));
    await sleep(300);
    expect(await runUac(processes, `127.0.0.1:${sipedge.udp}`, { calls: 30, rate: 30 })).toEqual({
      calls: 30,
      successful: 30,
      failed: 0,
    });
    await sleep(1200);
    for (const u of uas) expect(u.counts().calls).toBeGreaterThan(0);
  });

  it("brings a TCP callee's BYE back to the caller along the route set", async () => {
    const port = await freePort();
    const uas = startUas(processes, port, {
      transport: "t1",
      scenario: join(FIXTURE_SCENARIOS, "uas_reinvite_callee_bye.xml"),
    });
    const sipedge = scope.use(await startSipedge([port], { backendTransport: "tcp" }));
    await sleep(300);
    const client = await StreamClient.connect(sipedge.tcp, false);
    const callId = `tcp-bye-${Date.now()}`;
    const o = { transport: "TCP" as const, localPort: client.localPort, callId };
    client.send(invite("TCP", client.localPort, callId));
    const ok = await client.waitFor((m) => m.kind === "response" && m.status === 200);
    const dialog = dialogFrom(ok);
    // The backend-side entry names, signed, the backend the dialog lives on.
    expect(dialog.routes.at(-1)).toMatch(/;transport=tcp;lr;bk=[\w-]+>$/);
    client.send(inDialog(dialog, "ACK", { ...o, cseq: 1 }));
    client.send(inDialog(dialog, "INVITE", { ...o, cseq: 2, sdp: true }));
    await client.waitFor(
      (m) => m.kind === "response" && m.status === 200 && m.cseq().ok && m.values("cseq")[0] === "2 INVITE",
    );
    client.send(inDialog(dialog, "ACK", { ...o, cseq: 2 }));
    const bye = await client.waitFor((m) => m.kind === "request" && m.method === "BYE");
    client.send(respond(bye, 200, "OK"));
    await sleep(1200);
    expect(uas.counts().successful).toBe(1);
    client.close();
  });

  it("fails over at once when a backend refuses the TCP connection", async () => {
    const [dead, live] = [await freePort(), await freePort()];
    startUas(processes, live, { transport: "t1" });
    const sipedge = scope.use(
      await startSipedge([dead, live], { backendTransport: "tcp", sip: { firstResponseTimeout: "10s" } }),
    );
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      const client = await StreamClient.connect(sipedge.tcp, false);
      const started = Date.now();
      client.send(invite("TCP", client.localPort, `refused-${i}-${Date.now()}`));
      await client.waitFor((m) => m.kind === "response" && m.status === 200);
      expect(Date.now() - started).toBeLessThan(2000);
      client.close();
    }
  });
});

describe("TLS backends (sipp behind stunnel)", () => {
  it("completes every call over TLS to a backend whose certificate it verifies", async () => {
    const [plain, tls] = [await freePort(), await freePort()];
    const uas = startUas(processes, plain, { transport: "t1" });
    const cert = demoCertificate(CERT_DIR);
    startStunnel(processes, tls, plain, cert);
    const sipedge = scope.use(
      await startSipedge([tls], { backendTransport: "tls", sip: { backendTls: { verify: true, ca: cert.cert } } }),
    );
    await sleep(500);
    expect(await runUac(processes, `127.0.0.1:${sipedge.udp}`, { calls: 10, rate: 10 })).toEqual({
      calls: 10,
      successful: 10,
      failed: 0,
    });
    await sleep(1200);
    expect(uas.counts().calls).toBe(10);
  });

  it("refuses a backend certificate it cannot verify, and says 503", async () => {
    const [plain, tls] = [await freePort(), await freePort()];
    startUas(processes, plain, { transport: "t1" });
    startStunnel(processes, tls, plain, demoCertificate(CERT_DIR));
    const sipedge = scope.use(await startSipedge([tls], { backendTransport: "tls" }));
    await sleep(500);
    const client = await StreamClient.connect(sipedge.tcp, false);
    client.send(invite("TCP", client.localPort, `untrusted-${Date.now()}`));
    const res = await client.waitFor((m) => m.kind === "response" && m.status >= 200);
    expect(res.kind === "response" && res.status).toBe(503);
    client.close();
  });
});
