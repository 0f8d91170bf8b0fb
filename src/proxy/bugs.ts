import { errorText, log } from "../log/log.ts";
import type { ProxyCounters } from "./ports.ts";

/**
 * Principle 3: a bug costs one message or one transaction, never the
 * worker. What the core catches is counted by where it was caught
 * (`sipedge_internal_errors_total{where}`) and logged a line a second at most.
 */
export class Bugs {
  readonly #counters: ProxyCounters;

  constructor(counters: ProxyCounters) {
    this.#counters = counters;
  }

  /** A bug: counted by where it was caught, logged a line a second at most. */
  caught(where: string, err: unknown): void {
    const errors = this.#counters.internalErrors;
    errors[where] = (errors[where] ?? 0) + 1;
    // The logger's rate limit keeps it to a line a second, with the count of those left out.
    log.error("internal.error", "internal error (dropped, the worker goes on)", { where, error: errorText(err) });
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
