import { BlockList, isIPv6 } from "node:net";
import type { Trunk, UnknownClient } from "../config/schema.ts";
import { unmapped } from "../transport/address.ts";
import type { Flow } from "../transport/flow.ts";
import type { IdentityRefusal } from "../transport/listener.ts";

interface Matcher {
  readonly name: string;
  readonly sources: BlockList;
  readonly certNames: ReadonlySet<string>;
  readonly requireCert: boolean;
}

/**
 * Who a client flow is, from what its transport vouches for and nothing it
 * sends: a verified TLS certificate, else its source address.
 * - `trunk`: the trunk it is bound to;
 * - `stranger`: a verified certificate that names no trunk (the listener's
 *   `unknownClient` says whether it may stay, as no trunk);
 * - `uncertified`: from a `requireCert` trunk's sources without its
 *   certificate: a connection is refused, a datagram is no trunk's;
 * - `anonymous`: no trunk's.
 */
export type TrunkBinding =
  | { readonly kind: "trunk"; readonly name: string }
  | { readonly kind: "stranger" }
  | { readonly kind: "uncertified"; readonly trunk: string }
  | { readonly kind: "anonymous" };

const ANONYMOUS: TrunkBinding = { kind: "anonymous" };
const STRANGER: TrunkBinding = { kind: "stranger" };

/**
 * Which configured trunk a client flow belongs to, decided once per flow
 * (a connection's certificate and address do not change) and kept with
 * it: every message on the flow is that trunk's, whatever its From,
 * P-Asserted-Identity or any other header claims.
 */
export class TrunkMatcher {
  #trunks: readonly Matcher[] = [];
  #trusted: ReadonlySet<string> = new Set();
  #decided = new WeakMap<Flow, TrunkBinding>();

  constructor(trunks: readonly Trunk[]) {
    this.reconfigure(trunks);
  }

  /** SIGHUP: the trunks of the new config; each flow's trunk is decided again by them. */
  reconfigure(trunks: readonly Trunk[]): void {
    this.#trunks = trunks.map((t) => {
      const sources = new BlockList();
      for (const s of t.sources) sources.addSubnet(s.address, s.prefix, s.family);
      return { name: t.name, sources, certNames: new Set(t.certNames), requireCert: t.requireCert };
    });
    this.#trusted = new Set(trunks.filter((t) => t.trusted).map((t) => t.name));
    this.#decided = new WeakMap();
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

  /** The trunk whose traffic the flow's messages count as, if any. */
  of(flow: Flow): string | undefined {
    const b = this.binding(flow);
    return b.kind === "trunk" ? b.name : undefined;
  }

  /** Why a new connection may not stay, given its listener's `unknownClient`; undefined: it may. */
  refusal(connection: Flow, unknownClient: UnknownClient): IdentityRefusal | undefined {
    const b = this.binding(connection);
    if (b.kind === "uncertified") return "certificate_required";
    return b.kind === "stranger" && unknownClient === "refuse" ? "unknown_client" : undefined;
  }

  binding(flow: Flow): TrunkBinding {
    if (this.#trunks.length === 0) return flow.reliable && flow.peerNames().length > 0 ? STRANGER : ANONYMOUS;
    const known = this.#decided.get(flow);
    if (known !== undefined) return known;
    const found = this.#match(flow);
    this.#decided.set(flow, found);
    return found;
  }

  #match(flow: Flow): TrunkBinding {
    // A verified certificate is the identity: its trunk, or none, never another's by address.
    const names = flow.reliable ? flow.peerNames() : [];
    if (names.length > 0) {
      const t = this.#trunks.find((t) => names.some((n) => t.certNames.has(n)));
      return t === undefined ? STRANGER : { kind: "trunk", name: t.name };
    }
    const address = unmapped(flow.remoteAddress);
    const family = isIPv6(address) ? "ipv6" : "ipv4";
    const from = this.#trunks.filter((t) => t.sources.check(address, family));
    const byAddress = from.find((t) => !t.requireCert);
    if (byAddress !== undefined) return { kind: "trunk", name: byAddress.name };
    const certified = from[0];
    // Over UDP nothing could show a certificate: the datagram is simply no trunk's.
    if (certified === undefined || !flow.reliable) return ANONYMOUS;
    return { kind: "uncertified", trunk: certified.name };
  }
}
