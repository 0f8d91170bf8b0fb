import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { PoolDispatcher } from "../../../src/balance/dispatcher.ts";
import { validateConfig } from "../../../src/config/validate.ts";
import { BackendState, HealthTable } from "../../../src/health/state.ts";
import type { Target } from "../../../src/proxy/ports.ts";
import { unwrapConfig } from "../../helpers/config.ts";
import { request } from "../../helpers/sip.ts";

const config = unwrapConfig(
  validateConfig({
    listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
    backends: [
      {
        name: "core",
        algorithm: "round-robin",
        members: [
          { name: "a", uri: "sip:127.0.0.1:5080" },
          { name: "b", uri: "sip:127.0.0.1:5082" },
        ],
      },
    ],
  }),
);

const invite = (callId: string) =>
  request(
    `INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK${callId}\r\nFrom: <sip:a@b>;tag=1\r\n` +
      `To: <sip:x@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
  );

function picks(d: PoolDispatcher, n: number): string[] {
  return Array.from({ length: n }, (_, i) => (d.pick(invite(`c${i}`), new Set()) as Target).name);
}

describe("PoolDispatcher", () => {
  it("makes a backend suspect after suspectAfter failures in a row, for suspectFor", () => {
    let now = 0;
    const d = new PoolDispatcher(config, { suspectAfter: 2, suspectFor: 1000 }, undefined, () => now);
    const a = d.pools[0]?.backends[0]?.member as Target;
    d.failed(a);
    expect(picks(d, 4)).toEqual(["a", "b", "a", "b"]);
    d.failed(a);
    expect(picks(d, 3)).toEqual(["b", "b", "b"]);
    now = 1000;
    expect(picks(d, 2).sort()).toEqual(["a", "b"]);
  });

  it("an answer resets the count of failures", () => {
    const d = new PoolDispatcher(config, { suspectAfter: 2, suspectFor: 1000 }, undefined, () => 0);
    const a = d.pools[0]?.backends[0]?.member as Target;
    d.failed(a);
    d.answered(a);
    d.failed(a);
    expect(picks(d, 2).sort()).toEqual(["a", "b"]);
  });

  it("only backends the health table has up take new requests", () => {
    const table = new HealthTable(["a", "b"]);
    const d = new PoolDispatcher(config, { suspectAfter: 2, suspectFor: 1000 }, table, () => 0);
    table.setState("a", BackendState.Draining);
    expect(picks(d, 3)).toEqual(["b", "b", "b"]);
    table.setState("b", BackendState.Down);
    expect(d.pick(invite("z"), new Set())).toBeUndefined();
    expect(d.ready()).toBe(false);
  });

  it("knows members by source address (the backend side's allow-list), told apart on one host by port and transport", () => {
    const d = new PoolDispatcher(
      unwrapConfig(
        validateConfig({
          listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
          backends: [
            {
              name: "core",
              members: [
                { name: "pbx-1", uri: "sip:10.1.0.5:5060;transport=tcp" },
                { name: "pbx-2", uri: "sip:10.1.0.5:5070;transport=tcp" },
                { name: "v6", uri: "sip:[2001:DB8::0001]:5060" },
              ],
            },
          ],
        }),
      ),
      { suspectAfter: 2, suspectFor: 1000 },
    );
    expect(d.memberAt("10.1.0.5", 5070, "tcp")?.name).toBe("pbx-2");
    expect(d.memberAt("::ffff:10.1.0.5", 5060, "tcp")?.name).toBe("pbx-1");
    expect(d.memberAt("10.1.0.6", 5060, "tcp")).toBeUndefined();
    // Written in any spelling, matched in the kernel's.
    expect(d.memberAt("2001:db8::1", 40000, "udp")?.name).toBe("v6");
  });

  it("tracks a dialog with a Call-ID of any length under a short key, and forgets it by the same Call-ID", () => {
    const d = new PoolDispatcher(config, { suspectAfter: 2, suspectFor: 1000 });
    const a = d.pools[0]?.backends[0]?.member as Target;
    const long = "x".repeat(60_000);
    d.dialogStarted(a, long, undefined);
    d.dialogStarted(a, "short@host", undefined);
    expect(d.calls().backends.a?.active).toBe(2);
    d.dialogEnded(long);
    expect(d.calls().backends.a?.active).toBe(1);
  });

  it("does not keep a peer's long Call-IDs: 500 dialogs of 100 KB Call-IDs hold a few KB, not 50 MB", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const d = new PoolDispatcher(config, { suspectAfter: 2, suspectFor: 1000 });
    const a = d.pools[0]?.backends[0]?.member as Target;
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 500; i++) d.dialogStarted(a, `${i}@`.padEnd(100_000, "x"), undefined);
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(10 * 1024 * 1024);
    expect(d.calls().backends.a?.active).toBe(500);
  });
});
