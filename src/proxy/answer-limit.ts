import { isLoopbackPeer } from "../transport/address.ts";

/**
 * Answers sipedge makes itself (no transaction: refusals, OPTIONS, 400s)
 * to one UDP source address in a second, at most. A datagram's source is
 * the sender's word: a flood "from" a victim would otherwise be reflected
 * at it, one answer per datagram. Connections prove their address and are
 * not limited. Over the limit the request is dropped unanswered (counted);
 * a real UA sends it again (RFC 3261 §17.1.1.2) and is answered next second.
 */
export class AnswerLimit {
  #perSecond: number;
  readonly #now: () => number;
  #window = 0;
  /** Answers per source this second; emptied each second, so at most MAX_SOURCES entries. */
  readonly #counts = new Map<string, number>();

  constructor(perSecond: number, now: () => number = Date.now) {
    this.#perSecond = perSecond;
    this.#now = now;
  }

  /** SIGHUP. */
  set perSecond(n: number) {
    this.#perSecond = n;
  }

  /**
   * Whether one more answer may go to `address` now, counting it when it
   * may. Loopback sources are not limited: the kernel drops them as martians
   * when they arrive from a network (so they cannot be forged from outside),
   * and local load tools and monitors send from them.
   */
  take(address: string): boolean {
    if (isLoopbackPeer(address)) return true;
    const now = this.#now();
    if (now - this.#window >= 1000) {
      this.#window = now;
      this.#counts.clear();
    }
    // Bounded memory under a flood from forged sources: past MAX_SOURCES in a second, the sources
    // not yet counted share one budget (so a monitor's OPTIONS still gets answers, at that rate).
    const key = this.#counts.has(address) || this.#counts.size < MAX_SOURCES ? address : OVERFLOW;
    const n = this.#counts.get(key) ?? 0;
    if (n >= this.#perSecond) return false;
    this.#counts.set(key, n + 1);
    return true;
  }
}

/** Distinct sources answered in one second: 65 536 entries are a few MiB of heap at most. */
const MAX_SOURCES = 65_536;
/** The budget shared by the sources beyond MAX_SOURCES in one second (no address is spelt so). */
const OVERFLOW = "*";
