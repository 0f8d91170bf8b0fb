/**
 * CPU overload (DESIGN.md principle 4): when an IO worker's event loop is
 * busy nearly all the time, datagrams queue in the kernel and calls start
 * to time out, which makes clients retransmit, which adds load. Before that
 * happens new work is rationed: a limit on how many new dialogs and
 * out-of-dialog requests each window may start, cut when the loop is
 * saturated and raised again when it has room (additive increase,
 * multiplicative decrease); the rest get a cheap 503. Work already admitted
 * (in-dialog requests, responses) is never rationed.
 */

/** Loop utilisation (0–1) at which the ration is cut, and under which it grows again. */
const SATURATED = 0.9;
const ROOMY = 0.75;
/** Under this the ration is lifted altogether. */
const IDLE = 0.5;
/** Never fewer new requests per window than this, so service never stops outright. */
const FLOOR = 10;

export class LoadShedder {
  /** New requests a window may start; undefined: no ration. */
  #ration: number | undefined;
  #admitted = 0;
  /** Windows in which the ration cut something. */
  saturatedWindows = 0;

  /** The current ration (for metrics), or undefined when there is none. */
  get ration(): number | undefined {
    return this.#ration;
  }

  /** One new request wants to start: false when this window's ration is spent. */
  take(): boolean {
    if (this.#ration !== undefined && this.#admitted >= this.#ration) return false;
    this.#admitted++;
    return true;
  }

  /** A window ended with the loop busy this fraction of the time. */
  sample(utilization: number): void {
    const admitted = this.#admitted;
    this.#admitted = 0;
    if (utilization >= SATURATED) {
      this.saturatedWindows++;
      this.#ration = Math.max(FLOOR, Math.floor(admitted * 0.8));
    } else if (this.#ration !== undefined) {
      if (utilization < IDLE) this.#ration = undefined;
      else if (utilization < ROOMY) this.#ration = Math.ceil(this.#ration * 1.1) + FLOOR;
    }
  }
}
