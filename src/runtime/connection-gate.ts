import { createHash } from "node:crypto";
import { BlockList, isIPv6 } from "node:net";
import type { Trunk } from "../config/schema.ts";
import { ipBytes, unmapped } from "../transport/address.ts";
import type { ConnectionGate, GateRefusal } from "../transport/listener.ts";
import { CONNECTION_BUCKETS, CONNECTION_CELLS, CONNECTION_HASHES, CONNECTION_KEY_BYTES } from "./shared-memory.ts";

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
  readonly #key: Uint8Array;
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
    this.#counts = new Int32Array(counts, CONNECTION_KEY_BYTES);
    this.#key = new Uint8Array(counts, 0, CONNECTION_KEY_BYTES).slice();
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
    const cells = this.#cellsOf(address);
    if (this.#least(cells) >= this.#limits.perAddress && !this.trusted(address)) return "per_ip";
    this.#add(cells, 1);
    return undefined;
  }

  leave(address: string): void {
    this.#add(this.#cellsOf(address), -1);
  }

  #add(cells: Int32Array, n: number): void {
    const own = this.#worker * CONNECTION_CELLS;
    Atomics.add(this.#counts, own, n);
    for (const cell of cells) Atomics.add(this.#counts, own + cell, n);
  }

  /** The address's count: the least of its cells' (each also counts whoever shares it). */
  #least(cells: Int32Array): number {
    let least = Number.MAX_SAFE_INTEGER;
    for (const cell of cells) least = Math.min(least, this.#sum(cell));
    return least;
  }

  /**
   * Where an address is counted (shared-memory.ts: a count-min sketch).
   * An IPv4 address counts alone; an IPv6 one by its /64, the smallest
   * block a site is given (RFC 6177): a host picks any of its 2^64
   * addresses at will, so counting each would be no limit at all.
   * SHA-256 keyed, one digest for all the cells: once per connection, not
   * per message. Filled in place: read before the next call.
   */
  #cellsOf(address: string): Int32Array {
    const a = unmapped(address);
    const digest = createHash("sha256")
      .update(this.#key)
      .update(isIPv6(a) ? prefix64(a) : a)
      .digest();
    for (let i = 0; i < CONNECTION_HASHES; i++) CELLS[i] = 1 + (digest.readUInt32BE(4 * i) % CONNECTION_BUCKETS);
    return CELLS;
  }

  #sum(cell: number): number {
    let n = 0;
    for (let w = 0; w < this.#workers; w++) n += Atomics.load(this.#counts, w * CONNECTION_CELLS + cell);
    return n;
  }

  trusted(address: string): boolean {
    const a = unmapped(address);
    return this.#exempt.check(a, isIPv6(a) ? "ipv6" : "ipv4");
  }
}

/** One thread's gate at a time fills it (runtime/connection-gate.ts #cellsOf). */
const CELLS = new Int32Array(CONNECTION_HASHES);

function trustedSources(trunks: readonly Trunk[]): BlockList {
  const list = new BlockList();
  for (const t of trunks) {
    if (!t.trusted) continue;
    for (const s of t.sources) list.addSubnet(s.address, s.prefix, s.family);
  }
  return list;
}

/** The first four groups of an IPv6 address, in one spelling whatever the text's (zeros elided or not, any case). */
export function prefix64(address: string): string {
  const bytes = ipBytes(address) ?? Buffer.alloc(8);
  return [0, 2, 4, 6].map((i) => bytes.readUInt16BE(i).toString(16)).join(":");
}
