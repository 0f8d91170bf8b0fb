import { createHash } from "node:crypto";
import { BlockList, isIPv6 } from "node:net";
import type { Trunk } from "../config/schema.ts";
import { ipBytes, unmapped } from "../transport/address.ts";
import type { ConnectionGate, GateRefusal } from "../transport/listener.ts";
import { CONNECTION_BUCKETS, CONNECTION_CELLS, CONNECTION_KEY_BYTES } from "./shared-memory.ts";

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
    const bucket = 1 + this.#bucketOf(address);
    if (this.#sum(bucket) >= this.#limits.perAddress && !this.trusted(address)) return "per_ip";
    const own = this.#worker * CONNECTION_CELLS;
    Atomics.add(this.#counts, own, 1);
    Atomics.add(this.#counts, own + bucket, 1);
    return undefined;
  }

  leave(address: string): void {
    const own = this.#worker * CONNECTION_CELLS;
    Atomics.sub(this.#counts, own, 1);
    Atomics.sub(this.#counts, own + 1 + this.#bucketOf(address), 1);
  }

  /**
   * An IPv4 address counts alone; an IPv6 one by its /64, the smallest
   * block a site is given (RFC 6177): a host picks any of its 2^64
   * addresses at will, so counting each would be no limit at all.
   * SHA-256 keyed: once per connection, not per message.
   */
  #bucketOf(address: string): number {
    const a = unmapped(address);
    const counted = isIPv6(a) ? prefix64(a) : a;
    return createHash("sha256").update(this.#key).update(counted).digest().readUInt32BE(0) % CONNECTION_BUCKETS;
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
