import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Member } from "../../../src/config/schema.ts";
import { Prober } from "../../../src/health/prober.ts";
import { BackendState, HealthTable } from "../../../src/health/state.ts";
import { checkMessage, parseMessage } from "../../../src/sip/index.ts";
import type { Flow } from "../../../src/transport/flow.ts";

const member: Member = {
  name: "pbx",
  uri: "sip:127.0.0.1:5080",
  host: "127.0.0.1",
  port: 5080,
  transport: "udp",
  weight: 1,
};
const defaults = { interval: 1000, timeout: 500, downAfter: 2, upAfter: 2, aliveCodes: [] };

/** A backend that answers every probe at once while alive: the prober's socket, played in memory. */
function backend(table: HealthTable) {
  let alive = true;
  let prober: Prober | undefined;
  const flow: Flow = {
    id: 1,
    transport: "udp",
    reliable: false,
    remoteAddress: "127.0.0.1",
    remotePort: 5080,
    localAddress: "127.0.0.1",
    localPort: 40000,
    closed: false,
    peerNames: () => [],
    send(slices) {
      const request = Buffer.concat(slices as Uint8Array[]).toString("latin1");
      const callId = /Call-ID: (\S+)/.exec(request)?.[1] ?? "";
      if (!alive) return true;
      queueMicrotask(() =>
        prober?.receive(
          Buffer.from(
            `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-${callId}\r\nFrom: <sip:sipedge@127.0.0.1>;tag=1\r\n` +
              `To: <sip:127.0.0.1:5080>;tag=2\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
            "latin1",
          ),
        ),
      );
      return true;
    },
  };
  prober = new Prober([member], defaults, table, { address: "127.0.0.1", port: 40000, flow: () => flow });
  return {
    prober,
    kill: () => {
      alive = false;
    },
    revive: () => {
      alive = true;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("the prober", () => {
  it("takes a dead backend down within 2 s with the defaults, whenever in the probe cycle it dies", async () => {
    let worst = 0;
    for (let phase = 0; phase < 1000; phase += 50) {
      const table = new HealthTable([member.name]);
      const b = backend(table);
      await vi.advanceTimersByTimeAsync(3000 + phase);
      expect(table.state(member.name)).toBe(BackendState.Up);
      b.kill();
      let waited = 0;
      while (table.state(member.name) !== BackendState.Down && waited < 5000) {
        await vi.advanceTimersByTimeAsync(10);
        waited += 10;
      }
      worst = Math.max(worst, waited);
      b.prober.close();
    }
    expect(worst).toBeLessThanOrEqual(2000);
  });

  it("logs one line when a backend goes down and one when it comes back, naming the member", async () => {
    const written = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const table = new HealthTable([member.name]);
      const b = backend(table);
      await vi.advanceTimersByTimeAsync(3000);
      b.kill();
      await vi.advanceTimersByTimeAsync(5000);
      b.revive();
      await vi.advanceTimersByTimeAsync(5000);
      b.prober.close();
      expect(written.mock.calls.map((c) => String(c[0]))).toEqual([
        "<4>backend.down: backend stopped answering probes member=pbx uri=sip:127.0.0.1:5080 unanswered=2\n",
        "<6>backend.up: backend answers probes again member=pbx uri=sip:127.0.0.1:5080 status=200\n",
      ]);
    } finally {
      written.mockRestore();
    }
  });

  it("sends a probe any SIP peer can parse, an IPv6 address of its own in brackets (RFC 3261 §25.1)", async () => {
    const sent: string[] = [];
    const flow = { send: (slices: readonly Uint8Array[]) => sent.push(Buffer.concat(slices).toString("latin1")) > 0 };
    const v6 = { ...member, uri: "sip:[::1]:5080", host: "::1" };
    const prober = new Prober([v6], defaults, new HealthTable([v6.name]), {
      address: "::1",
      port: 40000,
      flow: () => flow as unknown as Flow,
    });
    await vi.advanceTimersByTimeAsync(1500);
    prober.close();
    expect(sent.length).toBeGreaterThan(0);
    const probe = parseMessage(Buffer.from(sent[0] as string, "latin1"));
    expect(probe.ok && checkMessage(probe.value)).toEqual({ ok: true, value: undefined });
    const via = probe.ok ? probe.value.via() : undefined;
    expect(via?.ok && [via.value[0]?.host, via.value[0]?.port, via.value[0]?.rport]).toEqual(["[::1]", 40000, true]);
  });

  it("once closed, judges no probe still out: a reload's outgoing thread never marks a backend down", async () => {
    const table = new HealthTable([member.name]);
    const b = backend(table);
    await vi.advanceTimersByTimeAsync(1500);
    // Its socket dies with it: every probe out at the close goes unanswered.
    b.kill();
    await vi.advanceTimersByTimeAsync(defaults.interval - 1);
    b.prober.close();
    await vi.advanceTimersByTimeAsync(10 * defaults.interval);
    expect(table.state(member.name)).toBe(BackendState.Up);
    expect(table.transitions(member.name)).toBe(0);
  });
});
