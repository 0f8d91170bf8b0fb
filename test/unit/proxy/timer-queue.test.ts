import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TimerQueue } from "../../../src/proxy/timer-queue.ts";

describe("TimerQueue", () => {
  let errors: unknown[];
  let queue: TimerQueue;
  let fired: string[];
  const timer = (name: string) => queue.timer(() => fired.push(`${name}@${performance.now()}`));

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    errors = [];
    fired = [];
    queue = new TimerQueue((err) => errors.push(err));
  });
  afterEach(() => vi.useRealTimers());

  it("fires timers when due, in order of due time, and together-due ones in the order they were armed", () => {
    timer("c").start(300);
    timer("a").start(100);
    timer("b1").start(200);
    timer("b2").start(200);
    timer("now").start(0);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(["now@0", "a@100", "b1@200", "b2@200", "c@300"]);
  });

  it("hands a shared callback the target it was made with, each time it fires", () => {
    const owners = [{ name: "st1" }, { name: "st2" }];
    const end = (o: { name: string }) => fired.push(`${o.name}@${performance.now()}`);
    const [t1, t2] = owners.map((o) => queue.timer(end, o));
    t2?.start(50);
    t1?.start(100);
    vi.advanceTimersByTime(100);
    t1?.start(10);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(["st2@50", "st1@100", "st1@110"]);
  });

  it("runs all of them under one Node timer", () => {
    for (let i = 0; i < 1000; i++) timer(String(i)).start(1000 + i);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(3000);
    expect(fired).toHaveLength(1000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never fires a stopped timer, and a restarted one only at its new time", () => {
    const stopped = timer("stopped");
    const moved = timer("moved");
    stopped.start(100);
    moved.start(100);
    vi.advanceTimersByTime(50);
    stopped.stop();
    moved.start(200); // due at 250 now
    expect(stopped.running).toBe(false);
    vi.advanceTimersByTime(500);
    expect(fired).toEqual(["moved@250"]);
    expect(moved.running).toBe(false);
  });

  it("moves its Node timer earlier for a timer due before the others", () => {
    timer("late").start(10_000);
    timer("early").start(10);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(["early@10"]);
  });

  it("keeps firing the others when one throws, and reports the error", () => {
    queue
      .timer(() => {
        throw new Error("bug");
      })
      .start(10);
    timer("after").start(10);
    timer("later").start(20);
    vi.advanceTimersByTime(100);
    expect(errors).toHaveLength(1);
    expect(fired).toEqual(["after@10", "later@20"]);
  });

  it("leaves no Node timer behind once every timer is stopped or cleared", () => {
    const t = timer("x");
    t.start(100);
    t.stop();
    expect(vi.getTimerCount()).toBe(0);
    timer("y").start(100);
    timer("z").start(200);
    queue.clear();
    expect(queue.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual([]);
  });

  it("keeps heap order through many random starts and stops", () => {
    const timers = Array.from({ length: 200 }, (_, i) => timer(String(i)));
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const due = new Map<string, number>();
    for (let round = 0; round < 2000; round++) {
      const i = Math.floor(random() * timers.length);
      const t = timers[i];
      if (t === undefined) continue;
      if (random() < 0.3) {
        t.stop();
        due.delete(String(i));
      } else {
        const ms = Math.floor(random() * 1000);
        t.start(ms);
        due.set(String(i), ms);
      }
    }
    vi.advanceTimersByTime(2000);
    const expected = [...due].sort((a, b) => a[1] - b[1]).map(([name, ms]) => `${name}@${ms}`);
    expect(fired.map((f) => f.split("@")[1])).toEqual(expected.map((f) => f.split("@")[1]));
    expect(fired.sort()).toEqual(expected.sort());
  });
});
