import { createSocket } from "node:dgram";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HeaderId } from "../../src/sip/index.ts";
import { dialogFrom, inDialog, invite, request, respond, sameTransaction } from "../helpers/dialog.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { StreamClient, udpExchange } from "../helpers/sip-client.ts";
import { perTest, startSipedge } from "../helpers/sipedge.ts";
import { FIXTURE_SCENARIOS, startUas } from "../helpers/sipp.ts";

const scope = perTest();
const { processes } = scope;

async function withBackend(scenario: string, sip: Record<string, unknown> = {}) {
  const port = await freePort();
  const uas = startUas(processes, port, { scenario: join(FIXTURE_SCENARIOS, scenario) });
  const sipedge = scope.use(await startSipedge([port], { sip }));
  await sleep(300);
  const client = await StreamClient.connect(sipedge.tcp, false);
  return { uas, client, callId: `${scenario}-${Date.now()}` };
}

const status =
  (n: number, method = "INVITE") =>
  (m: import("../../src/sip/index.ts").SipMessage) =>
    m.kind === "response" && m.status === n && unwrap(m.cseq()).method === method;

describe("dialogs through sipedge (sipp callee, Node TCP caller)", () => {
  it("passes 486 Busy Here up, without failing over, and absorbs the caller's ACK", async () => {
    const { uas, client, callId } = await withBackend("uas_busy.xml");
    client.send(invite("TCP", client.localPort, callId));
    const busy = await client.waitFor(status(486));
    expect(unwrap(busy.to()).params.find("tag") !== undefined).toBe(true);
    client.send(
      sameTransaction("ACK", { transport: "TCP", localPort: client.localPort, callId }, busy.values("to")[0]),
    );
    await sleep(1200);
    // sipp's scenario ends at the ACK, which sipedge sent hop by hop.
    expect(uas.counts().successful).toBe(1);
    expect(scope.current?.worker.proxy.counters.failovers).toBe(0);
    client.close();
  });

  it("cancels a ringing call: 200 for the CANCEL, 487 for the INVITE", async () => {
    const { uas, client, callId } = await withBackend("uas_ring_cancel.xml");
    client.send(invite("TCP", client.localPort, callId));
    await client.waitFor(status(180));
    client.send(sameTransaction("CANCEL", { transport: "TCP", localPort: client.localPort, callId }));
    await client.waitFor(status(200, "CANCEL"));
    const terminated = await client.waitFor(status(487));
    client.send(
      sameTransaction("ACK", { transport: "TCP", localPort: client.localPort, callId }, terminated.values("to")[0]),
    );
    await sleep(1200);
    expect(uas.counts().successful).toBe(1);
    client.close();
  });

  it("ends a call that rings too long at Timer C: CANCEL to the callee, 408 to the caller (RFC 3261 §16.6 step 11)", async () => {
    const { uas, client, callId } = await withBackend("uas_ring_cancel.xml", { timers: { timerC: "1s" } });
    const started = Date.now();
    client.send(invite("TCP", client.localPort, callId));
    await client.waitFor(status(180));
    const timeout = await client.waitFor(status(408), 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    client.send(
      sameTransaction("ACK", { transport: "TCP", localPort: client.localPort, callId }, timeout.values("to")[0]),
    );
    await sleep(1200);
    // The callee saw the CANCEL, answered 487 and got the ACK: its scenario completed.
    expect(uas.counts().successful).toBe(1);
    client.close();
  });

  it("carries a re-INVITE, then the callee's BYE back to the caller's connection through Record-Route", async () => {
    const { uas, client, callId } = await withBackend("uas_reinvite_callee_bye.xml");
    const o = { transport: "TCP" as const, localPort: client.localPort, callId };
    client.send(invite("TCP", client.localPort, callId));
    const ok = await client.waitFor(status(200));
    const dialog = dialogFrom(ok);
    client.send(inDialog(dialog, "ACK", { ...o, cseq: 1 }));
    client.send(inDialog(dialog, "INVITE", { ...o, cseq: 2, sdp: true }));
    await client.waitFor((m) => m.kind === "response" && m.status === 200 && unwrap(m.cseq()).seq === 2);
    client.send(inDialog(dialog, "ACK", { ...o, cseq: 2 }));
    const bye = await client.waitFor((m) => m.kind === "request" && m.method === "BYE");
    // It came through sipedge: our two Route entries were popped, sipedge's Via is on top.
    expect(unwrap(bye.addresses(HeaderId.Route))).toEqual([]);
    expect(unwrap(bye.via()).length).toBe(2);
    client.send(respond(bye, 200, "OK"));
    await sleep(1200);
    expect(uas.counts().successful).toBe(1);
    client.close();
  });
});

describe("RFC 2543 peers (no magic cookie in the branch)", () => {
  it("absorbs a retransmitted INVITE by the fallback key (RFC 3261 §17.2.3)", async () => {
    const { uas, client, callId } = await withBackend("uas_busy.xml");
    client.close();
    const sipedge = scope.current as NonNullable<typeof scope.current>;
    const socket = createSocket("udp4");
    const got: string[] = [];
    socket.on("message", (m) => got.push(m.toString("latin1").split("\r\n")[0] ?? ""));
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    const port = socket.address().port;
    const head = (method: string, to: string) =>
      `${method} sip:service@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port}\r\nFrom: <sip:old@127.0.0.1>\r\n` +
      `To: ${to}\r\nCall-ID: ${callId}\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`;
    const inviteBytes = head("INVITE", "<sip:service@127.0.0.1>");
    socket.send(inviteBytes, sipedge.udp, "127.0.0.1");
    await sleep(100);
    socket.send(inviteBytes, sipedge.udp, "127.0.0.1"); // a retransmission: absorbed
    for (let i = 0; i < 50 && !got.some((l) => l.startsWith("SIP/2.0 486")); i++) await sleep(50);
    expect(got.filter((l) => l.startsWith("SIP/2.0 486")).length).toBeGreaterThanOrEqual(1);
    socket.send(head("ACK", "<sip:service@127.0.0.1>;tag=x"), sipedge.udp, "127.0.0.1");
    await sleep(1200);
    expect(uas.counts()).toMatchObject({ calls: 1, successful: 1 });
    socket.close();
  });
});

describe("REGISTER", () => {
  it("sends every registration of one AoR to the same registrar", async () => {
    const ports = [await freePort(), await freePort()];
    const registrars = ports.map((p) =>
      startUas(processes, p, { scenario: join(FIXTURE_SCENARIOS, "uas_register.xml") }),
    );
    const sipedge = scope.use(await startSipedge(ports, { algorithm: "round-robin" }));
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      const callId = `reg-${i}-${Date.now()}`;
      const [res] = await udpExchange(
        sipedge.udp,
        request({
          method: "REGISTER",
          uri: "sip:127.0.0.1",
          transport: "UDP",
          localPort: 5999,
          callId,
          cseq: 1,
          branch: callId,
          to: "<sip:bob@example.com>",
          from: "<sip:bob@example.com>",
          extra: ["Expires: 300"],
        }),
        300,
      );
      expect(res?.kind === "response" && res.status).toBe(200);
    }
    await sleep(1200);
    expect(registrars.map((r) => r.counts().calls).sort()).toEqual([0, 6]);
  });
});
