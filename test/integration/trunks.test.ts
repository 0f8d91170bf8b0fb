import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import type { SipResponse } from "../../src/sip/index.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { udpExchange } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { runUac, startUas } from "../helpers/sipp.ts";

// Trunks are told apart by source address (sipp UACs calling from 127.0.0.2
// and 127.0.0.3) and by a verified TLS client certificate (Node's TLS client).
const processes = new Processes();
let out = "";
let admin: number;

function listening(transport: string): number {
  return listeningPort(out, transport);
}

function keepalive(tag: string, transport: "UDP" | "TLS"): string {
  const port = listening(transport.toLowerCase());
  return (
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bK-${tag};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.1>;tag=${tag}\r\nTo: <sip:127.0.0.1:${port}>\r\n` +
    `Call-ID: ${tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
}

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  const uas = await freePort();
  startUas(processes, uas);
  const tls = demoCertificate(CERT_DIR);
  admin = await freePort();
  const config = configFile(
    [
      "io: { threads: 2, pin: false, grace: 1s }",
      "listen:",
      "  - { transport: udp, address: 127.0.0.1, port: 0 }",
      `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${tls.cert}, key: ${tls.key}, ca: ${tls.cert}, clientAuth: request }`,
      "backends:",
      "  - name: core",
      "    members:",
      `      - { name: pbx-a, uri: "sip:127.0.0.1:${uas}" }`,
      "trunks:",
      '  - { name: carrier-a, sources: ["127.0.0.2/32"] }',
      '  - { name: carrier-b, sources: ["127.0.0.3"] }',
      "  - { name: pbx-tls, certNames: [sipedge-demo] }",
      '  - { name: silent, sources: ["192.0.2.0/24"] }',
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ].join("\n"),
  );
  const cli = await startCli(config, "admin API");
  out = cli.out();
  // The backend must be probed up before calls go to it.
  for (let i = 0; i < 60 && !(await metrics()).includes('sipedge_backend_up{pool="core",backend="pbx-a"} 1'); i++) {
    await sleep(100);
  }
});

describe("trunks", () => {
  it("count each trunk's calls, keep-alives, connections and last activity under its own label", async () => {
    const target = `127.0.0.1:${listening("udp")}`;
    const [a, b] = await Promise.all([
      runUac(processes, target, { calls: 10, rate: 10, from: "127.0.0.2" }),
      runUac(processes, target, { calls: 4, rate: 10, from: "127.0.0.3" }),
    ]);
    expect([a.successful, b.successful]).toEqual([10, 4]);
    const answered = await udpExchange(listening("udp"), keepalive("ka-b", "UDP"), 400, "127.0.0.3");
    expect((answered[0] as SipResponse | undefined)?.status).toBe(200);

    // A TLS trunk, known by the verified certificate it presents.
    const socket = connect({
      host: "127.0.0.1",
      port: listening("tls"),
      cert: readFileSync(join(CERT_DIR, "cert.pem")),
      key: readFileSync(join(CERT_DIR, "key.pem")),
      ca: readFileSync(join(CERT_DIR, "cert.pem")),
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    const got = new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
    socket.write(keepalive("ka-tls", "TLS"));
    expect(await got).toMatch(/^SIP\/2\.0 200 /);

    try {
      const text = await metrics();
      expect(value(text, 'sipedge_trunk_calls_total{trunk="carrier-a"}')).toBe(10);
      expect(value(text, 'sipedge_trunk_calls_total{trunk="carrier-b"}')).toBe(4);
      expect(value(text, 'sipedge_trunk_keepalives_total{trunk="carrier-b"}')).toBe(1);
      expect(value(text, 'sipedge_trunk_keepalives_total{trunk="pbx-tls"}')).toBe(1);
      expect(value(text, 'sipedge_trunk_connections{trunk="pbx-tls"}')).toBe(1);
      expect(value(text, 'sipedge_trunk_connections{trunk="carrier-a"}')).toBe(0);
      // Every call ended with its BYE.
      expect(value(text, 'sipedge_trunk_active_calls{trunk="carrier-a"}')).toBe(0);
      expect(value(text, 'sipedge_backend_calls_total{pool="core",backend="pbx-a"}')).toBe(14);
      expect(value(text, 'sipedge_backend_active_calls{pool="core",backend="pbx-a"}')).toBe(0);
      // A trunk that never sent anything is there, at zero.
      expect(value(text, 'sipedge_trunk_requests_total{trunk="silent"}')).toBe(0);
      expect(value(text, 'sipedge_trunk_last_seen_timestamp_seconds{trunk="silent"}')).toBe(0);
      const seen = value(text, 'sipedge_trunk_last_seen_timestamp_seconds{trunk="carrier-a"}');
      expect(Date.now() / 1000 - seen).toBeLessThan(30);

      const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as {
        trunks: { name: string; calls: number; connections: number; lastSeen: string | null }[];
      };
      expect(status.trunks.map((t) => [t.name, t.calls, t.connections, t.lastSeen !== null])).toEqual([
        ["carrier-a", 10, 0, true],
        ["carrier-b", 4, 0, true],
        ["pbx-tls", 0, 1, true],
        ["silent", 0, 0, false],
      ]);
    } finally {
      socket.destroy();
    }
  });
});
