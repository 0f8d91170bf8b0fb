import { createHash } from "node:crypto";
import type { Config } from "../config/schema.ts";
import { BackendState, type HealthTable } from "../health/state.ts";
import type { Dispatcher, Target } from "../proxy/ports.ts";
import type { SipRequest } from "../sip/index.ts";
import { unmapped } from "../transport/address.ts";
import type { TransportName } from "../transport/flow.ts";
import { type Backend, Pool } from "./pool.ts";

/** Dialogs tracked for least-calls; the oldest are forgotten past this. */
const MAX_TRACKED_DIALOGS = 200_000;

export interface CallCounts {
  readonly backends: Readonly<Record<string, { readonly active: number; readonly started: number }>>;
  readonly trunks: Readonly<Record<string, number>>;
}

export interface PassiveHealth {
  /** Failed transactions in a row (silence, timeout, 503) that make a backend suspect. */
  readonly suspectAfter: number;
  /** How long a suspect backend gets no new requests (until probes, [health], say otherwise). */
  readonly suspectFor: number;
}

/**
 * The load balancer behind the proxy core: picks a backend from the default
 * pool (the first configured) per its algorithm, REGISTER by AoR so a UA's
 * registrations land on one registrar, and keeps passive health and the
 * per-backend dialog counts. Owned by one IO worker.
 */
export class PoolDispatcher implements Dispatcher {
  #pools: readonly Pool[] = [];
  #health: PassiveHealth;
  readonly #dialogs = new Map<string, { backend: Backend; trunk: string | undefined }>();
  /** Active dialogs per inbound trunk. */
  readonly #trunkCalls = new Map<string, number>();
  readonly #byTarget = new Map<Target, Backend>();
  readonly #byName = new Map<string, Backend>();
  /** Members by IP address: the backend side's allow-list. */
  readonly #byAddress = new Map<string, Backend[]>();
  readonly #now: () => number;
  #table: HealthTable | undefined;

  /** `table`: the health thread's published states; without one every backend counts as up. */
  constructor(
    config: Pick<Config, "backends">,
    health: PassiveHealth,
    table?: HealthTable,
    now: () => number = Date.now,
  ) {
    this.#health = health;
    this.#now = now;
    this.#table = table;
    this.reconfigure(config, health);
  }

  get pools(): readonly Pool[] {
    return this.#pools;
  }

  /**
   * SIGHUP: new pools from a new config. A member that keeps its name keeps
   * its state (dialog count, suspect mark); dialogs on removed members are
   * forgotten. Transactions under way finish on the targets they have.
   */
  reconfigure(
    config: Pick<Config, "backends">,
    health: PassiveHealth,
    table: HealthTable | undefined = this.#table,
  ): void {
    this.#table = table;
    const old = new Map<string, Backend>();
    for (const pool of this.#pools) for (const b of pool.backends) old.set(b.name, b);
    this.#pools = config.backends.map((p) => new Pool(p.name, p.algorithm, p.members));
    this.#health = health;
    this.#byTarget.clear();
    this.#byName.clear();
    this.#byAddress.clear();
    for (const pool of this.#pools) {
      for (const b of pool.backends) {
        const before = old.get(b.name);
        if (before !== undefined) {
          b.calls = before.calls;
          b.started = before.started;
          b.suspectUntil = before.suspectUntil;
          b.failStreak = before.failStreak;
        }
        const table = this.#table;
        if (table !== undefined) b.up = () => table.state(b.name) === BackendState.Up;
        this.#byTarget.set(b.member, b);
        this.#byName.set(b.name, b);
        const here = this.#byAddress.get(b.member.host) ?? [];
        here.push(b);
        this.#byAddress.set(b.member.host, here);
      }
    }
    for (const [key, d] of this.#dialogs) {
      const now = this.#byName.get(d.backend.name);
      if (now === undefined) this.#forget(key);
      else this.#dialogs.set(key, { backend: now, trunk: d.trunk });
    }
  }

  pick(req: SipRequest, tried: ReadonlySet<Target>): Target | undefined {
    const pool = this.#pools[0];
    if (pool === undefined) return undefined;
    const register = req.method === "REGISTER";
    const key = register ? aorOf(req) : callIdOf(req);
    const skip = new Set<Backend>();
    for (const t of tried) {
      const b = this.#byTarget.get(t);
      if (b !== undefined) skip.add(b);
    }
    return pool.select(key, skip, this.#now(), register)?.member;
  }

  member(name: string): Target | undefined {
    return this.#byName.get(name)?.member;
  }

  /**
   * Members share an address when they are ports of one host: the one that
   * listens on the source port with that transport, else one with that
   * transport (a stream from a backend comes from a port of its own), else the first.
   */
  memberAt(address: string, port: number, transport: TransportName): Target | undefined {
    const here = this.#byAddress.get(unmapped(address));
    if (here === undefined) return undefined;
    // Called for every backend-side message: no allocation on the way.
    let sameTransport: Target | undefined;
    for (const { member } of here) {
      if (member.transport !== transport) continue;
      if (member.port === port) return member;
      sameTransport ??= member;
    }
    return sameTransport ?? here[0]?.member;
  }

  ready(): boolean {
    const now = this.#now();
    return this.#pools.some((p) => p.backends.some((b) => b.available(now)));
  }

  answered(t: Target): void {
    const b = this.#byTarget.get(t);
    if (b === undefined) return;
    b.failStreak = 0;
    b.suspectUntil = 0;
  }

  failed(t: Target): void {
    const b = this.#byTarget.get(t);
    if (b === undefined) return;
    if (++b.failStreak >= this.#health.suspectAfter) b.suspectUntil = this.#now() + this.#health.suspectFor;
  }

  dialogStarted(t: Target, callId: string, trunk: string | undefined): void {
    const b = this.#byTarget.get(t);
    const key = dialogKey(callId);
    if (b === undefined || this.#dialogs.has(key)) return;
    this.#dialogs.set(key, { backend: b, trunk });
    b.calls++;
    b.started++;
    if (trunk !== undefined) this.#trunkCalls.set(trunk, (this.#trunkCalls.get(trunk) ?? 0) + 1);
    if (this.#dialogs.size > MAX_TRACKED_DIALOGS) {
      const [oldest] = this.#dialogs.keys();
      if (oldest !== undefined) this.#forget(oldest);
    }
  }

  dialogEnded(callId: string): void {
    this.#forget(dialogKey(callId));
  }

  #forget(key: string): void {
    const d = this.#dialogs.get(key);
    if (d === undefined) return;
    this.#dialogs.delete(key);
    d.backend.calls--;
    if (d.trunk !== undefined) this.#trunkCalls.set(d.trunk, (this.#trunkCalls.get(d.trunk) ?? 1) - 1);
  }

  /** Active dialogs and dialogs set up, per backend; active dialogs per trunk (for metrics). */
  calls(): CallCounts {
    const backends: Record<string, { active: number; started: number }> = {};
    for (const pool of this.#pools) {
      for (const b of pool.backends) backends[b.name] = { active: b.calls, started: b.started };
    }
    return { backends, trunks: Object.fromEntries(this.#trunkCalls) };
  }
}

/**
 * The tracked dialogs' key: a Call-ID as it is up to 64 bytes (almost all
 * are), else its SHA-1. A Call-ID is the peer's choice, up to the message
 * size: 200 000 tracked dialogs keyed by 64 KiB Call-IDs would be 12 GiB.
 */
function dialogKey(callId: string): string {
  return callId.length <= 64 ? callId : createHash("sha1").update(callId, "latin1").digest("base64");
}

function callIdOf(req: SipRequest): string {
  const id = req.callId();
  return id.ok ? id.value : "";
}

/** RFC 3261 §10.3: the AoR is the To URI of a REGISTER. */
function aorOf(req: SipRequest): string {
  const to = req.to();
  return to.ok ? to.value.uri.toLowerCase() : callIdOf(req);
}
