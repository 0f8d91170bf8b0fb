/**
 * CPU overload (principle 4): when an IO worker's event loop is
 * busy nearly all the time, datagrams queue in the kernel and calls start
 * to time out, which makes clients retransmit, which adds load. Before that
 * happens new work is rationed: a limit on how many new dialogs and
 * out-of-dialog requests each window may start, steered so the loop stays
 * just under saturation (the rest get a cheap 503). Work already admitted
 * (in-dialog requests, responses) is never rationed. The loop's load is
 * smoothed over a few windows so one garbage collection is not a flood.
 */

/** Smoothed loop utilisation (0–1) the ration steers to; above SATURATED it is cut, under IDLE lifted. */
const TARGET = 0.85;
const SATURATED = 0.9;
const IDLE = 0.6;
/** Weight of the newest window in the smoothed utilisation. */
const SMOOTHING = 0.5;
/** Never fewer new requests per window than this, so service never stops outright. */
const FLOOR = 10;
/** The most a ration grows in one window. */
const MAX_GROWTH = 1.25;

export class LoadShedder {
  /** New requests a window may start; undefined: no ration. */
  #ration: number | undefined;
  #admitted = 0;
  #load = 0;
  /** Windows in which the ration was cut. */
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
    this.#load = SMOOTHING * utilization + (1 - SMOOTHING) * this.#load;
    const load = Math.max(this.#load, 0.01);
    if (load >= SATURATED) {
      this.saturatedWindows++;
      // Proportional: admit what would have kept the loop at the target.
      this.#ration = Math.max(FLOOR, Math.floor((admitted * TARGET) / load));
    } else if (this.#ration !== undefined) {
      if (load < IDLE) this.#ration = undefined;
      else if (load < TARGET) this.#ration = Math.ceil(this.#ration * Math.min(MAX_GROWTH, TARGET / load)) + FLOOR;
    }
  }
}
