import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

async function start(threads: number, limits: string): Promise<{ tcp: number; tls: number; admin: number }> {
  const cert = demoCertificate(CERT_DIR);
  const admin = await freePort();
  const cli = await startCli(
    configFile(
      [
        `io: { threads: ${threads}, pin: false }`,
        "listen:",
        "  - { transport: tcp, address: 127.0.0.1, port: 0 }",
        `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${cert.cert}, key: ${cert.key} }`,
        "backends:",
        "  - name: core",
        "    members:",
        '      - { name: none, uri: "sip:127.0.0.1:9" }',
        `admin: { listen: "127.0.0.1:${admin}" }`,
        `limits: ${limits}`,
      ].join("\n"),
    ),
    "admin API",
  );
  return { tcp: listeningPort(cli.out(), "tcp"), tls: listeningPort(cli.out(), "tls"), admin };
}

/** A raw TCP connection, and a promise of how long (ms) until the far end closes it. */
async function rawConnect(port: number): Promise<{ socket: Socket; closedAfter: Promise<number> }> {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const opened = Date.now();
  socket.on("error", () => {});
  const closedAfter = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - opened)));
  return { socket, closedAfter };
}

async function metric(admin: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? Number.NaN);
}

describe("connection limits", () => {
  it("closes a connection beyond limits.maxConnectionsPerIp at once, over every worker, and admits one when another leaves", async () => {
    const { tls, admin } = await start(2, "{ maxConnectionsPerIp: 4 }");
    const clients = await Promise.all(Array.from({ length: 4 }, () => StreamClient.connect(tls, true)));
    await expect(StreamClient.connect(tls, true)).rejects.toThrow();
    expect(await metric(admin, /^sipedge_connections_refused_total\{reason="per_ip"\} (\d+)/m)).toBe(1);
    clients[0]?.close();
    await sleep(200);
    const again = await StreamClient.connect(tls, true);
    for (const c of [...clients.slice(1), again]) c.close();
  });

  it("refuses handshakes beyond limits.maxHandshakes fast, and ends a handshake that never comes at limits.handshakeTimeout", async () => {
    const { tls, admin } = await start(1, "{ maxHandshakes: 2, handshakeTimeout: 1s }");
    // Connected, but never a ClientHello: each holds a handshake slot.
    const silent = [await rawConnect(tls), await rawConnect(tls)];
    await sleep(100);
    expect(await metric(admin, /^sipedge_tls_handshakes_in_progress\{worker="0"\} (\d+)/m)).toBe(2);
    const third = await rawConnect(tls);
    expect(await third.closedAfter).toBeLessThan(500);
    expect(await metric(admin, /^sipedge_connections_refused_total\{reason="handshakes"\} (\d+)/m)).toBe(1);
    for (const s of silent) {
      const after = await s.closedAfter;
      expect(after).toBeGreaterThanOrEqual(900);
      expect(after).toBeLessThan(3000);
    }
    // Slots free again: a real TLS client gets in.
    const client = await StreamClient.connect(tls, true);
    client.close();
  });

  it("closes a connection whose message trickles in slower than limits.messageTimeout (slowloris)", async () => {
    const { tcp, admin } = await start(1, "{ messageTimeout: 1s }");
    const slow = await rawConnect(tcp);
    const message = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-slow\r\n";
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < message.length && !slow.socket.destroyed) slow.socket.write(message[sent++] as string);
    }, 100);
    const after = await slow.closedAfter;
    clearInterval(drip);
    expect(after).toBeGreaterThanOrEqual(1000);
    expect(after).toBeLessThan(2500);
    expect(sent).toBeLessThan(message.length);
    expect(await metric(admin, /^sipedge_slow_senders_closed_total (\d+)/m)).toBe(1);
  });
});
