import { afterEach, describe, expect, it } from "vitest";
import { LoadWindow } from "../../../../src/runtime/worker/load-window.ts";
import { type ListenerAdmission, noRefusals } from "../../../../src/transport/listener.ts";
import { sleep } from "../../../helpers/net.ts";

const windows: LoadWindow[] = [];
afterEach(() => {
  for (const w of windows.splice(0)) w.close();
});

function admission(): ListenerAdmission {
  return {
    gate: { enter: () => undefined, leave: () => {}, trusted: () => false },
    maxHandshakes: 10,
    refused: noRefusals(),
    handshakeRation: undefined,
  };
}

/** A proxy whose CPU ration is `ration` requests a window (undefined: none). */
function loadWindow(ration: number | undefined): LoadWindow {
  const w = new LoadWindow({ loadSample: () => undefined, ration }, admission(), [], () => {});
  windows.push(w);
  return w;
}

describe("LoadWindow.stats", () => {
  it("gives no ration while the proxy has none, and a window's ration as requests per second", () => {
    expect(loadWindow(undefined).stats().ration).toBeNull();
    // 100 ms windows: 15 a window is 150 a second.
    expect(loadWindow(15).stats().ration).toBe(150);
  });

  it("gives the loop's delay since the last snapshot, in seconds, and starts afresh", async () => {
    const w = loadWindow(undefined);
    // Block the loop for 250 ms: the window's timer (every 100 ms) fires at least 150 ms late.
    await sleep(20);
    const until = Date.now() + 250;
    while (Date.now() < until) {}
    await sleep(30);
    const first = w.stats().loopLag;
    expect(first.max).toBeGreaterThan(0.14);
    expect(first.max).toBeLessThan(5);
    expect(first.p50).toBeLessThanOrEqual(first.p99);
    expect(first.p99).toBeLessThanOrEqual(first.max);
    await sleep(30);
    expect(w.stats().loopLag.max).toBeLessThan(first.max);
  });

  it("reads an idle loop as on time, not as late as its sampling interval", async () => {
    const w = loadWindow(undefined);
    await sleep(450);
    const idle = w.stats().loopLag;
    // Timers fire within a few ms of due on an idle loop; a histogram that counted its own
    // interval (monitorEventLoopDelay's) read 10 ms at 10 ms samples, 50 at 50.
    expect(idle.p50).toBeLessThan(0.008);
    expect(idle.max).toBeGreaterThan(0); // it did sample
  });
});
