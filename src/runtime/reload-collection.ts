import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * How long after a reload the thread's heap is collected: the reloads of a
 * burst (a script looping over POST /reload) within it share a collection,
 * and a steady stream of them gets one a second, so what they leave is
 * bounded by a second's worth.
 */
const AFTER_MS = 1000;

/**
 * A full collection of this thread's heap a second after a reload.
 * A reload replaces every TLS context of an IO worker (a SIGHUP re-reads
 * the certificates), and the main thread validates the new config by
 * opening each certificate in a context of its own (config/tls-listener.ts).
 * What a context holds is OpenSSL's memory, which V8 does not count: on a
 * thread whose heap grows slowly (a worker under light traffic, the main
 * thread always) nothing else prompted the collection that frees it, and
 * RSS grew without end. Worker: 110 KB a reload (300 reloads: 193 -> 226
 * MB; collected after each: 195 -> 214 MB and level). Main thread, once
 * the workers collected: 70 KB a reload (an idle sipedge: 191 -> 234 MB
 * over 600 reloads and still climbing at 2 500; collected: 230 MB and
 * level from 500 to 1 500). One collection of a heap of tens of MB takes
 * milliseconds, once per operator action.
 */
export class ReloadCollection {
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** A reload was applied: collect within a second (with any reload that comes meanwhile). */
  schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      collectGarbage();
    }, AFTER_MS);
    // A worker that closes meanwhile does not wait for it.
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * V8's full collection for this thread. Node offers it only behind the
 * process-wide --expose-gc flag, which a worker cannot be given: set here
 * (and left set: workers reloading at once would race to turn it off
 * under each other), a fresh context reads `gc`, bound to this thread's
 * isolate. Contexts made before, every thread's global among them, do not
 * see it.
 */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
