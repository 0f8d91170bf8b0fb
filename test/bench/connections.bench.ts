/**
 * `npm run bench:connections`: what an idle client TLS connection costs.
 * BENCH_CONNECTIONS (4 000) TLS connections are opened from this process,
 * 100 at a time, first to sipedge (one IO worker, a TLS listener, a budget
 * that holds them) and then to a bare Node TLS server
 * (test/fixtures/storm/bare-tls-server.ts); for each, the growth of the
 * server process's RSS once all are up and idle, divided by their number.
 * The figure is what src/config/budget.ts's CONNECTION_COST should be.
 * Bounded: a fixed number of connections, each with a 10 s deadline.
 */
import type { ChildProcess } from "node:child_process";
import { connect, type TLSSocket } from "node:tls";
import { CONNECTION_COST } from "../../src/config/budget.ts";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { MiB, rssOf } from "../helpers/storm.ts";

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 4000);
const processes = new Processes();

/** Opens `count` TLS connections to port, 100 at a time; resolves with those that came up. */
async function open(port: number, count: number): Promise<TLSSocket[]> {
  const up: TLSSocket[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from(
      { length: Math.min(100, count - i) },
      () =>
        new Promise<void>((resolve) => {
          const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.2" });
          const deadline = setTimeout(() => resolve(), 10_000);
          s.on("error", () => resolve());
          s.once("secureConnect", () => {
            clearTimeout(deadline);
            up.push(s);
            resolve();
          });
        }),
    );
    await Promise.all(batch);
  }
  return up;
}

/** RSS growth per connection of `server` (pid) once `count` idle connections to `port` are up. */
async function costPerConnection(pid: number, port: number): Promise<{ perConnection: number; up: number }> {
  await sleep(1000);
  const before = rssOf(pid);
  const sockets = await open(port, COUNT);
  await sleep(2000); // settled: handshake garbage collected
  const after = rssOf(pid);
  for (const s of sockets) s.destroy();
  return { perConnection: (after - before) / Math.max(1, sockets.length), up: sockets.length };
}

async function sipedgeFigure(cert: { cert: string; key: string }): Promise<{ perConnection: number; up: number }> {
  const admin = await freePort();
  const memory = Math.ceil((COUNT * CONNECTION_COST * 4 * 1.1) / MiB);
  const cli = await startCli(
    configFile(
      [
        "io: { threads: 1, pin: false }",
        "listen:",
        `  - { transport: tls, address: 127.0.0.1, port: 0, cert: ${cert.cert}, key: ${cert.key} }`,
        "backends:",
        "  - name: core",
        "    members:",
        '      - { name: a, uri: "sip:127.0.0.1:9" }',
        `admin: { listen: "127.0.0.1:${admin}" }`,
        `limits: { memory: ${memory}MiB, maxConnections: ${COUNT}, maxConnectionsPerIp: ${COUNT}, maxHandshakes: 1000 }`,
      ].join("\n"),
    ),
    "admin API",
  );
  try {
    return await costPerConnection(cli.child.pid as number, listeningPort(cli.out(), "tls"));
  } finally {
    cli.child.kill("SIGKILL");
  }
}

async function bareFigure(cert: { cert: string; key: string }): Promise<{ perConnection: number; up: number }> {
  const child: ChildProcess = processes.spawn(process.execPath, [
    new URL("../fixtures/storm/bare-tls-server.ts", import.meta.url).pathname,
    cert.cert,
    cert.key,
  ]);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  for (let i = 0; i < 100 && !/port \d+/.test(out); i++) await sleep(50);
  const port = Number(/port (\d+)/.exec(out)?.[1]);
  return costPerConnection(child.pid as number, port);
}

async function main(): Promise<void> {
  const cert = demoCertificate(CERT_DIR);
  console.log(`idle TLS connection cost: ${COUNT} connections (BENCH_CONNECTIONS), RSS growth of the server process`);
  const se = await sipedgeFigure(cert);
  const bare = await bareFigure(cert);
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  console.log(`  sipedge (1 IO worker): ${kib(se.perConnection)} a connection (${se.up} up)`);
  console.log(`  bare Node TLS server:  ${kib(bare.perConnection)} a connection (${bare.up} up)`);
  console.log(
    `  sipedge / bare: ${(se.perConnection / bare.perConnection).toFixed(2)}; budget's CONNECTION_COST ${kib(CONNECTION_COST)}` +
      (se.perConnection <= CONNECTION_COST ? " (holds)" : " (EXCEEDED: raise it in src/config/budget.ts)"),
  );
  await processes.killAll();
}

main().catch(async (e: unknown) => {
  console.error(e);
  await processes.killAll();
  process.exitCode = 1;
});
