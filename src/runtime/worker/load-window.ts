import { createHistogram, performance } from "node:perf_hooks";
import { log } from "../../log/log.ts";
import type { ProxyCore } from "../../proxy/core.ts";
import type { LoadSample, RationChange } from "../../proxy/shedder.ts";
import type { ListenerAdmission } from "../../transport/listener.ts";
import type { ReadTurns } from "../../transport/udp.ts";
import { LoadMeter, threadClocks } from "./load-meter.ts";

/**
 * How often the CPU ration (proxy/shedder.ts) looks at the thread's load, and
 * so the slice a ration is dealt in: 100 ms keeps each window's allowance a
 * small burst (150 new calls at 1 500 calls/s). The ration starts only
 * after SUSTAINED saturated windows in a row (proxy/shedder.ts); a longer
 * window would delay it just as much and deal coarser rations.
 */
const LOAD_WINDOW_MS = 100;

/**
 * TLS handshakes a worker whose thread is saturated still begins per window
 * (20 a second): a few milliseconds of crypto each on a small machine, so
 * new TLS clients still get in, slowly, while established flows keep the
 * loop (transport/listener.ts).
 */
const HANDSHAKES_PER_WINDOW = 2;

/** One worker's load, for a scrape. */
export interface LoadStats {
  /** New requests per second the CPU ration lets in while the thread is saturated; null: no ration. */
  readonly ration: number | null;
  /** Event-loop delay since the last snapshot, in seconds: p50, p99 and max. */
  readonly loopLag: { readonly p50: number; readonly p99: number; readonly max: number };
}

/**
 * How busy and how late one worker's thread runs. Every LOAD_WINDOW_MS it
 * feeds the proxy's CPU ration with the thread's load (load-meter.ts), rations the
 * listeners' TLS handshakes while the proxy rations calls, and calls
 * `each` (the worker's own look at its buffer pool).
 */
export class LoadWindow {
  /**
   * How late this thread's event loop runs, the one number that shows a worker falling behind: how
   * late each window's own timer fires, in ns. Not monitorEventLoopDelay: its timer woke an idle
   * worker 100 times a second at its default 10 ms (0.15–0.3 ms of CPU each here; an idle sipedge
   * used 18 ms of CPU a second to Kamailio's 1.5, test/integration/idle.test.ts), and its figures
   * include its own interval. A stall of LOAD_WINDOW_MS or more is always seen, short by at most that.
   */
  readonly #lateness = createHistogram();
  /** When the window's timer should next fire (performance.now(): node re-arms it as its callback starts). */
  #due: number;
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
    const meter = new LoadMeter(threadClocks, sockets);
    this.#due = performance.now() + LOAD_WINDOW_MS;
    this.#timer = setInterval(() => {
      this.#fired();
      const load = meter.next();
      logOverload(proxy.loadSample(load), load, proxy.ration);
      admission.handshakeRation = proxy.ration === undefined ? undefined : HANDSHAKES_PER_WINDOW;
      each();
    }, LOAD_WINDOW_MS);
    this.#timer.unref();
  }

  #fired(): void {
    const now = performance.now();
    // At least 1 ns (the histogram's floor): a timer on time records as on time.
    this.#lateness.record(Math.max(1, Math.round((now - this.#due) * 1e6)));
    this.#due = now + LOAD_WINDOW_MS;
  }

  /** For a scrape: the loop's delay since the last one (the histogram starts afresh) and the ration. */
  stats(): LoadStats {
    const lag = this.#lateness;
    const loopLag = { p50: lag.percentile(50) / 1e9, p99: lag.percentile(99) / 1e9, max: lag.max / 1e9 };
    lag.reset();
    const ration = this.#proxy.ration;
    return { ration: ration === undefined ? null : (ration * 1000) / LOAD_WINDOW_MS, loopLag };
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** Overload on and off, one line each: the ration engaging or releasing (proxy/shedder.ts), with the window's load. */
function logOverload(change: RationChange, sample: LoadSample, ration: number | undefined): void {
  if (change === undefined) return;
  const round = (share: number) => Math.round(share * 100) / 100;
  const load = { cpu: round(sample.cpu), loop: round(sample.loop) };
  if (change === "engaged") {
    const perSecond = ((ration ?? 0) * 1000) / LOAD_WINDOW_MS;
    log.warn("overload.on", "thread saturated: new requests rationed", { ...load, rationPerSecond: perSecond });
  } else log.info("overload.off", "load back down: ration lifted", load);
}
