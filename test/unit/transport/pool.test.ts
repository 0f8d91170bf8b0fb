import { getHeapStatistics } from "node:v8";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferPool, type PoolSlot, RESERVE_SLOT_SIZE } from "../../../src/transport/pool.ts";

const KiB = 1024;

describe("the buffer pool", () => {
  it("gives the smallest free class that fits, then larger ones, then nothing", () => {
    const pool = new BufferPool({ bytes: 64 * KiB, maxMessageSize: 8 * KiB });
    const { classes } = pool.stats();
    expect(classes.map((c) => c.size)).toEqual([512, 1024, 2048, 4096, 8192]);
    const first = pool.acquire(700);
    expect(first?.buf.length).toBe(1024);
    expect(first?.bytes.length).toBe(700);
    // Take every 1 KiB slot: the next small message goes to 2 KiB.
    const held: PoolSlot[] = [first as PoolSlot];
    for (let i = 1; i < (classes[1]?.total ?? 0); i++) held.push(pool.acquire(1000) as PoolSlot);
    expect(pool.acquire(1000)?.buf.length).toBe(2048);
    expect(pool.acquire(9000)).toBeUndefined();
    expect(pool.exhausted).toBe(1);
  });

  it("goes low, then critical, as its bytes are taken, and back when they return", () => {
    const pool = new BufferPool({ bytes: 256 * KiB, maxMessageSize: 4 * KiB, lowWater: 0.25, criticalWater: 0.1 });
    const held: PoolSlot[] = [];
    const levels = new Set<string>([pool.level]);
    for (let s = pool.acquire(4096); s !== undefined; s = pool.acquire(1)) {
      held.push(s);
      levels.add(pool.level);
    }
    expect([...levels]).toEqual(["normal", "low", "critical"]);
    expect(pool.freeFraction).toBe(0);
    for (const s of held) pool.release(s);
    expect(pool.level).toBe("normal");
    expect(pool.inUse).toBe(0);
  });

  it("keeps a reserve for error responses that the level does not count", () => {
    const pool = new BufferPool({ bytes: 16 * KiB, maxMessageSize: 2 * KiB });
    const held: PoolSlot[] = [];
    for (let s = pool.acquire(100); s !== undefined; s = pool.acquire(100)) held.push(s);
    const response = [Buffer.from("SIP/2.0 503 Service Unavailable\r\n"), Buffer.from("Retry-After: 30\r\n\r\n")];
    expect(pool.copy(response, false)).toBeUndefined();
    const urgent = pool.copy(response, true) as PoolSlot;
    expect(urgent.bytes.toString()).toBe("SIP/2.0 503 Service Unavailable\r\nRetry-After: 30\r\n\r\n");
    expect(pool.stats().reserve.free).toBe(pool.stats().reserve.total - 1);
    expect(pool.acquireReserved(RESERVE_SLOT_SIZE + 1)).toBeUndefined();
    pool.release(urgent);
    for (const s of held) pool.release(s);
    expect(pool.inUse).toBe(0);
    expect(pool.stats().reserve.free).toBe(pool.stats().reserve.total);
  });

  it("gives its slots per class, the reserve apart, its free fraction and its misses in stats()", () => {
    const pool = new BufferPool({ bytes: 16 * KiB, maxMessageSize: 2 * KiB });
    const fresh = pool.stats();
    expect(fresh.freeFraction).toBe(1);
    expect(fresh.exhausted).toBe(0);
    const held = pool.acquire(2000) as PoolSlot;
    const bigClass = fresh.classes.find((c) => c.size === 2048);
    expect(pool.acquire(9000)).toBeUndefined();
    const stats = pool.stats();
    expect(stats.classes.find((c) => c.size === 2048)?.free).toBe((bigClass?.free ?? 0) - 1);
    expect(stats.reserve).toEqual(fresh.reserve);
    // The pool's bytes are its slots' (the reserve apart).
    const bytes = fresh.classes.reduce((n, c) => n + c.size * c.total, 0);
    expect(stats.freeFraction).toBe(1 - (2 * KiB) / bytes);
    expect(stats.exhausted).toBe(1);
    pool.release(held);
  });

  it("makes a slot's object when first needed: a 1 GiB pool adds almost nothing to the heap", () => {
    // Made up front, a 1 GiB pool's 800 000 slot objects were over 100 MB of heap.
    const before = getHeapStatistics().used_heap_size;
    const pool = new BufferPool({ bytes: 1024 * 1024 * KiB, maxMessageSize: 64 * KiB });
    expect(getHeapStatistics().used_heap_size - before).toBeLessThan(4 * 1024 * KiB);
    const classes = pool.stats().classes;
    expect(classes[0]).toEqual({
      size: 512,
      total: Math.floor((0.15 * 1024 * 1024 * KiB) / 512),
      free: classes[0]?.total,
    });
    expect(pool.freeFraction).toBe(1);
  });

  it("hands out each slot's own bytes, made or reused, until the class is empty", () => {
    const pool = new BufferPool({ bytes: 64 * KiB, maxMessageSize: 8 * KiB });
    const total = pool.stats().classes.find((c) => c.size === 4096)?.total ?? 0;
    const fill = (n: number) => {
      const held: PoolSlot[] = [];
      for (let s = pool.acquire(4000); s?.buf.length === 4096; s = pool.acquire(4000)) held.push(s);
      for (const [i, s] of held.entries()) s.buf.fill(i + n);
      for (const [i, s] of held.entries()) expect(s.buf.every((b) => b === i + n)).toBe(true);
      return held;
    };
    const first = fill(0);
    expect(first).toHaveLength(total);
    for (const s of first) pool.release(s);
    // Reused, not made again: the same objects, and still one each.
    const again = fill(100);
    expect(new Set(again)).toEqual(new Set(first));
  });

  it("refuses a second release of the same reference as the bug it is", () => {
    const pool = new BufferPool({ bytes: 16 * KiB, maxMessageSize: 2 * KiB });
    const s = pool.acquire(10) as PoolSlot;
    pool.retain(s);
    pool.release(s);
    expect(pool.inUse).toBe(1);
    pool.release(s);
    expect(() => pool.release(s)).toThrow(/released more often/);
  });

  it("never leaks: any interleaving of acquire, retain and release ends with every slot home", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("acquire" as const), size: fc.integer({ min: 1, max: 4096 }) }),
      fc.record({ kind: fc.constant("retain" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const pool = new BufferPool({ bytes: 32 * KiB, maxMessageSize: 4 * KiB });
        const refs: PoolSlot[] = []; // one entry per reference held
        for (const o of ops) {
          if (o.kind === "acquire") {
            const s = pool.acquire(o.size);
            if (s !== undefined) {
              expect(s.buf.length).toBeGreaterThanOrEqual(o.size);
              expect(refs).not.toContain(s); // never handed out while held
              refs.push(s);
            }
          } else if (refs.length > 0) {
            const s = refs[o.pick % refs.length] as PoolSlot;
            if (o.kind === "retain") {
              pool.retain(s);
              refs.push(s);
            } else {
              pool.release(s);
              refs.splice(refs.indexOf(s), 1);
            }
          }
          expect(pool.inUse).toBe(new Set(refs).size);
        }
        for (const s of [...refs]) pool.release(s);
        expect(pool.inUse).toBe(0);
        expect(pool.freeFraction).toBe(1);
      }),
    );
  });
});
