import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findParam, HeaderId } from "../../src/sip/index.ts";
import { dialogFrom, inDialog, invite } from "../helpers/dialog.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { StreamClient, udpExchange } from "../helpers/sip-client.ts";
import { type Running, startSipedge } from "../helpers/sipedge.ts";
import { runUac, startUas } from "../helpers/sipp.ts";

const processes = new Processes();
let sipedge: Running;
let backends: { port: number; uas: ReturnType<typeof startUas> }[];

beforeAll(async () => {
  const ports = [await freePort(), await freePort()];
  backends = ports.map((port) => ({ port, uas: startUas(processes, port) }));
  sipedge = await startSipedge(ports);
  await sleep(300);
});

afterAll(async () => {
  await sipedge?.worker.close();
});

describe("calls through sipedge to sipp backends", () => {
  it("completes every call from a sipp UAC over UDP and spreads them over both backends", async () => {
    const counts = await runUac(processes, `127.0.0.1:${sipedge.udp}`, { calls: 30, rate: 30 });
    expect(counts).toEqual({ calls: 30, successful: 30, failed: 0 });
    await sleep(1200);
    const perBackend = backends.map((b) => b.uas.counts().calls);
    expect(perBackend.reduce((a, b) => a + b, 0)).toBe(30);
    expect(Math.min(...perBackend)).toBeGreaterThan(0);
  });

  it("completes every call from a sipp UAC over TCP", async () => {
    const counts = await runUac(processes, `127.0.0.1:${sipedge.tcp}`, { calls: 20, rate: 20, transport: "t1" });
    expect(counts).toEqual({ calls: 20, successful: 20, failed: 0 });
  });

  for (const transport of ["TCP", "TLS"] as const) {
    it(`carries INVITE, ACK and BYE for a client on ${transport} (Node's ${transport} client) along the Record-Route`, async () => {
      const client = await StreamClient.connect(transport === "TLS" ? sipedge.tls : sipedge.tcp, transport === "TLS");
      const callId = `${transport}-${Date.now()}`;
      client.send(invite(transport, client.localPort, callId));
      const trying = await client.waitFor((m) => m.kind === "response" && m.status === 100);
      expect(trying.kind === "response" && trying.status).toBe(100);
      const ok = await client.waitFor((m) => m.kind === "response" && m.status === 200);
      // Two Record-Route entries: one per side of sipedge, the client side on this connection.
      const rr = unwrap(ok.addresses(HeaderId.RecordRoute));
      expect(rr.length).toBe(2);
      expect(rr[1]?.value.uri).toMatch(
        new RegExp(
          `^sip:127\\.0\\.0\\.1:${transport === "TLS" ? sipedge.tls : sipedge.tcp};transport=${transport.toLowerCase()};lr`,
        ),
      );
      // The client's top Via got received and rport (RFC 3581).
      const via = unwrap(ok.via())[0];
      expect([via?.received, via?.rport]).toEqual(["127.0.0.1", client.localPort]);
      expect(findParam(unwrap(ok.to()).params, "tag")).toBeDefined();
      const dialog = dialogFrom(ok);
      const o = { transport, localPort: client.localPort, callId };
      client.send(inDialog(dialog, "ACK", { ...o, cseq: 1 }));
      client.send(inDialog(dialog, "BYE", { ...o, cseq: 2 }));
      const byeOk = await client.waitFor(
        (m) => m.kind === "response" && m.status === 200 && unwrap(m.cseq()).method === "BYE",
      );
      expect(unwrap(byeOk.callId())).toBe(callId);
      client.close();
    });
  }

  it("answers OPTIONS addressed to itself", async () => {
    const [res] = await udpExchange(
      sipedge.udp,
      `OPTIONS sip:127.0.0.1:${sipedge.udp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\n` +
        "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    expect(res?.kind === "response" && res.status).toBe(200);
  });

  it("answers 483 when Max-Forwards is spent", async () => {
    const [res] = await udpExchange(
      sipedge.udp,
      "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKmf0\r\nMax-Forwards: 0\r\n" +
        "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: mf-0\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    );
    expect(res?.kind === "response" && res.status).toBe(483);
  });

  it("absorbs an ACK for its own stateless answer instead of sending it back to itself", async () => {
    const before = sipedge.worker.proxy.counters.received;
    // The ACK a UAC sends for a 503 sipedge gave before any transaction: addressed to sipedge, no Route.
    await udpExchange(
      sipedge.udp,
      `ACK sip:service@127.0.0.1:${sipedge.udp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\n` +
        "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:service@127.0.0.1>;tag=2\r\nCall-ID: stray-ack\r\n" +
        "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
      300,
    );
    expect(sipedge.worker.proxy.counters.received - before).toBe(1);
  });
});
