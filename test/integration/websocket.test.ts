import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { get } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { HeaderId, parseMessage, type SipMessage, type SipResponse } from "../../src/sip/index.ts";
import { listeningPort, registrarConfig, startCli } from "../helpers/cli.ts";
import { respond } from "../helpers/dialog.ts";
import { JsSipUa } from "../helpers/jssip.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { UdpPeer } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { connectWs, nextMessage } from "../helpers/ws.ts";

const processes = new Processes();
const tls = demoCertificate(CERT_DIR);
const ca = readFileSync(tls.cert);
let sipedge: { out: string; admin: number };
let registrar: UdpPeer;
let wssPort: number;

beforeAll(async () => {
  // Health probes get their answer; the rest is for the test to read.
  registrar = await UdpPeer.bind(true);
  const admin = await freePort();
  const cli = await startCli(
    registrarConfig(
      [
        "{ transport: udp, address: 127.0.0.1, port: 0 }",
        `{ transport: wss, address: 127.0.0.1, port: 0, cert: ${tls.cert}, key: ${tls.key} }`,
      ],
      registrar.port,
      admin,
    ),
    "admin API",
  );
  sipedge = { out: cli.out(), admin };
  wssPort = listeningPort(sipedge.out, "wss");
  await sleep(2500); // probed up
});
afterAll(() => {
  registrar.close();
});

/** The registrar answers a REGISTER 200 with the UA's Contact (JsSIP looks for its own) and keeps the Path. */
async function acceptRegister(): Promise<{ path: string; contact: string; reg: SipMessage }> {
  const reg = await registrar.take((m) => m.kind === "request" && m.method === "REGISTER", 10_000);
  const [path] = unwrap(reg.msg.addresses(HeaderId.Path)).map((p) => reg.msg.buf.toString("latin1", p.start, p.end));
  const [contact] = unwrap(reg.msg.addresses(HeaderId.Contact)).map((c) => c.value.uri);
  registrar.send(respond(reg.msg, 200, "OK", [`Contact: <${contact}>;expires=300`]), reg.port);
  return { path: path as string, contact: contact as string, reg: reg.msg };
}

/** The registrar sends a MESSAGE to the AoR's contact through the Path. */
function messageThrough(path: string, contact: string, callId: string): void {
  registrar.sendThroughPath(path, { method: "MESSAGE", uri: contact, callId, text: `hello ${callId}` });
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${sipedge.admin}/metrics`)).text();
}

async function finalFor(callId: string): Promise<number> {
  const answer = await registrar.take(
    (m) => m.kind === "response" && m.values("call-id")[0] === callId && (m as SipResponse).status >= 200,
  );
  return (answer.msg as SipResponse).status;
}

describe("SIP over secure WebSocket (RFC 7118) with a JsSIP UA", () => {
  it("registers JsSIP through sipedge with an outbound Path, and the registrar's MESSAGE through it reaches the UA", async () => {
    const ua = JsSipUa.start(processes, wssPort, "sip:alice@example.test", randomUUID(), tls.cert);
    const { path, contact, reg } = await acceptRegister();
    // RFC 7118 §5.4: the UA's own Via names WSS; ours sits above it.
    expect(unwrap(reg.via()).map((v) => v.transport)).toEqual(["UDP", "WSS"]);
    expect(path).toMatch(/;lr;fl=[A-Za-z0-9_-]{32};ob>$/);
    // RFC 5626 §5.4: JsSIP registers with +sip.instance and reg-id, so it is told the keep-alive interval.
    expect((await ua.take("registered")).flowTimer).toBe("120");

    expect(await metrics()).toMatch(/^sipedge_flows\{transport="wss"\} [1-9]/m);

    messageThrough(path, contact, "to-alice");
    expect((await ua.take("message")).callId).toBe("to-alice");
    expect(await finalFor("to-alice")).toBe(200);
  });

  it("carries the UA's MESSAGE to the backend with a Content-Length and the backend's 200 back", async () => {
    const ua = JsSipUa.start(processes, wssPort, "sip:bob@example.test", randomUUID(), tls.cert);
    await acceptRegister();
    await ua.take("registered");
    ua.send({ cmd: "message", to: "sip:carol@example.test", body: "hello carol" });
    const got = await registrar.take((m) => m.kind === "request" && m.method === "MESSAGE", 10_000);
    expect(got.msg.body.toString()).toBe("hello carol");
    expect(got.msg.values("content-length")).toEqual(["11"]);
    registrar.send(respond(got.msg, 200, "OK"), got.port);
    expect((await ua.take("sent")).status).toBe(200);
  });

  it("delivers a MESSAGE for a dropped connection on the connection the UA re-registered over", async () => {
    const instance = randomUUID();
    const first = JsSipUa.start(processes, wssPort, "sip:dave@example.test", instance, tls.cert);
    const before = await acceptRegister();
    await first.take("registered");
    // The process dies: its connection drops without an un-REGISTER.
    await first.kill();
    const second = JsSipUa.start(processes, wssPort, "sip:dave@example.test", instance, tls.cert);
    const after = await acceptRegister();
    await second.take("registered");
    expect(after.path).not.toBe(before.path);
    await sleep(300); // the binding reaches the other worker as a message between threads
    // The registrar routes by the binding it now has, through the Path it stored first: only the old flow token.
    messageThrough(before.path, after.contact, "to-dave");
    expect((await second.take("message")).callId).toBe("to-dave");
    expect(await finalFor("to-dave")).toBe(200);
    expect(await metrics()).toMatch(/^sipedge_endpoint_rebinds_total [1-9]/m);
  });
});

describe("the WSS listener", () => {
  it("refuses an upgrade that does not offer the sip subprotocol, and plain HTTPS", async () => {
    const refused = new WebSocket(`wss://127.0.0.1:${wssPort}`, ["chat"], { ca });
    const status = await new Promise<number | undefined>((resolve) => {
      refused.once("unexpected-response", (_req, res) => resolve(res.statusCode));
      refused.once("open", () => resolve(undefined));
      refused.once("error", () => {});
    });
    expect(status).toBe(400);
    const plain = await new Promise<number | undefined>((resolve, reject) =>
      get(`https://127.0.0.1:${wssPort}/`, { ca }, (res) => resolve(res.statusCode)).on("error", reject),
    );
    expect(plain).toBe(426);
  });

  it("answers a CRLF ping with a pong, a malformed message with 400, and carries on", async () => {
    const ws = await connectWs(wssPort, ["sip"], ca);
    expect(ws.protocol).toBe("sip");
    const pong = nextMessage(ws);
    ws.send("\r\n\r\n");
    expect((await pong).toString()).toBe("\r\n");

    const bad = nextMessage(ws);
    // No Call-ID: RFC 3261 §8.1.1 makes it mandatory.
    ws.send(
      "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKbad\r\nMax-Forwards: 70\r\n" +
        "From: <sip:a@example.test>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCSeq: 1 OPTIONS\r\n\r\n",
    );
    expect(unwrap(parseMessage(await bad))).toMatchObject({ kind: "response", status: 400 });

    const ok = nextMessage(ws);
    ws.send(
      `OPTIONS sip:127.0.0.1:${wssPort};transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKok\r\n` +
        "Max-Forwards: 70\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: ws-ok\r\nCSeq: 2 OPTIONS\r\n\r\n",
    );
    expect(unwrap(parseMessage(await ok))).toMatchObject({ kind: "response", status: 200 });
    ws.close();

    expect(await metrics()).toMatch(/^sipedge_sip_requests_total\{method="OPTIONS",transport="wss"\} [1-9]/m);
  });
});
