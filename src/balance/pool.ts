import type { Algorithm, Member } from "../config/schema.ts";

/** A pool member with the state the dispatcher keeps for it. */
export class Backend {
  readonly member: Member;
  /** Active dialogs (INVITE 2xx until BYE or expiry), for least-calls. */
  calls = 0;
  /** Dialogs set up on it since start: its calls per second is the rate of this. */
  started = 0;
  /** Passive health: no new requests until then (ms since epoch). */
  suspectUntil = 0;
  /** Consecutive failed transactions (silence, timeout, a failover answer such as 503). */
  failStreak = 0;
  /** Smooth weighted round-robin state. */
  current = 0;
  /** What the active health checks say (the health thread's shared table); up until told otherwise. */
  up: () => boolean = () => true;
  /** The member's name, hashed: what its scores are mixed with. */
  readonly #seed: number;

  constructor(member: Member) {
    this.member = member;
    this.#seed = hash32(member.name);
  }

  get name(): string {
    return this.member.name;
  }

  available(now: number): boolean {
    return this.member.weight > 0 && now >= this.suspectUntil && this.up();
  }

  /**
   * Rendezvous (highest random weight) score of a key on this backend:
   * removing a backend moves only the keys it won, and they come back
   * when it returns. Weighted per Schindelhauer & Schomaker's log method.
   * `key`: hash32 of the Call-ID or AoR, hashed once for every backend.
   */
  score(key: number): number {
    const u = (mix32(key ^ this.#seed) + 1) / 4294967297;
    return -this.member.weight / Math.log(u);
  }
}

/** A named backend pool and its selection algorithm. */
export class Pool {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly backends: readonly Backend[];
  #next = 0;

  constructor(name: string, algorithm: Algorithm, members: readonly Member[]) {
    this.name = name;
    this.algorithm = algorithm;
    this.backends = members.map((m) => new Backend(m));
  }

  /**
   * The backend for a request, skipping those already tried and those
   * unavailable; `key` is the Call-ID (or the AoR for REGISTER).
   */
  select(key: string, tried: ReadonlySet<Backend>, now: number, byKey: boolean): Backend | undefined {
    const eligible = this.backends.filter((b) => !tried.has(b) && b.available(now));
    if (eligible.length === 0) return undefined;
    if (byKey || this.algorithm === "hash-callid") return highestScore(eligible, key);
    switch (this.algorithm) {
      case "round-robin": {
        const b = eligible[this.#next % eligible.length] as Backend;
        this.#next = (this.#next + 1) % 1_000_000_007;
        return b;
      }
      case "weighted":
        return smoothWeighted(eligible);
      case "least-calls":
        return eligible.reduce((best, b) => (b.calls / b.member.weight < best.calls / best.member.weight ? b : best));
    }
  }
}

function highestScore(backends: readonly Backend[], key: string): Backend {
  const hashed = hash32(key);
  let best = backends[0] as Backend;
  let bestScore = best.score(hashed);
  for (let i = 1; i < backends.length; i++) {
    const b = backends[i] as Backend;
    const s = b.score(hashed);
    if (s > bestScore) {
      best = b;
      bestScore = s;
    }
  }
  return best;
}

/** nginx's smooth weighted round-robin: even spread, exact proportions. */
function smoothWeighted(backends: readonly Backend[]): Backend {
  let total = 0;
  let best = backends[0] as Backend;
  for (const b of backends) {
    b.current += b.member.weight;
    total += b.member.weight;
    if (b.current > best.current) best = b;
  }
  best.current -= total;
  return best;
}

/**
 * A 32-bit hash of a string: FNV-1a over its UTF-16 code units, then
 * mix32. Not a secret: a peer can choose Call-IDs that land on one
 * backend, as it could with SHA-1, which this replaced (two one-shot SHA-1
 * digests a call, a Buffer and a joined string each, were 2.3 % of the IO
 * thread at 1 000 calls/s in perf record; this is a loop over the chars).
 */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** MurmurHash3's finalizer: every input bit flips each output bit with probability ~1/2 (what FNV-1a alone lacks). */
function mix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
