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
    // Block the loop for 120 ms between two turns: the histogram (a sample every 50 ms, the first
    // only setting its clock) sees at least 70 of it.
    await sleep(80);
    const until = Date.now() + 120;
    while (Date.now() < until) {}
    await sleep(30);
    const first = w.stats().loopLag;
    expect(first.max).toBeGreaterThan(0.04);
    expect(first.max).toBeLessThan(5);
    expect(first.p50).toBeLessThanOrEqual(first.p99);
    expect(first.p99).toBeLessThanOrEqual(first.max);
    await sleep(30);
    expect(w.stats().loopLag.max).toBeLessThan(first.max);
  });
});
