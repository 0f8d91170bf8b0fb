import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { type LoadSample, LoadShedder } from "../../../../src/proxy/shedder.ts";
import { BacklogShare, type LoadClocks, LoadMeter, threadClocks } from "../../../../src/runtime/worker/load-meter.ts";

/** Clocks a test moves by hand: wall and loop times in ms, CPU time in µs. */
function handClocks(): LoadClocks & { pass(ms: number, cpuMs: number, activeMs: number): void } {
  let [wall, cpu, active, idle] = [1_000, 50_000, 200, 800];
  return {
    wall: () => wall,
    cpu: () => cpu,
    loop: () => ({ active, idle }),
    pass(ms, cpuMs, activeMs) {
      wall += ms;
      cpu += cpuMs * 1000;
      active += activeMs;
      idle += ms - activeMs;
    },
  };
}

/** 50 windows of 100 ms in which the thread used `cpuMs` of CPU and its loop was busy `activeMs`: the shedder's verdict. */
function windows(cpuMs: number, activeMs: number): { shedder: LoadShedder; last: LoadSample } {
  const clocks = handClocks();
  const meter = new LoadMeter(clocks, []);
  const shedder = new LoadShedder();
  let last = meter.next();
  for (let w = 0; w < 50; w++) {
    for (let i = 0; i < 20; i++) shedder.take();
    clocks.pass(100, cpuMs, activeMs);
    last = meter.next();
    shedder.sample(last);
  }
  return { shedder, last };
}

describe("the load meter", () => {
  it("reads a descheduled thread (wall time passing, its loop busy, little CPU) as not saturated", () => {
    // bench:tls at RSA-4096 on two shared cores: the loop ~100 % busy, the thread at 46 % of a CPU.
    const { shedder, last } = windows(46, 100);
    expect(last).toEqual({ cpu: 0.46, loop: 1, backlog: undefined });
    expect(shedder.ration).toBeUndefined();
    expect(shedder.saturatedWindows).toBe(0);
  });

  it("reads a thread burning a whole CPU as saturated", () => {
    const { shedder, last } = windows(100, 100);
    expect(last).toEqual({ cpu: 1, loop: 1, backlog: undefined });
    expect(shedder.ration).toBeDefined();
  });

  it("gives the UDP sockets' backlog share with the window", () => {
    const clocks = handClocks();
    const socket = { readTurns: { turns: 0, full: 0 } };
    const meter = new LoadMeter(clocks, [socket]);
    socket.readTurns = { turns: 10, full: 7 };
    clocks.pass(100, 60, 90);
    expect(meter.next()).toEqual({ cpu: 0.6, loop: 0.9, backlog: 0.7 });
  });

  it("reads this worker thread's own CPU, not the process's", async () => {
    // A worker that sleeps while the main thread burns 300 ms: its thread's CPU stays near nothing.
    const worker = new Worker(
      `const { parentPort } = require("node:worker_threads");
       const start = process.threadCpuUsage();
       parentPort.once("message", () => parentPort.postMessage(process.threadCpuUsage(start)));
       parentPort.postMessage("ready");`,
      { eval: true },
    );
    try {
      await new Promise((resolve) => worker.once("message", resolve));
      const before = threadClocks.cpu();
      const until = Date.now() + 300;
      while (Date.now() < until) {}
      expect(threadClocks.cpu() - before).toBeGreaterThan(100_000);
      worker.postMessage("how much");
      const used: { user: number; system: number } = await new Promise((resolve) => worker.once("message", resolve));
      expect(used.user + used.system).toBeLessThan(100_000);
    } finally {
      await worker.terminate();
    }
  });
});

describe("the load window's backlog share", () => {
  it("gives the full share of the turns since the last look, over every socket, and none when nothing was read", async () => {
    const a = { readTurns: { turns: 0, full: 0 } };
    const b = { readTurns: { turns: 0, full: 0 } };
    const share = new BacklogShare([a, b]);
    expect(share.sinceLast()).toBeUndefined();
    a.readTurns = { turns: 6, full: 6 };
    b.readTurns = { turns: 2, full: 0 };
    expect(share.sinceLast()).toBe(0.75);
    b.readTurns = { turns: 6, full: 0 };
    expect(share.sinceLast()).toBe(0);
    expect(share.sinceLast()).toBeUndefined();
  });
});
