import { BlockList, isIPv6 } from "node:net";
import type { Trunk } from "../config/schema.ts";
import type { ConnectionGate, GateRefusal } from "../transport/listener.ts";

/**
 * Source addresses are counted in this many buckets per worker (by a hash
 * of the address): two addresses that share a bucket share its limit, so a
 * collision can only make the per-address limit stricter, never looser.
 */
const BUCKETS = 4096;
/** Per worker: its total, then its buckets. */
const CELLS = 1 + BUCKETS;

/** The shared memory the supervisor makes once and every IO worker counts in. */
export function connectionCounts(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * CELLS * workers);
}

/** A worker that died took its connections with it: its counts start again from nothing. */
export function resetConnectionCounts(counts: SharedArrayBuffer, worker: number): void {
  new Int32Array(counts).fill(0, worker * CELLS, (worker + 1) * CELLS);
}

export interface GateLimits {
  /** Client connections in the whole process (limits.maxConnections). */
  readonly total: number;
  /** Client connections from one source address (limits.maxConnectionsPerIp); trusted trunks' sources are exempt. */
  readonly perAddress: number;
}

/**
 * limits.maxConnections and limits.maxConnectionsPerIp across every IO
 * worker without a lock: each worker writes only its own cells of the
 * shared counts and reads everyone's (a race lets two workers each admit
 * one over the limit at the same instant, never more).
 */
export class SharedConnectionGate implements ConnectionGate {
  readonly #counts: Int32Array;
  readonly #worker: number;
  readonly #workers: number;
  #limits: GateLimits;
  #exempt: BlockList;

  constructor(
    counts: SharedArrayBuffer,
    worker: number,
    workers: number,
    limits: GateLimits,
    trunks: readonly Trunk[],
  ) {
    this.#counts = new Int32Array(counts);
    this.#worker = worker;
    this.#workers = workers;
    this.#limits = limits;
    this.#exempt = trustedSources(trunks);
  }

  /** SIGHUP: new limits for new connections; those open stay. */
  reconfigure(limits: GateLimits, trunks: readonly Trunk[]): void {
    this.#limits = limits;
    this.#exempt = trustedSources(trunks);
  }

  enter(address: string): GateRefusal | undefined {
    if (this.#sum(0) >= this.#limits.total) return "limit";
    const bucket = 1 + bucketOf(bare(address));
    if (this.#sum(bucket) >= this.#limits.perAddress && !this.trusted(address)) return "per_ip";
    const own = this.#worker * CELLS;
    Atomics.add(this.#counts, own, 1);
    Atomics.add(this.#counts, own + bucket, 1);
    return undefined;
  }

  leave(address: string): void {
    const own = this.#worker * CELLS;
    Atomics.sub(this.#counts, own, 1);
    Atomics.sub(this.#counts, own + 1 + bucketOf(bare(address)), 1);
  }

  #sum(cell: number): number {
    let n = 0;
    for (let w = 0; w < this.#workers; w++) n += Atomics.load(this.#counts, w * CELLS + cell);
    return n;
  }

  trusted(address: string): boolean {
    const a = bare(address);
    return this.#exempt.check(a, isIPv6(a) ? "ipv6" : "ipv4");
  }
}

function trustedSources(trunks: readonly Trunk[]): BlockList {
  const list = new BlockList();
  for (const t of trunks) {
    if (!t.trusted) continue;
    for (const s of t.sources) list.addSubnet(s.address, s.prefix, s.family);
  }
  return list;
}

/** A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: one address, one count. */
function bare(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/** FNV-1a over the address text: cheap, and spread enough for buckets. */
function bucketOf(address: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}
