import { type EventLoopUtilization, monitorEventLoopDelay, performance } from "node:perf_hooks";
import { log } from "../../log/log.ts";
import type { ProxyCore } from "../../proxy/core.ts";
import type { RationChange } from "../../proxy/shedder.ts";
import type { ListenerAdmission } from "../../transport/listener.ts";
import type { ReadTurns } from "../../transport/udp.ts";

/**
 * How often the CPU ration (proxy/shedder.ts) looks at the event loop, and
 * so the slice a ration is dealt in: 100 ms keeps each window's allowance a
 * small burst (150 new calls at 1 500 calls/s). The ration starts only
 * after SUSTAINED saturated windows in a row (proxy/shedder.ts); a longer
 * window would delay it just as much and deal coarser rations.
 */
const LOAD_WINDOW_MS = 100;

/**
 * TLS handshakes a worker whose loop is saturated still begins per window
 * (20 a second): a few milliseconds of crypto each on a small machine, so
 * new TLS clients still get in, slowly, while established flows keep the
 * loop (transport/listener.ts).
 */
const HANDSHAKES_PER_WINDOW = 2;

/** One worker's load, for a scrape. */
export interface LoadStats {
  /** New requests per second the CPU ration lets in while the loop is saturated; null: no ration. */
  readonly ration: number | null;
  /** Event-loop delay since the last snapshot, in seconds: p50, p99 and max. */
  readonly loopLag: { readonly p50: number; readonly p99: number; readonly max: number };
}

/**
 * How busy and how late one worker's event loop runs. Every LOAD_WINDOW_MS
 * it feeds the proxy's CPU ration with the loop's utilization, rations the
 * listeners' TLS handshakes while the proxy rations calls, and calls
 * `each` (the worker's own look at its buffer pool).
 */
export class LoadWindow {
  /** How late this thread's event loop runs: the one number that shows a worker falling behind. */
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 10 });
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #proxy: Pick<ProxyCore, "ration">;

  /** `sockets`: the worker's UDP sockets, whose read turns say whether a busy loop keeps up. */
  constructor(
    proxy: Pick<ProxyCore, "loadSample" | "ration">,
    admission: ListenerAdmission,
    sockets: readonly { readonly readTurns: ReadTurns }[],
    each: () => void,
  ) {
    this.#proxy = proxy;
    this.#loopDelay.enable();
    let last: EventLoopUtilization = performance.eventLoopUtilization();
    const backlog = new BacklogShare(sockets);
    this.#timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      const { utilization } = performance.eventLoopUtilization(now, last);
      logOverload(proxy.loadSample(utilization, backlog.sinceLast()), utilization, proxy.ration);
      last = now;
      admission.handshakeRation = proxy.ration === undefined ? undefined : HANDSHAKES_PER_WINDOW;
      each();
    }, LOAD_WINDOW_MS);
    this.#timer.unref();
  }

  /** For a scrape: the loop's delay since the last one (the histogram starts afresh) and the ration. */
  stats(): LoadStats {
    const lag = this.#loopDelay;
    const loopLag = { p50: lag.percentile(50) / 1e9, p99: lag.percentile(99) / 1e9, max: lag.max / 1e9 };
    lag.reset();
    const ration = this.#proxy.ration;
    return { ration: ration === undefined ? null : (ration * 1000) / LOAD_WINDOW_MS, loopLag };
  }

  close(): void {
    this.#loopDelay.disable();
    clearInterval(this.#timer);
  }
}

/** Overload on and off, one line each: the ration engaging or releasing (proxy/shedder.ts). */
function logOverload(change: RationChange, utilization: number, ration: number | undefined): void {
  const load = Math.round(utilization * 100) / 100;
  if (change === "engaged") {
    const perSecond = ((ration ?? 0) * 1000) / LOAD_WINDOW_MS;
    log.warn("overload.on", "event loop saturated: new requests rationed", { load, rationPerSecond: perSecond });
  } else if (change === "released") log.info("overload.off", "load back down: ration lifted", { load });
}

/** The share of read turns since the last call that left a backlog, over all the worker's UDP sockets. */
export class BacklogShare {
  readonly #sockets: readonly { readonly readTurns: ReadTurns }[];
  #turns = 0;
  #full = 0;

  constructor(sockets: readonly { readonly readTurns: ReadTurns }[]) {
    this.#sockets = sockets;
  }

  /** undefined: no datagram was read since the last call. */
  sinceLast(): number | undefined {
    let turns = 0;
    let full = 0;
    for (const s of this.#sockets) {
      turns += s.readTurns.turns;
      full += s.readTurns.full;
    }
    const share = turns === this.#turns ? undefined : (full - this.#full) / (turns - this.#turns);
    this.#turns = turns;
    this.#full = full;
    return share;
  }
}
