import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configFile, onePoolConfig, startCli } from "../helpers/cli.ts";
import { freePort, sleep } from "../helpers/net.ts";

// A box with no calls should cost next to nothing: every wake-up of an idle thread is an epoll_wait
// returning, timers run and a sleep again, 0.15–0.3 ms of CPU each on this VM (2026-12-05). With
// loop-delay histograms at Node's default 10 ms an idle sipedge used 18 ms of CPU a second
// against Kamailio's 1.5 (bench:compare's balancers, 30 s idle each, twice).

/** Voluntary context switches (each a sleep in the kernel, so each wake-up) by thread name. */
function wakeUps(pid: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    by.set(name, (by.get(name) ?? 0) + Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]));
  }
  return by;
}

describe("an idle sipedge", () => {
  it("wakes its IO worker and main thread a few dozen times a second at most, not every 10 ms", async () => {
    const admin = await freePort();
    const cli = await startCli(
      configFile(
        onePoolConfig({
          io: "{ threads: 1, pin: false }",
          listen: ["{ transport: udp, address: 127.0.0.1, port: 0 }"],
          members: [`{ name: a, uri: "sip:127.0.0.1:${await freePort()}" }`],
          admin,
        }),
      ),
    );
    const pid = cli.child.pid as number;
    await sleep(1500); // start-up's work done
    const before = wakeUps(pid);
    const start = performance.now();
    await sleep(3000);
    const after = wakeUps(pid);
    const seconds = (performance.now() - start) / 1000;
    const perSecond = (name: string) => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) / seconds;
    // Left: the IO worker's load window (10 a second) and heartbeat (4); the main thread's loop-delay
    // histogram (10) and stall watch (2). Before: 120 and 110.
    expect([...before.keys()], cli.err()).toEqual(expect.arrayContaining(["sipedge-io-0", "MainThread"]));
    expect(perSecond("sipedge-io-0")).toBeGreaterThan(0);
    expect(perSecond("sipedge-io-0")).toBeLessThan(40);
    expect(perSecond("MainThread")).toBeLessThan(40);
  });
});
