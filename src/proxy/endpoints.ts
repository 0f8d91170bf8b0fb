/** How many earlier flows an endpoint remembers, so old tokens still find it. */
const PREVIOUS_FLOWS = 4;

interface Endpoint {
  flow: number;
  expires: number;
  readonly previous: number[];
}

/** The endpoint registry, for a scrape. */
export interface EndpointStats {
  /** Endpoints registered through sipedge (this worker's view of every worker's). */
  readonly registered: number;
  /** Endpoints that came back on a new flow. */
  readonly rebinds: number;
}

/**
 * Endpoints apart from their connections (principle 5): an
 * endpoint is a UA identity — `+sip.instance` and `reg-id` (RFC 5626), else
 * AoR and Contact URI — bound to the flow its last successful REGISTER came
 * over, with the flows it used before. A request addressed to one of its
 * old flows follows it to the current one. Bounded: at most `max`
 * endpoints (the least recently bound go first), each gone when its
 * registration expires.
 */
export class EndpointRegistry {
  #max: number;
  readonly #now: () => number;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #byFlow = new Map<number, Set<string>>();
  /** Endpoints that came back on a new flow. */
  rebinds = 0;

  constructor(max = 100_000, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#endpoints.size;
  }

  stats(): EndpointStats {
    return { registered: this.size, rebinds: this.rebinds };
  }

  /**
   * A successful REGISTER over `flow`: its endpoints are there now, for
   * `expiresMs`. `counted`: false for another worker's news, counted there.
   */
  bind(keys: readonly string[], flow: number, expiresMs: number, counted = true): void {
    for (const key of keys) {
      if (expiresMs <= 0) {
        this.#remove(key);
        continue;
      }
      const e = this.#endpoints.get(key);
      if (e !== undefined && e.flow !== flow) {
        if (counted) this.rebinds++;
        e.previous.unshift(e.flow);
        const forgotten = e.previous.splice(PREVIOUS_FLOWS);
        for (const f of forgotten) this.#unlink(f, key);
        e.flow = flow;
      }
      const now = e ?? { flow, expires: 0, previous: [] };
      now.expires = this.#now() + expiresMs;
      // Re-inserted, so the map's order is the order of last binding.
      this.#endpoints.delete(key);
      this.#endpoints.set(key, now);
      this.#link(flow, key);
    }
    this.#evict();
  }

  /** A new bound (SIGHUP); the least recently bound go at once when it shrank. */
  resize(max: number): void {
    this.#max = max;
    this.#evict();
  }

  #evict(): void {
    while (this.#endpoints.size > this.#max) {
      const [oldest] = this.#endpoints.keys();
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
  }

  /**
   * The flow that an endpoint reached over `flow` uses now: `flow` itself
   * while one of its endpoints is still bound there, else the newest flow
   * any of them moved to; undefined when none is registered any more.
   */
  current(flow: number): number | undefined {
    const keys = this.#byFlow.get(flow);
    if (keys === undefined) return undefined;
    let newest: { flow: number; expires: number } | undefined;
    for (const key of [...keys]) {
      const e = this.#endpoints.get(key);
      if (e === undefined || e.expires <= this.#now()) {
        this.#remove(key);
        continue;
      }
      if (e.flow === flow) return flow;
      if (newest === undefined || e.expires > newest.expires) newest = e;
    }
    return newest?.flow;
  }

  #link(flow: number, key: string): void {
    let keys = this.#byFlow.get(flow);
    if (keys === undefined) {
      keys = new Set();
      this.#byFlow.set(flow, keys);
    }
    keys.add(key);
  }

  #unlink(flow: number, key: string): void {
    const keys = this.#byFlow.get(flow);
    keys?.delete(key);
    if (keys?.size === 0) this.#byFlow.delete(flow);
  }

  #remove(key: string): void {
    const e = this.#endpoints.get(key);
    if (e === undefined) return;
    this.#endpoints.delete(key);
    for (const f of [e.flow, ...e.previous]) this.#unlink(f, key);
  }
}
