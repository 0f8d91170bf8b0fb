import { createSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseMessage, type SipMessage } from "../../src/sip/index.ts";
import { request, respond } from "../helpers/dialog.ts";
import { sleep } from "../helpers/net.ts";
import { StreamClient, UdpPeer, udpExchange } from "../helpers/sip-client.ts";
import { type Running, startSipedge } from "../helpers/sipedge.ts";
import { connectWs, nextMessage } from "../helpers/ws.ts";

// Hostile messages from a stranger, over every client transport, against a
// sipedge with one configured backend: nothing may reach any other address
// (RFC 3261 §16.12 describes what a proxy follows; an edge follows only its
// own signed Record-Route and its pool), and nothing may throw.

/** A UDP sink and a TCP sink on loopback: whatever arrives at either is a stray send from sipedge. */
class Sinks {
  datagrams = 0;
  connections = 0;
  readonly #udp = createSocket("udp4");
  readonly #tcp: Server = createServer((s) => {
    this.connections++;
    s.on("error", () => {});
    s.destroy();
  });

  async start(): Promise<{ udp: number; tcp: number }> {
    this.#udp.on("message", () => this.datagrams++);
    await new Promise<void>((r) => this.#udp.bind(0, "127.0.0.1", () => r()));
    await new Promise<void>((r) => this.#tcp.listen(0, "127.0.0.1", () => r()));
    const tcp = this.#tcp.address();
    return { udp: this.#udp.address().port, tcp: typeof tcp === "object" && tcp !== null ? tcp.port : 0 };
  }

  get strays(): number {
    return this.datagrams + this.connections;
  }

  close(): void {
    this.#udp.close();
    this.#tcp.close();
  }
}

let sinks: Sinks;
let sink: { udp: number; tcp: number };
let backend: UdpPeer;
let sipedge: Running;

beforeAll(async () => {
  sinks = new Sinks();
  sink = await sinks.start();
  backend = await UdpPeer.bind(true);
  // T1 of 50 ms: every transaction's timers (64×T1) run out within seconds.
  sipedge = await startSipedge([backend.port], {
    wss: true,
    sip: { timers: { t1: "50ms", t2: "400ms", t4: "500ms" } },
  });
});
afterAll(async () => {
  await sipedge.worker.close();
  backend.close();
  sinks.close();
});
afterEach(async () => {
  await sleep(300); // anything sipedge would send late has arrived
  expect(sinks.strays, "datagrams or connections sipedge made to an address no one configured").toBe(0);
});

let seq = 0;
function hostile(o: {
  method?: string;
  uri?: string;
  routes?: string[];
  transport?: "UDP" | "TCP" | "TLS";
  toTag?: boolean;
  text?: string;
  first?: string;
}): string {
  const callId = `edge-${++seq}`;
  const text = request({
    method: o.method ?? "MESSAGE",
    uri: o.uri ?? "sip:service@127.0.0.1",
    transport: o.transport ?? "UDP",
    localPort: 5999,
    callId,
    cseq: 1,
    branch: callId,
    routes: o.routes ?? [],
    ...(o.toTag === true ? { to: "<sip:service@127.0.0.1>;tag=victim" } : {}),
    ...(o.text === undefined ? {} : { text: o.text }),
  });
  // Some UAs (JsSIP with use_preloaded_route) put the Route above the Via.
  if (o.first === undefined) return text;
  const [start, ...rest] = text.split("\r\n");
  return [start, o.first, ...rest].join("\r\n");
}

/** Connects from `from` to 127.0.0.1:port; whether the peer closed it within ms. */
function closedWithin(port: number, from: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress: from });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    const closed = () => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.on("close", closed);
    socket.on("error", () => {});
  });
}

function statusOf(messages: readonly SipMessage[]): number[] {
  return messages.flatMap((m) => (m.kind === "response" ? [m.status] : []));
}

async function overStream(tls: boolean, message: string): Promise<number[]> {
  const client = await StreamClient.connect(tls ? sipedge.tls : sipedge.tcp, tls);
  try {
    client.send(message);
    await client.waitFor((m) => m.kind === "response" && m.status >= 200, 3000).catch(() => undefined);
    return statusOf(client.messages);
  } finally {
    client.close();
  }
}

describe("an open relay it is not", () => {
  it("refuses a client's Route naming another host, over UDP, TCP, TLS and WSS (403), and sends nothing there", async () => {
    const udp = await udpExchange(sipedge.udp, hostile({ routes: [`<sip:127.0.0.1:${sink.udp};lr>`], text: "x" }));
    expect(statusOf(udp)).toEqual([403]);
    const route = `<sip:127.0.0.1:${sink.tcp};transport=tcp;lr>`;
    expect(await overStream(false, hostile({ transport: "TCP", routes: [route], text: "FLUSHALL" }))).toEqual([403]);
    expect(await overStream(true, hostile({ transport: "TLS", routes: [route], text: "FLUSHALL" }))).toEqual([403]);
    const ws = await connectWs(sipedge.wss, ["sip"]);
    try {
      ws.send(hostile({ transport: "TLS", routes: [route], text: "FLUSHALL" }));
      const answer = parseMessage(await nextMessage(ws, 3000));
      expect(answer.ok && answer.value.kind === "response" && answer.value.status).toBe(403);
    } finally {
      ws.close();
    }
  });

  it("never follows an in-dialog Request-URI: an ACK aimed at a TCP service goes nowhere", async () => {
    const ack = hostile({
      method: "ACK",
      toTag: true,
      routes: [`<sip:127.0.0.1:${sipedge.udp};lr>`],
      uri: `sip:x@127.0.0.1:${sink.tcp};transport=tcp`,
      text: "FLUSHALL\r\n",
    });
    await udpExchange(sipedge.udp, ack);
    const bye = hostile({
      method: "BYE",
      toTag: true,
      routes: [`<sip:127.0.0.1:${sipedge.udp};lr>`],
      uri: `sip:x@127.0.0.1:${sink.udp}`,
    });
    expect(statusOf(await udpExchange(sipedge.udp, bye))).toEqual([403]);
  });

  it("relays nothing a stranger sends to the backend side", async () => {
    // Our backend-side port, as the backend sees it in the Via of a forwarded request.
    const probe = hostile({ method: "MESSAGE", uri: "sip:service@127.0.0.1" });
    udpExchange(sipedge.udp, probe, 100);
    const fwd = await backend.take((m) => m.kind === "request" && m.method === "MESSAGE");
    backend.send(respond(fwd.msg, 200, "OK"), fwd.port);
    const port = Number(/:(\d+);branch/.exec(fwd.msg.values("via")[0] ?? "")?.[1]);
    expect(port).toBeGreaterThan(0);
    // From 127.0.0.2: loopback, but not the configured member's address.
    const got = await udpExchange(port, hostile({ uri: `sip:x@127.0.0.1:${sink.udp}` }), 400, "127.0.0.2");
    expect(got).toEqual([]);
    // Its TCP listener: a stranger's connection is closed at accept, a member's is kept. (On the same
    // port where TCP had it free: not always, with other test files' connections beside this one.)
    const tcp = sipedge.worker.backendTcpPort;
    expect(await closedWithin(tcp, "127.0.0.2", 1000)).toBe(true);
    expect(await closedWithin(tcp, "127.0.0.1", 1000)).toBe(false);
  });
});

describe("one message never takes a worker down", () => {
  it("forwards an INVITE whose first header is a Route naming sipedge (it threw: overlapping edits)", async () => {
    const invite = hostile({ method: "INVITE", first: `Route: <sip:127.0.0.1:${sipedge.udp};lr>` });
    const answers = await udpExchange(sipedge.udp, invite, 300);
    expect(statusOf(answers)).toContain(100);
    const fwd = await backend.take((m) => m.kind === "request" && m.method === "INVITE");
    expect(fwd.msg.values("route")).toEqual([]);
    backend.send(respond(fwd.msg, 486, "Busy Here"), fwd.port);
  });

  it("refuses a Route with port 0, which names no one (dgram.send threw on it)", async () => {
    const answers = await udpExchange(sipedge.udp, hostile({ routes: ["<sip:127.0.0.1:0;lr>"] }));
    expect(statusOf(answers)).toEqual([403]);
  });

  it("still answers after all of the above, and every transaction the hostile traffic started has ended", async () => {
    const answers = await udpExchange(sipedge.udp, hostile({ method: "OPTIONS", uri: `sip:127.0.0.1:${sipedge.udp}` }));
    expect(statusOf(answers)).toEqual([200]);
    // A client INVITE transaction answered non-2xx lingers for Timer D, 32 s over UDP whatever T1 (RFC 3261 §17.1.1.2).
    const deadline = Date.now() + 40_000;
    const { proxy } = sipedge.worker;
    while (Date.now() < deadline && proxy.transactions.server + proxy.transactions.client > 0) await sleep(200);
    expect(sipedge.worker.proxy.transactions).toEqual({ server: 0, client: 0 });
  });
});
