import { describe, expect, it } from "vitest";
import { type Backend, Pool } from "../../../src/balance/pool.ts";
import type { Member } from "../../../src/config/schema.ts";

function members(weights: readonly number[]): Member[] {
  return weights.map((weight, i) => ({
    name: `b${i}`,
    uri: `sip:127.0.0.1:${5080 + i}`,
    host: "127.0.0.1",
    port: 5080 + i,
    transport: "udp",
    weight,
  }));
}

function spread(pool: Pool, n: number, key: (i: number) => string = (i) => `call-${i}`): Record<string, number> {
  const count: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = pool.select(key(i), new Set(), 0, false) as Backend;
    count[b.name] = (count[b.name] ?? 0) + 1;
  }
  return count;
}

describe("backend selection", () => {
  it("hash-callid keeps a Call-ID on one backend and spreads Call-IDs evenly", () => {
    const pool = new Pool("p", "hash-callid", members([1, 1, 1]));
    const first = pool.select("abc@host", new Set(), 0, false);
    for (let i = 0; i < 10; i++) expect(pool.select("abc@host", new Set(), 0, false)).toBe(first);
    for (const n of Object.values(spread(pool, 3000))) expect(n).toBeGreaterThan(800);
  });

  it("hash-callid spreads sipp's sequential Call-IDs evenly over many backends, and by weight", () => {
    // Call-IDs that differ in a digit or two: what a weak hash would bunch together.
    const sipp = (i: number) => `${i + 1}-4242@127.0.0.1`;
    const even = spread(new Pool("p", "hash-callid", members(Array(10).fill(1))), 20_000, sipp);
    expect(Object.keys(even)).toHaveLength(10);
    for (const n of Object.values(even)) expect(Math.abs(n - 2000)).toBeLessThan(250);
    const weighted = spread(new Pool("p", "hash-callid", members([1, 2, 3])), 30_000, sipp);
    expect(Math.abs((weighted.b0 ?? 0) - 5000)).toBeLessThan(500);
    expect(Math.abs((weighted.b1 ?? 0) - 10_000)).toBeLessThan(700);
    expect(Math.abs((weighted.b2 ?? 0) - 15_000)).toBeLessThan(700);
  });

  it("hash-callid takes any Call-ID a peer sends: empty, 64 KiB, control bytes, lone surrogates", () => {
    const pool = new Pool("p", "hash-callid", members([1, 1, 1]));
    const names = new Set(pool.backends);
    for (const key of ["", "x".repeat(65_536), "\u0000\r\n\uffff", "\ud800a\udfff", "é@ü"]) {
      const b = pool.select(key, new Set(), 0, false);
      expect(names.has(b as Backend)).toBe(true);
      expect(pool.select(key, new Set(), 0, false)).toBe(b);
    }
  });

  it("hash-callid moves only the failed backend's share, and gives it back (rendezvous hashing)", () => {
    const pool = new Pool("p", "hash-callid", members([1, 1, 1]));
    const down = pool.backends[1] as Backend;
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    const before = keys.map((k) => pool.select(k, new Set(), 0, false));
    down.suspectUntil = 1000;
    const during = keys.map((k) => pool.select(k, new Set(), 0, false));
    keys.forEach((_, i) => {
      if (before[i] !== down) expect(during[i]).toBe(before[i]);
      else expect(during[i]).not.toBe(down);
    });
    down.suspectUntil = 0;
    expect(keys.map((k) => pool.select(k, new Set(), 0, false))).toEqual(before);
  });

  it("failover skips the backends already tried, in score order", () => {
    const pool = new Pool("p", "hash-callid", members([1, 1, 1]));
    const tried = new Set<Backend>();
    const order: string[] = [];
    for (let b = pool.select("x", tried, 0, false); b !== undefined; b = pool.select("x", tried, 0, false)) {
      order.push(b.name);
      tried.add(b);
    }
    expect(order.sort()).toEqual(["b0", "b1", "b2"]);
  });

  it("round-robin takes turns", () => {
    const pool = new Pool("p", "round-robin", members([1, 1]));
    expect(spread(pool, 10)).toEqual({ b0: 5, b1: 5 });
  });

  it("weighted follows the weights exactly and smoothly", () => {
    const pool = new Pool("p", "weighted", members([3, 1]));
    expect(spread(pool, 400)).toEqual({ b0: 300, b1: 100 });
    const seq = Array.from({ length: 4 }, () => (pool.select("", new Set(), 0, false) as Backend).name);
    expect(seq.filter((n) => n === "b1").length).toBe(1);
  });

  it("least-calls picks the backend with the fewest dialogs per weight", () => {
    const pool = new Pool("p", "least-calls", members([1, 2]));
    const [a, b] = pool.backends as [Backend, Backend];
    a.calls = 3;
    b.calls = 5;
    expect(pool.select("", new Set(), 0, false)).toBe(b);
    b.calls = 7;
    expect(pool.select("", new Set(), 0, false)).toBe(a);
  });

  it("gives nothing when every backend is tried, suspect or weighted 0", () => {
    const pool = new Pool("p", "round-robin", members([0, 1]));
    const only = pool.backends[1] as Backend;
    only.suspectUntil = 10;
    expect(pool.select("", new Set(), 5, false)).toBeUndefined();
    expect(pool.select("", new Set(), 10, false)).toBe(only);
    expect(pool.select("", new Set([only]), 10, false)).toBeUndefined();
  });
});
