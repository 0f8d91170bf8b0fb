import { describe, expect, it } from "vitest";
import type { StatusReport } from "../../../src/admin/status.ts";
import { duration, statusText, table } from "../../../src/cli/status-table.ts";

const STATUS: StatusReport = {
  version: "1.2.3",
  node: "v24.0.0",
  openssl: "3.5.0",
  startedAt: "2026-01-01T00:00:00.000Z",
  uptimeSeconds: 3725,
  workers: [{ index: 0, thread: 41, pinnedCpu: 0, backendPort: 40000 }, null],
  restarts: 1,
  listeners: [{ transport: "udp", address: "10.0.0.1", port: 5060 }],
  backends: [
    {
      name: "pbx-a",
      pool: "core",
      uri: "sip:10.0.1.1",
      state: "draining",
      up: false,
      rttMs: 1.25,
      transitions: 2,
      since: "2026-01-01T00:10:00.000Z",
      activeCalls: 3,
      calls: 120,
    },
    {
      name: "pbx-b",
      pool: "core",
      uri: "sip:10.0.1.2",
      state: "down",
      up: false,
      rttMs: null,
      transitions: 1,
      since: null,
      activeCalls: 0,
      calls: 0,
    },
  ],
  trunks: [],
};

describe("sipedge status's text", () => {
  it("says which sipedge, how long up, then a table per section; empty sections are left out", () => {
    expect(statusText(STATUS)).toBe(
      [
        "sipedge 1.2.3 (node v24.0.0, openssl 3.5.0), up 1h 2m 5s, 1 thread restart",
        "listening: udp 10.0.0.1:5060",
        "",
        "BACKEND  POOL  STATE     ACTIVE CALLS  CALLS  RTT     SINCE",
        "pbx-a    core  draining  3             120    1.3 ms  2026-01-01T00:10:00.000Z",
        "pbx-b    core  down      0             0      -       -",
        "",
        "WORKER  THREAD       CPU  BACKEND PORT",
        "0       41           0    40000",
        "1       not running  -    -",
        "",
      ].join("\n"),
    );
  });

  it("lists trunks when there are some", () => {
    const text = statusText({
      ...STATUS,
      trunks: [
        {
          name: "carrier",
          connections: 2,
          activeCalls: 1,
          calls: 9,
          requests: 40,
          keepalives: 30,
          lastSeen: "2026-01-01T01:00:00.000Z",
        },
      ],
    });
    expect(text).toMatch(
      /\n\nTRUNK {4}CONNECTIONS {2}ACTIVE CALLS {2}CALLS {2}LAST SEEN\ncarrier {2}2 {12}1 {13}9 {6}2026-01-01T01:00:00.000Z\n$/,
    );
  });

  it.each([
    [0, "0s"],
    [59.9, "59s"],
    [60, "1m 0s"],
    [3600, "1h 0s"],
    [93784, "1d 2h 3m 4s"],
  ])("writes %d seconds as %s", (seconds, text) => {
    expect(duration(seconds)).toBe(text);
  });

  it("pads columns to the widest cell and leaves no trailing spaces", () => {
    expect(
      table(
        ["A", "B"],
        [
          ["long", ""],
          ["x", "y"],
        ],
      ),
    ).toBe("A     B\nlong\nx     y");
  });
});
