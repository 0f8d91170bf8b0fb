import { firstTicketKeys, newTicketKey, type TicketKeys } from "../transport/ticket-keys.ts";

/**
 * The session ticket keys every IO worker shares, made and rotated by the
 * supervisor (it owns what crosses workers): a client resumes its session
 * on whichever worker the kernel's SO_REUSEPORT hands its next connection.
 * Every `periodMs` a new key takes over and the one before stays
 * accepted, so a key opens tickets for two periods while a ticket is good
 * for one (the listeners' sessionTimeout): no ticket outlives its key. The
 * keys live in memory only, never on disk or in a log; a restart makes new
 * ones (every ticket then costs one full handshake), a reload keeps them.
 */
export class TicketKeyRotation {
  #keys: TicketKeys = firstTicketKeys();
  readonly #timer: ReturnType<typeof setInterval>;

  /** `rotated`: told each new pair, to pass to every worker. */
  constructor(periodMs: number, rotated: (keys: TicketKeys) => void) {
    this.#timer = setInterval(() => {
      this.#keys = { current: newTicketKey(), previous: this.#keys.current };
      rotated(this.#keys);
    }, periodMs);
    // The rotation alone must not keep the process alive.
    this.#timer.unref();
  }

  /** The keys now: what a worker starting (or replacing one) begins with. */
  get keys(): TicketKeys {
    return this.#keys;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
