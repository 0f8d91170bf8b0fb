import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, onePoolConfig, startCli } from "../helpers/cli.ts";
import { metricByLabel, scrape } from "../helpers/metrics.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { holdOpen } from "../helpers/s-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";

// Session resumption on whichever IO worker the kernel picks (issue 18): two workers share one TLS port
// (SO_REUSEPORT), and the system's openssl resumes on one a session the other issued.
const processes = new Processes();
let tls = 0;
let admin = 0;

beforeAll(async () => {
  const cert = demoCertificate(CERT_DIR);
  admin = await freePort();
  const cli = await startCli(
    configFile(
      onePoolConfig({
        io: "{ threads: 2, pin: false, grace: 1s }",
        listen: [`{ transport: tls, address: 127.0.0.1, port: 0, cert: ${cert.cert}, key: ${cert.key} }`],
        members: [`{ name: b0, uri: "sip:127.0.0.1:${await freePort()}" }`],
        admin,
        lines: ["limits: { maxConnectionsPerIp: 1000 }"],
      }),
    ),
    "admin API",
  );
  tls = listeningPort(cli.out(), "tls");
  expect(tls).toBeGreaterThan(0);
}, 30_000);

/** The IO worker holding the one open client connection (sipedge_connections{worker}), once exactly one does. */
async function workerHolding(): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const open = [...metricByLabel(await scrape(admin), "sipedge_connections", "worker")].filter(([, n]) => n > 0);
    if (open.length === 1 && open[0]?.[1] === 1) return open[0][0];
    await sleep(50);
  }
  throw new Error("no single worker holds the connection");
}

/** Until no worker holds a connection: the next one is then the only one. */
async function allClosed(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = [...metricByLabel(await scrape(admin), "sipedge_connections", "worker").values()];
    if (open.every((n) => n === 0)) return;
    await sleep(50);
  }
  throw new Error("connections still open");
}

describe.each(["-tls1_2", "-tls1_3"])("openssl s_client %s", (version) => {
  it("resumes a session on the IO worker that did not issue it, and it is counted as resumed", async () => {
    const sessionFile = join(mkdtempSync(join(tmpdir(), "sipedge-session-")), "session.pem");
    const resumedBefore = metricByLabel(await scrape(admin), "sipedge_tls_handshakes_by_session_total", "session");
    const first = await holdOpen(processes, tls, [version, "-sess_out", sessionFile]);
    expect(first.reused, first.out()).toBe(false);
    const issuer = await workerHolding();
    // A TLS 1.3 ticket comes after the handshake: s_client writes the file when it does.
    const written = () => existsSync(sessionFile) && readFileSync(sessionFile, "utf8").includes("END SSL SESSION");
    for (let i = 0; i < 100 && !written(); i++) await sleep(50);
    await first.end();
    // SO_REUSEPORT spreads connections by their source port: a few tries land on the other worker.
    let landed: { worker: string; reused: boolean; out: string } | undefined;
    for (let i = 0; i < 30 && landed === undefined; i++) {
      await allClosed();
      const next = await holdOpen(processes, tls, [version, "-sess_in", sessionFile]);
      const worker = await workerHolding();
      if (worker !== issuer) landed = { worker, reused: next.reused, out: next.out() };
      await next.end();
    }
    expect(landed, "no connection reached the other worker in 30 tries").toBeDefined();
    expect(landed?.reused, landed?.out).toBe(true);
    const resumed = metricByLabel(await scrape(admin), "sipedge_tls_handshakes_by_session_total", "session");
    expect(resumed.get("resumed") ?? 0).toBeGreaterThan(resumedBefore.get("resumed") ?? 0);
    expect(resumed.get("full") ?? 0).toBeGreaterThan(resumedBefore.get("full") ?? 0);
  });
});
