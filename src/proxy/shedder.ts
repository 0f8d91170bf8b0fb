/**
 * CPU overload (principle 4): when an IO worker's thread has no CPU time to
 * spare, datagrams queue in the kernel and calls start to time out, which
 * makes clients retransmit, which adds load. Before that happens new work
 * is rationed: a limit on how many new dialogs and out-of-dialog requests
 * each window may start, steered so the thread stays just under saturation
 * (the rest get a cheap 503). Work already admitted (in-dialog requests,
 * responses) is never rationed. The load is smoothed over a few windows so
 * one garbage collection is not a flood, and a busy thread counts as
 * saturated only while its UDP sockets stay backlogged (BACKLOGGED): near
 * capacity a thread can be busy all the time and still keep up.
 *
 * Which load is judged (LoadSample): the CPU time the thread itself used,
 * not the share of wall-clock time its event loop was busy. On shared
 * cores (load generators beside the balancer, a VM's steal time) a thread
 * that is runnable but descheduled, or in the middle of a handshake's
 * crypto when the scheduler takes the core, reads as a loop busy all the
 * time while it used half a CPU (bench:tls, RSA-4096: 836 of 1 735
 * handshakes refused at 46 % of a CPU): it could do more, it is only
 * waiting its turn, and refusing clients does not give it the core. In a
 * window with UDP traffic the load is the loop's busy share still, since
 * the backlog decides there: drained read turns say the thread keeps up
 * however busy it reads, full ones that work waits in the kernel whatever
 * kept the thread from it. On an overcommitted host, where the thread gets
 * 60 % of a core however busy it is, that backlog is the one sign of
 * overload (the thread's CPU share never reaches SATURATED). So a flood
 * over UDP is judged as the measurements below were made; the CPU share in
 * drained windows would pull the smoothed load under SATURATED between
 * backlogged ones, and the ration would grow through a flood. A worker with
 * no UDP traffic is judged by its CPU alone; on an overcommitted host its
 * TLS and TCP clients are bounded by the listener's handshake limit and
 * TCP's own flow control.
 */

/** Smoothed load (0–1, LoadSample) the ration steers to; above SATURATED it is cut, under IDLE lifted. */
const TARGET = 0.85;
const SATURATED = 0.9;
const IDLE = 0.6;
/** Weight of the newest window in the smoothed shares. */
const SMOOTHING = 0.5;
/** Never fewer new requests per window than this, so service never stops outright. */
const FLOOR = 10;
/** The most a ration grows in one window. */
const MAX_GROWTH = 1.25;
/**
 * Consecutive windows (of LOAD_WINDOW_MS, 100 ms: runtime/worker.ts) the
 * smoothed load must stay at or above SATURATED before a ration starts.
 * Measured (sipp UAC -> 1 IO worker -> 2 sipp UAS, 15 s per rate, the 2
 * cores shared with the sipps): at 1 000 calls/s the longest such run was
 * 0-1 window in three runs, in the warm-up, and a ration from that window
 * refused 22 of 15 000 calls; a fourth run, on the machine running slower
 * (0.82 CPU-s per 1 000 calls against 0.60-0.76), had runs of 4 and 5 and
 * still refused 220. The storm test (test/integration/storm.test.ts, a flood
 * several times a worker's capacity) bounds it from above: waiting 5
 * windows it lost no call, 10 lost 947 of 23 680 and 30 lost 3 928 (the
 * kernel's queues overflowed before the ration started). The load alone
 * tells no more: near capacity the loop is busy 100 % for seconds while it
 * keeps up (at 1 800 calls/s runs of 14-34 windows with no call failing, at
 * 2 000 runs of 30-55), which an overload's first second looks the same as;
 * hence the backlog test below.
 */
const SUSTAINED = 5;
/**
 * The share of a window's UDP read turns that must come back full for the
 * window to count as saturated (transport/udp.ts ReadTurns). A loop that
 * keeps up drains its sockets each turn, however busy it is; one that falls
 * behind finds a full batch waiting every turn. Measured (sipp UAC -> 1 IO
 * worker -> 2 sipp UAS, the 2 cores shared with test runs, utilisation /
 * read turns / full turns per 100 ms window): keeping up at 1 000 calls/s
 * read 0.90/56/0, 0.94/48/3, 0.95/43/4; falling behind (calls failing)
 * 1.00/22/22, 0.98/22/18, 1.00/28/28. Half separates them with room.
 */
const BACKLOGGED = 0.5;

/** One window of a worker's load, each a share (0–1) of the window's wall-clock time. */
export interface LoadSample {
  /** CPU time the worker's thread used (process.threadCpuUsage): what it did, not what it waited for. */
  readonly cpu: number;
  /**
   * Time its event loop was not idle (performance.eventLoopUtilization),
   * which also counts time the thread was runnable but had no core.
   */
  readonly loop: number;
  /** The share of its UDP read turns that came back full (transport/udp.ts); undefined: no datagram was read. */
  readonly backlog?: number | undefined;
}

/**
 * What one window's sample did to the ration: `engaged` (overload on: new
 * work is rationed from now on), `released` (overload off), or neither.
 * The shedder only says so; the worker logs it (runtime/worker/load-window.ts).
 */
export type RationChange = "engaged" | "released" | undefined;

export class LoadShedder {
  /** New requests a window may start; undefined: no ration. */
  #ration: number | undefined;
  #admitted = 0;
  /** The thread's CPU share and the loop's busy share, each smoothed over the windows. */
  #cpu = 0;
  #loop = 0;
  /** Saturated windows in a row, up to now. */
  #busy = 0;
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

  /**
   * A window ended with this load (`backlog` undefined, as on a worker that
   * only has connections: the thread's CPU alone decides).
   */
  sample({ cpu, loop, backlog }: LoadSample): RationChange {
    const admitted = this.#admitted;
    this.#admitted = 0;
    this.#cpu = SMOOTHING * cpu + (1 - SMOOTHING) * this.#cpu;
    this.#loop = SMOOTHING * loop + (1 - SMOOTHING) * this.#loop;
    // Reading UDP, the backlog tells a busy loop that keeps up from one that falls behind, for want of time or of a core.
    const load = Math.max(backlog === undefined ? this.#cpu : this.#loop, 0.01);
    const drained = backlog !== undefined && backlog < BACKLOGGED;
    // A busy thread whose sockets are drained each turn keeps up: no cut, and the busy run starts again.
    if (load >= SATURATED && !drained) {
      this.#busy++;
      // Not yet sustained: a warm-up or a pause, which the thread catches up with.
      if (this.#ration === undefined && this.#busy < SUSTAINED) return undefined;
      this.saturatedWindows++;
      const change = this.#ration === undefined ? "engaged" : undefined;
      // Proportional: admit what would have kept the thread at the target.
      this.#ration = Math.max(FLOOR, Math.floor((admitted * TARGET) / load));
      return change;
    }
    this.#busy = 0;
    if (this.#ration === undefined) return undefined;
    // Fewer came than the ration allowed while the sockets drained (a warm-up's backlog has cleared): it limits nothing any more.
    if (load < IDLE || (drained && admitted < this.#ration)) {
      this.#ration = undefined;
      return "released";
    }
    if (drained || load < TARGET)
      this.#ration = Math.ceil(this.#ration * (drained ? MAX_GROWTH : Math.min(MAX_GROWTH, TARGET / load))) + FLOOR;
    return undefined;
  }
}
