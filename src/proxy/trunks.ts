import { BlockList, isIPv6 } from "node:net";
import type { Trunk } from "../config/schema.ts";
import { unmapped } from "../transport/address.ts";
import type { Flow } from "../transport/flow.ts";

interface Matcher {
  readonly name: string;
  readonly sources: BlockList;
  readonly certNames: ReadonlySet<string>;
}

/**
 * Which configured trunk a client flow belongs to: the first, in config
 * order, whose CIDRs hold the flow's source address or whose certificate
 * names the flow's verified TLS certificate carries. Decided once per flow.
 */
export class TrunkMatcher {
  readonly #trunks: readonly Matcher[];
  readonly #trusted: ReadonlySet<string>;
  readonly #decided = new WeakMap<Flow, string | null>();

  constructor(trunks: readonly Trunk[]) {
    this.#trunks = trunks.map((t) => {
      const sources = new BlockList();
      for (const s of t.sources) sources.addSubnet(s.address, s.prefix, s.family);
      return { name: t.name, sources, certNames: new Set(t.certNames) };
    });
    this.#trusted = new Set(trunks.filter((t) => t.trusted).map((t) => t.name));
  }

  /**
   * Whether the flow belongs to a trunk configured `trusted` (kept on the
   * priority path under overload). Only over a connection: a datagram's
   * source address is whatever its sender wrote, so over UDP anyone could
   * pose as the carrier and walk past admission.
   */
  trusted(flow: Flow): boolean {
    if (this.#trusted.size === 0 || !flow.reliable) return false;
    const name = this.of(flow);
    return name !== undefined && this.#trusted.has(name);
  }

  get names(): readonly string[] {
    return this.#trunks.map((t) => t.name);
  }

  of(flow: Flow): string | undefined {
    if (this.#trunks.length === 0) return undefined;
    const known = this.#decided.get(flow);
    if (known !== undefined) return known ?? undefined;
    const found = this.#match(flow);
    this.#decided.set(flow, found ?? null);
    return found;
  }

  #match(flow: Flow): string | undefined {
    const address = unmapped(flow.remoteAddress);
    const family = isIPv6(address) ? "ipv6" : "ipv4";
    const names = flow.reliable ? flow.peerNames() : [];
    for (const t of this.#trunks) {
      if (t.sources.check(address, family) || names.some((n) => t.certNames.has(n))) return t.name;
    }
    return undefined;
  }
}
