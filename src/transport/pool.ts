/**
 * The buffer pool (principle 4): an IO worker's message memory,
 * allocated once at start-up from its share of `limits.memory` and never
 * grown. Size classes fit SIP messages (most are under 2 KiB); a slot is
 * reference-counted by whoever holds its bytes (a transaction, a write the
 * kernel has not taken yet) and returns to its class when the last lets go.
 * A small reserve, outside the level, lets error responses (503, 400) go
 * out when the pool itself is empty.
 */

/** Slot sizes under the largest message; the largest class is the max message size itself. */
const SIZES = [512, 1024, 2048, 4096, 16384] as const;
/** Each class's share of the pool's bytes, by its index in SIZES, then the largest class. */
const SHARES = [0.15, 0.3, 0.3, 0.1, 0.08] as const;
const LARGEST_SHARE = 0.07;
/** Every class has a few slots, however small the budget. */
const MIN_SLOTS = 4;

export const RESERVE_SLOT_SIZE = 2048;
const RESERVE_SLOTS = 64;

/** normal: everything flows; low: new work is refused (503); critical: the least important flows stop being read. */
export type PoolLevel = "normal" | "low" | "critical";

export interface PoolOptions {
  /** Bytes for the size classes (the reserve comes on top). */
  readonly bytes: number;
  readonly maxMessageSize: number;
  /** Free fraction under which the level is low, and critical. */
  readonly lowWater?: number;
  readonly criticalWater?: number;
}

/** One holder's reference on a slot's bytes. */
export interface Held {
  release(): void;
}

/** For bytes outside the pool (a message received while it was empty): nothing to give back. */
export const UNHELD: Held = { release: () => {} };

export class PoolSlot {
  /** The whole slot; a message is its first `length` bytes. */
  readonly buf: Buffer;
  length = 0;
  refs = 0;
  readonly #home: SlotClass;

  constructor(buf: Buffer, home: SlotClass) {
    this.buf = buf;
    this.#home = home;
  }

  get home(): SlotClass {
    return this.#home;
  }

  /** The message bytes: a view, valid while a reference is held. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * One size class: its slab, and a stack of the free slots. The slab's bytes
 * are allocated at start-up (zeroed pages the kernel maps only when first
 * written); a slot's object is made the first time the class runs out of
 * made ones, and is reused from then on. Made up front, the objects were
 * what an IO worker's heap held: 241 MB of them for the pool of a 3.3 GiB
 * budget (15 000 connections' worth, bench:connections' sipedge_heap_bytes,
 * 2026-12-05), which every full collection marked again and which let V8
 * leave as much garbage again before collecting (runtime/worker/heap.ts).
 * Most slots of a large pool are never used at once: the stack hands back
 * the most recently freed, so the made ones are the most ever out.
 */
class SlotClass {
  readonly size: number;
  /** Slots the slab holds. */
  readonly count: number;
  readonly #slab: Buffer;
  readonly #free: PoolSlot[] = [];
  #top = 0;
  /** Slot objects made so far (the first `made` of the slab's). */
  #made = 0;

  constructor(size: number, count: number) {
    this.size = size;
    this.count = count;
    this.#slab = Buffer.alloc(size * count);
  }

  get free(): number {
    return this.#top + this.count - this.#made;
  }

  take(): PoolSlot | undefined {
    if (this.#top > 0) {
      this.#top--;
      return this.#free[this.#top];
    }
    if (this.#made === this.count) return undefined;
    const at = this.#made++ * this.size;
    return new PoolSlot(this.#slab.subarray(at, at + this.size), this);
  }

  give(slot: PoolSlot): void {
    this.#free[this.#top] = slot;
    this.#top++;
  }
}

export interface ClassStats {
  readonly size: number;
  readonly total: number;
  readonly free: number;
}

/** The buffer pool, for a scrape: slots per size class (and the reserve), and acquisitions that found none free. */
export interface PoolStats {
  readonly classes: readonly ClassStats[];
  readonly reserve: ClassStats;
  readonly freeFraction: number;
  readonly exhausted: number;
}

export class BufferPool {
  readonly #classes: readonly SlotClass[];
  readonly #reserve: SlotClass;
  readonly #lowWater: number;
  readonly #criticalWater: number;
  readonly #totalBytes: number;
  #usedBytes = 0;
  /** Slots out (pool and reserve): 0 whenever nothing holds a message, which tests check. */
  inUse = 0;
  /** Acquisitions that found no slot. */
  exhausted = 0;

  constructor(options: PoolOptions) {
    const { bytes, maxMessageSize, lowWater = 0.25, criticalWater = 0.1 } = options;
    const sizes = SIZES.filter((s) => s < maxMessageSize);
    const classes = sizes.map((size, i) => new SlotClass(size, slotsFor(bytes * (SHARES[i] as number), size)));
    const rest = SHARES.slice(sizes.length).reduce((a, b) => a + b, LARGEST_SHARE);
    classes.push(new SlotClass(maxMessageSize, slotsFor(bytes * rest, maxMessageSize)));
    this.#classes = classes;
    this.#reserve = new SlotClass(RESERVE_SLOT_SIZE, RESERVE_SLOTS);
    this.#totalBytes = classes.reduce((n, c) => n + c.size * c.count, 0);
    this.#lowWater = lowWater;
    this.#criticalWater = criticalWater;
  }

  /** A slot for `length` bytes (the smallest free class that fits), referenced once; undefined when none is free. */
  acquire(length: number): PoolSlot | undefined {
    for (const c of this.#classes) {
      if (c.size < length) continue;
      const slot = c.take();
      if (slot === undefined) continue;
      this.#usedBytes += c.size;
      return this.#out(slot, length);
    }
    this.exhausted++;
    return undefined;
  }

  /** A slot from the reserve, for an error response when the pool is empty. */
  acquireReserved(length: number): PoolSlot | undefined {
    const slot = length <= RESERVE_SLOT_SIZE ? this.#reserve.take() : undefined;
    if (slot === undefined) {
      this.exhausted++;
      return undefined;
    }
    return this.#out(slot, length);
  }

  /** Copies `bytes` (a message, or its slices) into one slot: the pool's, else (for `urgent` messages) the reserve's. */
  copy(bytes: Uint8Array | readonly Uint8Array[], urgent: boolean): PoolSlot | undefined {
    const one = bytes instanceof Uint8Array;
    let length = 0;
    if (one) length = bytes.length;
    else for (const s of bytes) length += s.length;
    const slot = this.acquire(length) ?? (urgent ? this.acquireReserved(length) : undefined);
    if (slot === undefined) return undefined;
    if (one) {
      slot.buf.set(bytes);
      return slot;
    }
    let at = 0;
    for (const s of bytes) {
      slot.buf.set(s, at);
      at += s.length;
    }
    return slot;
  }

  retain(slot: PoolSlot): void {
    slot.refs++;
  }

  /** A reference for one holder (a transaction): given back once, however often it lets go. */
  hold(slot: PoolSlot | undefined): Held {
    if (slot === undefined) return UNHELD;
    this.retain(slot);
    return new Hold(this, slot);
  }

  release(slot: PoolSlot): void {
    // A slot handed back twice would be handed out twice: a bug, not a load condition.
    if (slot.refs <= 0) throw new Error("BufferPool: slot released more often than acquired");
    slot.refs--;
    if (slot.refs > 0) return;
    const home = slot.home;
    home.give(slot);
    this.inUse--;
    if (home !== this.#reserve) this.#usedBytes -= home.size;
  }

  /** The free fraction of the pool's bytes (the reserve apart). */
  get freeFraction(): number {
    return 1 - this.#usedBytes / this.#totalBytes;
  }

  get level(): PoolLevel {
    const free = this.freeFraction;
    return free < this.#criticalWater ? "critical" : free < this.#lowWater ? "low" : "normal";
  }

  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Per class (the reserve apart, as size RESERVE_SLOT_SIZE): slots and free slots; the free fraction; misses. */
  stats(): PoolStats {
    const of = (c: SlotClass): ClassStats => ({ size: c.size, total: c.count, free: c.free });
    return {
      classes: this.#classes.map(of),
      reserve: of(this.#reserve),
      freeFraction: this.freeFraction,
      exhausted: this.exhausted,
    };
  }

  #out(slot: PoolSlot, length: number): PoolSlot {
    slot.length = length;
    slot.refs = 1;
    this.inUse++;
    return slot;
  }
}

/** One holder's reference: a class, not a closure, as every transaction makes one. */
class Hold implements Held {
  #slot: PoolSlot | undefined;
  readonly #pool: BufferPool;

  constructor(pool: BufferPool, slot: PoolSlot) {
    this.#pool = pool;
    this.#slot = slot;
  }

  release(): void {
    const slot = this.#slot;
    if (slot === undefined) return;
    this.#slot = undefined;
    this.#pool.release(slot);
  }
}

function slotsFor(bytes: number, size: number): number {
  return Math.max(MIN_SLOTS, Math.floor(bytes / size));
}
