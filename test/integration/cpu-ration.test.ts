/**
 * The CPU ration judges the IO thread's own CPU time (proxy/shedder.ts),
 * not how much of the wall clock its event loop was busy: a thread that
 * waits for a core can do more, and refusing clients would not give it one.
 * sipedge shares core 0 with two busy loops, so its IO thread gets about a
 * third of it, while two clients on core 1 keep PARALLEL RSA-4096
 * handshakes under way each: the loop is busy nearly all the time, the
 * thread's CPU share far under saturation. Judged by the loop, the ration
 * engaged here and refused handshakes for `load` (427 of 740, the thread at
 * 19 % of a CPU; as in bench:tls on shared cores).
 * Bounded: SECONDS of handshakes, the busy loops under `timeout`, every
 * process stopped by PID after the test.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lineFrom } from "../bench/child-output.ts";
import { threadTicks } from "../bench/cpu.ts";
import { selfSignedCertificate } from "../helpers/certificates.ts";
import { handshakesOnlyConfig, listeningPort, startCli } from "../helpers/cli.ts";
import { metricByLabel, scrape } from "../helpers/metrics.ts";
import { freePort, Processes } from "../helpers/net.ts";

const SECONDS = 6;
/** Handshakes each of the two clients keeps under way: enough that one always waits for the thread. */
const PARALLEL = 4;
const CLIENT = join(import.meta.dirname, "..", "fixtures", "storm", "tls-handshake-client.ts");
const processes = new Processes();
afterAll(() => processes.killAll());

/** `command` pinned to `core` with util-linux taskset. */
const onCore = (core: number, command: readonly string[]) => ["taskset", "-c", String(core), ...command];

describe("the CPU ration on shared cores", () => {
  it("refuses no TLS handshake for load while the IO thread waits for its core behind busy loops", async () => {
    const files = selfSignedCertificate(["-newkey", "rsa:4096"], "cpu-ration");
    const admin = await freePort();
    const cli = await startCli(await handshakesOnlyConfig(files, admin), "admin API", process.env, onCore(0, []));
    const port = listeningPort(cli.out(), "tls");
    const pid = cli.child.pid as number;
    for (let i = 0; i < 2; i++) {
      const [command = "", ...args] = onCore(0, ["timeout", `${SECONDS + 10}`, "sh", "-c", "while :; do :; done"]);
      processes.spawn(command, args);
    }
    const ticks0 = threadTicks(pid, "sipedge-io-0");
    const clients = Array.from({ length: 2 }, () => {
      const [command = "", ...args] = onCore(1, [
        process.execPath,
        CLIENT,
        `${port}`,
        "full",
        `${SECONDS}`,
        "5000",
        `${PARALLEL}`,
      ]);
      const child = processes.spawn(command, args);
      return lineFrom(child, /^\{.*\}$/m, SECONDS * 1000 + 15_000).then((m) => JSON.parse(m[0]));
    });
    const done: { handshakes: number; failed: number; seconds: number }[] = await Promise.all(clients);
    const cpuShare = (threadTicks(pid, "sipedge-io-0") - ticks0) / 100 / Math.max(...done.map((d) => d.seconds));
    const refused = metricByLabel(await scrape(admin), "sipedge_connections_refused_total", "reason");
    // The setting held: handshakes went on, the thread got well under a core.
    expect(done.reduce((n, d) => n + d.handshakes, 0)).toBeGreaterThan(20);
    expect(cpuShare).toBeLessThan(0.7);
    expect(refused.get("load") ?? 0).toBe(0);
    expect(done.reduce((n, d) => n + d.failed, 0)).toBe(0);
  }, 60_000);
});
