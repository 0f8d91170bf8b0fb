import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { type Bound, type HandOff, HandOffs } from "../../../src/runtime/handoff.ts";
import { handOffDepth, resetHandOffDepth } from "../../../src/runtime/shared-memory.ts";
import { sleep } from "../../helpers/net.ts";

const replyTo = { host: "127.0.0.1", port: 5080, transport: "udp" } as const;

/** Workers 0 and 1 of two, entangled as the supervisor does; worker 1 collects what it gets. */
function pair(capacity: number) {
  const depth = handOffDepth(2);
  const got: HandOff[] = [];
  const learned: Bound[] = [];
  const w0 = new HandOffs(
    0,
    2,
    depth,
    () => {},
    () => {},
    capacity,
  );
  const w1 = new HandOffs(
    1,
    2,
    depth,
    (h) => got.push(h),
    (b) => learned.push(b),
    capacity,
  );
  const { port1, port2 } = new MessageChannel();
  w0.connect(1, port1);
  w1.connect(0, port2);
  return { depth, got, learned, w0, w1 };
}

describe("hand-off queues between IO workers", () => {
  it("deliver the request's bytes and where to answer, in a buffer of their own", async () => {
    const { got, w0, w1 } = pair(4);
    const chunk = Buffer.from("xxBYE sip:a@b SIP/2.0\r\n\r\nyy");
    expect(w0.offer(1, chunk.subarray(2, chunk.length - 2), replyTo, 7)).toBe(true);
    chunk.fill(0); // the receive buffer is reused at once
    await sleep(20);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]?.bytes ?? []).toString()).toBe("BYE sip:a@b SIP/2.0\r\n\r\n");
    expect(got[0]?.replyTo).toEqual(replyTo);
    expect(got[0]?.flowId).toBe(7);
    w0.close();
    w1.close();
  });

  it("refuse beyond their capacity until the owner has taken what is queued", async () => {
    const { got, w0, w1 } = pair(2);
    const bytes = Buffer.from("OPTIONS sip:x SIP/2.0\r\n\r\n");
    expect([w0.offer(1, bytes, replyTo, 7), w0.offer(1, bytes, replyTo, 7), w0.offer(1, bytes, replyTo, 7)]).toEqual([
      true,
      true,
      false,
    ]);
    await sleep(20);
    expect(got).toHaveLength(2);
    expect(w0.offer(1, bytes, replyTo, 7)).toBe(true);
    w0.close();
    w1.close();
  });

  it("refuse when the owner is unknown or its thread has gone", async () => {
    const { w0, w1 } = pair(2);
    const bytes = Buffer.from("BYE sip:x SIP/2.0\r\n\r\n");
    expect(w0.offer(3, bytes, replyTo, 7)).toBe(false);
    w1.close();
    await sleep(20);
    expect(w0.offer(1, bytes, replyTo, 7)).toBe(false);
    w0.close();
  });

  it("carry endpoint bindings to the other workers", async () => {
    const { got, learned, w0, w1 } = pair(4);
    w0.announce({ keys: ["phone"], flow: 5, expiresMs: 60_000 });
    w0.announce({ keys: ["phone"], flow: 6, expiresMs: 60_000 });
    expect(w0.offer(1, Buffer.from("BYE sip:x SIP/2.0\r\n\r\n"), replyTo, 6)).toBe(true);
    await sleep(20);
    expect(learned.map((b) => b.flow)).toEqual([5, 6]);
    expect(got).toHaveLength(1);
    w0.close();
    w1.close();
  });

  it("count endpoint bindings in the same bound: a full queue misses one, never grows", async () => {
    const { learned, w0, w1 } = pair(1);
    w0.announce({ keys: ["phone"], flow: 5, expiresMs: 60_000 });
    w0.announce({ keys: ["phone"], flow: 6, expiresMs: 60_000 });
    await sleep(20);
    w0.announce({ keys: ["phone"], flow: 7, expiresMs: 60_000 });
    await sleep(20);
    expect(learned.map((b) => b.flow)).toEqual([5, 7]);
    w0.close();
    w1.close();
  });

  it("start empty for a restarted worker", () => {
    const depth = handOffDepth(3);
    const cells = new Int32Array(depth);
    cells.fill(7);
    resetHandOffDepth(depth, 3, 1);
    // Row 1 (from worker 1) and column 1 (to worker 1) cleared; the rest untouched.
    expect([...cells]).toEqual([7, 0, 7, 0, 0, 0, 7, 0, 7]);
  });
});
