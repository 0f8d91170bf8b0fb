import type { ProxyCounters } from "./ports.ts";

/**
 * Principle 3: a bug costs one message or one transaction, never the
 * worker. What the core catches is counted by where it was caught
 * (`sipedge_internal_errors_total{where}`) and logged a line a second at most.
 */
export class Bugs {
  readonly #counters: ProxyCounters;
  /** When a caught bug was last logged: one line a second at most. */
  #logged = 0;

  constructor(counters: ProxyCounters) {
    this.#counters = counters;
  }

  /** A bug: counted by where it was caught, logged a line a second at most. */
  caught(where: string, err: unknown): void {
    const errors = this.#counters.internalErrors;
    errors[where] = (errors[where] ?? 0) + 1;
    const now = Date.now();
    if (now - this.#logged >= 1000) {
      this.#logged = now;
      console.error(`sipedge: internal error in ${where} handling (dropped, the worker goes on):`, err);
    }
  }

  /**
   * What runs outside a message (a timer, a transaction's timeout, a closed
   * connection) has the same boundary as a message: a bug there costs that
   * one transaction, never the worker.
   */
  safely(where: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.caught(where, err);
    }
  }
}
