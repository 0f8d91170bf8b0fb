/**
 * `npm run bench:refusal`: what a refused call costs sipedge, in CPU time
 * rather than wall time, so the figure holds on a machine shared with its
 * load. sipedge runs one IO worker whose transaction table (1) is held by
 * an INVITE a silent backend never answers, so every further INVITE is
 * refused with 503; this process sends BENCH_CALLS INVITEs at BENCH_RATE a
 * second and the ACK for each 503, as a UAC does. Printed: the IO worker
 * thread's CPU time and the whole process's (its GC helper threads
 * included) per refused call, and how many calls a second one core could
 * refuse at that price. The lower bound on overload goodput follows from
 * it: at N times capacity, (N - 1) refusals for each call carried.
 */
import { createSocket } from "node:dgram";
import { parseMessage } from "../../src/sip/index.ts";
import { listeningPort, silentBackendConfig, startCli } from "../helpers/cli.ts";
import { request } from "../helpers/dialog.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { UdpPeer } from "../helpers/sip-client.ts";
import { processTicks, threadTicks } from "./cpu.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 30_000);
const RATE = Number(process.env.BENCH_RATE ?? 3000);

async function main(): Promise<void> {
  const backend = await UdpPeer.bind(true);
  const admin = await freePort();
  const cli = await startCli(
    silentBackendConfig(backend.port, admin, {
      sip: "firstResponseTimeout: 600s, timers: { timerC: 600s }",
      lines: ["limits: { maxTransactions: 1 }"],
    }),
    "admin API",
  );
  const pid = cli.child.pid as number;
  const port = listeningPort(cli.out(), "udp");
  await sleep(2000); // probed up

  const uac = createSocket("udp4");
  await new Promise<void>((r) => uac.bind(0, "127.0.0.1", () => r()));
  const message = (method: "INVITE" | "ACK", callId: string, to?: string) =>
    request({
      method,
      uri: "sip:service@127.0.0.1",
      transport: "UDP",
      localPort: uac.address().port,
      callId,
      cseq: 1,
      branch: callId,
      sdp: method === "INVITE",
      ...(to === undefined ? {} : { to }),
    });
  const invite = (callId: string) => message("INVITE", callId);
  let refused = 0;
  uac.on("message", (m) => {
    const p = parseMessage(m);
    if (!p.ok || p.value.kind !== "response" || p.value.status !== 503) return;
    refused++;
    const callId = p.value.values("call-id")[0] ?? "";
    const to = p.value.values("to")[0] ?? "";
    uac.send(message("ACK", callId, to), port, "127.0.0.1");
  });
  uac.send(invite("holds-the-table"), port, "127.0.0.1");
  await sleep(500);

  const t0 = threadTicks(pid, "sipedge-io-0");
  const p0 = processTicks(pid);
  const started = Date.now();
  const batch = Math.max(1, Math.round(RATE / 100));
  for (let sent = 0; sent < CALLS; ) {
    for (let i = 0; i < batch && sent < CALLS; i++, sent++) uac.send(invite(`refused-${sent}`), port, "127.0.0.1");
    const due = started + (sent / RATE) * 1000;
    await sleep(Math.max(0, due - Date.now()));
  }
  const deadline = Date.now() + 10_000;
  while (refused < CALLS && Date.now() < deadline) await sleep(50);
  await sleep(500); // the last ACKs
  const t1 = threadTicks(pid, "sipedge-io-0");
  const p1 = processTicks(pid);
  const us = (ticks: number) => ((ticks * 10_000) / Math.max(1, refused)).toFixed(1);
  console.log(`refusal benchmark: ${CALLS} INVITEs at ${RATE}/s to 1 IO worker with a full transaction table`);
  console.log(`  refused with 503: ${refused} (${CALLS - refused} unanswered), each ACKed`);
  console.log(
    `  CPU per refused call (INVITE -> 503, ACK absorbed): IO thread ${us(t1 - t0)} µs, whole process ${us(p1 - p0)} µs`,
  );
  console.log(`  one core refuses at most ${Math.round(1e6 / Number(us(t1 - t0)))} calls a second at that price`);
  cli.child.kill("SIGKILL");
  uac.close();
  backend.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
