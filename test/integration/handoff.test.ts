import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { HeaderId, type SipResponse } from "../../src/sip/index.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { dialogFrom, invite, request, respond } from "../helpers/dialog.ts";
import { freePort } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { StreamClient, UdpPeer } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";

// Two IO workers. The backend is played by a UDP socket here because the test
// needs what no sipp scenario does: send the callee's BYE to the *other*
// worker's backend-side port, as a backend behind a port-rewriting NAT would.
let out = "";
let admin: number;
let backend: UdpPeer;

beforeAll(async () => {
  // Answers probes: one that does not is taken out 1.5 s after the start (health's defaults), and
  // a loaded CI machine took that long to get to the INVITE, which then never came.
  backend = await UdpPeer.bind(true);
  const tls = demoCertificate(CERT_DIR);
  admin = await freePort();
  const config = configFile(
    [
      "io: { threads: 2, pin: false }",
      "listen:",
      `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${tls.cert}, key: ${tls.key} }`,
      "backends:",
      "  - name: core",
      "    members:",
      `      - { name: b, uri: "sip:127.0.0.1:${backend.port}" }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ].join("\n"),
  );
  const cli = await startCli(config, "admin API");
  out = cli.out();
});

afterAll(() => {
  backend?.close();
});

describe("hand-off between IO workers", () => {
  it("delivers a backend's request for a client flow owned by the other worker, and its response back", async () => {
    const tlsPort = listeningPort(out, "tls");
    const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as {
      workers: { index: number; backendPort: number }[];
    };
    const client = await StreamClient.connect(tlsPort, true);
    try {
      client.send(invite("TLS", client.localPort, "handoff-1"));
      const inv = await backend.take((m) => m.kind === "request" && m.method === "INVITE");
      const owner = status.workers.find((w) => w.backendPort === inv.port);
      const other = status.workers.find((w) => w.backendPort !== inv.port);
      expect(owner).toBeDefined();
      expect(other).toBeDefined();

      // The callee answers, from where the INVITE came, with the Record-Route it got.
      const rr = unwrap(inv.msg.addresses(HeaderId.RecordRoute)).map((r) =>
        inv.msg.buf.toString("latin1", r.start, r.end),
      );
      const ok = respond(inv.msg, 200, "OK")
        .replace(/^(To: .*)$/m, "$1;tag=a-handoff-1")
        .replace(
          "Content-Length: 0",
          `${rr.map((r) => `Record-Route: ${r}`).join("\r\n")}\r\nContact: <sip:callee@127.0.0.1:${backend.port}>\r\nContent-Length: 0`,
        );
      backend.send(ok, inv.port);
      const answered = (await client.waitFor((m) => m.kind === "response" && m.status === 200)) as SipResponse;
      expect(dialogFrom(answered).routes).toHaveLength(2);

      // The callee hangs up, but to the other worker's port.
      const bye = request({
        method: "BYE",
        uri: `sip:alice@127.0.0.1:${client.localPort};transport=tls`,
        transport: "UDP",
        localPort: backend.port,
        callId: "handoff-1",
        cseq: 1,
        branch: "handoff-bye",
        from: "<sip:service@127.0.0.1>",
        to: inv.msg.values("from")[0] ?? "",
        routes: rr,
      });
      backend.send(bye, other?.backendPort ?? 0);

      const got = await client.waitFor((m) => m.kind === "request" && m.method === "BYE");
      client.send(respond(got, 200, "OK"));
      const done = await backend.take(
        (m) => m.kind === "response" && m.status === 200 && (m.values("cseq")[0] ?? "").endsWith("BYE"),
      );
      // Answered by the flow's owner, from its own backend-side port.
      expect(done.port).toBe(owner?.backendPort);
      const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
      expect(metrics).toMatch(/^sipedge_handoffs_total\{result="delivered"\} 1$/m);
      expect(metrics).toMatch(/^sipedge_handoffs_total\{result="refused"\} 0$/m);
    } finally {
      client.close();
    }
  });
});
