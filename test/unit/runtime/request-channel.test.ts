import { MessageChannel, type MessagePort } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import type { Reply, ToSupervisor, ToWorker } from "../../../src/runtime/channel.ts";
import { NoAnswer, RequestChannel, type Timeouts } from "../../../src/runtime/request-channel.ts";
import { sampleWorkerStats } from "../../helpers/worker-stats.ts";

/**
 * A RequestChannel over a real MessagePort pair: `asked` collects what the
 * fake worker end receives, `reply` answers one of them.
 */
function pair() {
  const { port1, port2 } = new MessageChannel();
  const timeouts: Timeouts = { stats: 0, reload: 0 };
  const channel = new RequestChannel(port1, timeouts);
  port1.on("message", (m: ToSupervisor) => {
    if (m.type === "response") channel.settle(m);
  });
  const asked: Extract<ToWorker, { type: "request" }>[] = [];
  port2.on("message", (m: ToWorker) => {
    if (m.type === "request") asked.push(m);
  });
  const reply = (id: number, r: Reply) => port2.postMessage({ type: "response", id, reply: r } satisfies ToSupervisor);
  const idOf = (i: number) => (asked[i] as { readonly id: number }).id;
  ports.push(port1, port2);
  return { channel, timeouts, asked, reply, idOf };
}

const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

async function until(what: () => boolean): Promise<void> {
  while (!what()) await new Promise((r) => setTimeout(r, 5));
}

const stats = (endpoints: number): Reply => ({
  of: "stats",
  stats: { ...sampleWorkerStats(0), endpoints: { registered: endpoints, rebinds: 0 } },
});

describe("RequestChannel", () => {
  it("gives each request the response with its id, whatever order they come back in", async () => {
    const { channel, asked, reply, idOf } = pair();
    const first = channel.request({ type: "stats" }, 1000);
    const second = channel.request({ type: "stats" }, 1000);
    await until(() => asked.length === 2);
    expect(idOf(0)).not.toBe(idOf(1));
    reply(idOf(1), stats(2));
    reply(idOf(0), stats(1));
    expect((await first).stats.endpoints.registered).toBe(1);
    expect((await second).stats.endpoints.registered).toBe(2);
  });

  it("rejects a request unanswered in time, counts it, and drops its late answer", async () => {
    const { channel, timeouts, asked, reply, idOf } = pair();
    const late = channel.request({ type: "stats" }, 20);
    await expect(late).rejects.toMatchObject({ reason: "timeout" });
    expect(timeouts).toEqual({ stats: 1, reload: 0 });
    const next = channel.request({ type: "stats" }, 1000);
    await until(() => asked.length === 2);
    // The first request's answer, at last: it must not be taken for the second's.
    reply(idOf(0), stats(1));
    reply(idOf(1), stats(2));
    expect((await next).stats.endpoints.registered).toBe(2);
  });

  it("rejects what waits when the worker exits, and everything asked after", async () => {
    const { channel, timeouts } = pair();
    const waiting = channel.request({ type: "reload", config: {} as never }, 1000);
    channel.close();
    await expect(waiting).rejects.toBeInstanceOf(NoAnswer);
    await expect(waiting).rejects.toMatchObject({ reason: "exited" });
    await expect(channel.request({ type: "stats" }, 1000)).rejects.toMatchObject({ reason: "exited" });
    expect(timeouts).toEqual({ stats: 0, reload: 0 });
  });

  it("ignores a reply of the wrong type (logged), leaving its request to time out", async () => {
    const { channel, timeouts, asked, reply, idOf } = pair();
    const reload = channel.request({ type: "reload", config: {} as never }, 100);
    await until(() => asked.length === 1);
    reply(idOf(0), stats(1));
    await expect(reload).rejects.toMatchObject({ reason: "timeout" });
    expect(timeouts.reload).toBe(1);
  });
});
