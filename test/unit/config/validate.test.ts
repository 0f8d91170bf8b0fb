import { describe, expect, it } from "vitest";
import { parseDuration, parseSize } from "../../../src/config/units.ts";
import { validateConfig } from "../../../src/config/validate.ts";
import { unwrapConfig } from "../../helpers/config.ts";

const minimal = {
  listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
  backends: [{ name: "core", members: [{ name: "pbx-a", uri: "sip:127.0.0.1:5080;transport=udp" }] }],
};

function problems(raw: unknown): string[] {
  const r = validateConfig(raw);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`);
}

describe("config validation", () => {
  it("fills every default of the DESIGN.md shape", () => {
    const c = unwrapConfig(validateConfig(minimal));
    expect(c.io).toEqual({ threads: 0, pin: true, grace: 10_000, backendPort: 0 });
    expect(c.backends[0]?.algorithm).toBe("hash-callid");
    expect(c.backends[0]?.members[0]).toMatchObject({ host: "127.0.0.1", port: 5080, transport: "udp", weight: 1 });
    expect(c.health).toEqual({ interval: 1000, timeout: 500, downAfter: 2, upAfter: 2, aliveCodes: [] });
    expect(c.limits).toEqual({
      memory: 256 * 1024 ** 2,
      maxConnections: 1260,
      maxConnectionsPerIp: 50,
      maxHandshakes: 256,
      handshakeTimeout: 10_000,
      messageTimeout: 10_000,
      udpReceiveBuffer: 1024 ** 2,
      maxTransactions: 20_000,
      maxEndpoints: 200_000,
      answersPerSource: 500,
      idleTimeout: 15 * 60_000,
    });
    expect(c.sip.flowTimer).toBe(120_000);
    expect(c.sip.timers).toEqual({ t1: 500, t2: 4000, t4: 5000, timerC: 181_000 });
    expect(c.sip.firstResponseTimeout).toBe(2000);
  });

  it("names the key path and the problem", () => {
    const bad = {
      ...minimal,
      backends: [
        {
          name: "core",
          members: [
            { name: "a", uri: "sip:127.0.0.1:5080" },
            { name: "b", uri: "mailto:x@y" },
          ],
        },
      ],
    };
    expect(problems(bad)).toEqual(["backends[0].members[1].uri: not a SIP URI"]);
  });

  it("reports every problem at once", () => {
    const p = problems({
      io: { threads: -1 },
      listen: [{ transport: "sctp", address: "localhost", port: 70000 }],
      backends: [{ name: "core", algorithm: "random", members: [] }],
      health: { interval: "soon" },
      limits: { memory: "lots", udpReceiveBuffer: "16KiB" },
      sip: { failoverOn: [200] },
      extra: 1,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        "io.threads: must be an integer from 0 to 1024",
        "listen[0].transport: must be one of udp, tcp, tls, wss",
        'listen[0].address: must be an IP address or "auto"',
        "listen[0].port: must be an integer from 0 to 65535",
        "backends[0].algorithm: must be one of hash-callid, round-robin, weighted, least-calls",
        "backends[0].members: needs at least one member",
        'health.interval: must be a duration like "500ms", "2s" or "3m"',
        'limits.memory: must be a size like "64KiB" or "256MiB"',
        "limits.udpReceiveBuffer: must be from 64KiB to 64MiB",
        "sip.failoverOn[0]: must be a final response code from 300 to 699",
      ]),
    );
    expect(p.some((x) => x.startsWith("extra: unknown key"))).toBe(true);
  });

  it("refuses wildcard listen addresses, which cannot be named in Via and Record-Route", () => {
    expect(problems({ ...minimal, listen: [{ transport: "udp", address: "0.0.0.0", port: 5060 }] })).toEqual([
      "listen[0].address: must be a concrete address, not a wildcard",
    ]);
  });

  it("takes log.level and log.format (info and journal by default), naming the key of a bad value", () => {
    expect(unwrapConfig(validateConfig(minimal)).log).toEqual({ level: "info", format: "journal" });
    expect(unwrapConfig(validateConfig({ ...minimal, log: { level: "debug", format: "json" } })).log).toEqual({
      level: "debug",
      format: "json",
    });
    expect(problems({ ...minimal, log: { level: "loud", format: "xml", colour: true } })).toEqual([
      "log.colour: unknown key (expected one of level, format)",
      "log.level: must be one of error, warn, info, debug",
      "log.format: must be one of journal, json",
    ]);
  });

  it("takes a concrete io.backendAddress, a known sip.foreignRoute and short member names, naming the key otherwise", () => {
    expect(problems({ ...minimal, io: { backendAddress: "0.0.0.0" }, sip: { foreignRoute: "follow" } })).toEqual([
      "io.backendAddress: must be a concrete IP address, not a wildcard",
      "sip.foreignRoute: must be one of reject, strip",
    ]);
    const long = { name: "core", members: [{ name: "x".repeat(65), uri: "sip:127.0.0.1:5080" }] };
    expect(problems({ ...minimal, backends: [long] })).toEqual([
      "backends[0].members[0].name: at most 64 bytes (it is carried in every dialog's Record-Route)",
    ]);
    const c = unwrapConfig(validateConfig({ ...minimal, io: { backendAddress: "10.0.0.5" } }));
    expect([c.io.backendAddress, c.sip.foreignRoute]).toEqual(["10.0.0.5", "reject"]);
  });

  it("requires certificates on TLS listeners and refuses them elsewhere", () => {
    expect(problems({ ...minimal, listen: [{ transport: "tls", address: "127.0.0.1", port: 5061 }] })).toEqual([
      "listen[0].cert: is required",
      "listen[0].key: is required",
    ]);
    expect(
      problems({ ...minimal, listen: [{ transport: "udp", address: "127.0.0.1", port: 5060, cert: "c.pem" }] }),
    ).toEqual(["listen[0].cert: only applies to tls and wss listeners"]);
  });

  it("refuses duplicate names and DNS names in backend URIs", () => {
    const dup = { ...minimal, backends: [...minimal.backends, ...minimal.backends] };
    expect(problems(dup)).toContain('backends: name "core" is used twice');
    const dns = { ...minimal, backends: [{ name: "c", members: [{ name: "a", uri: "sip:pbx.example.com" }] }] };
    expect(problems(dns)).toEqual(["backends[0].members[0].uri: host must be an IP address (no DNS on the data path)"]);
  });
});

describe("units", () => {
  it("reads durations and sizes", () => {
    expect([
      parseDuration("500ms"),
      parseDuration("2s"),
      parseDuration("3m"),
      parseDuration("1h"),
      parseDuration(2),
    ]).toEqual([500, 2000, 180_000, 3_600_000, 2000]);
    expect([parseSize("64KiB"), parseSize("256MiB"), parseSize("1GB"), parseSize(1024)]).toEqual([
      65536, 268435456, 1e9, 1024,
    ]);
    expect([parseDuration("fast"), parseDuration("-1s"), parseSize("1TiB"), parseSize("x")]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe("admin token requirement", () => {
  it.each(["0.0.0.0:9091", "[::]:9091", "10.20.0.5:9091", "[2001:db8::5]:9091"])(
    "requires admin.tokenFile when admin.listen is %s (beyond loopback)",
    (listen) => {
      const host = listen.replace(/^\[?(.*?)\]?:\d+$/, "$1");
      expect(problems({ ...minimal, admin: { listen } })).toEqual([
        `admin.tokenFile: is required when admin.listen (${host}) is not a loopback address (127.0.0.0/8, ::1): anyone who can reach it could drain or disable backends`,
      ]);
      expect(problems({ ...minimal, admin: { listen, tokenFile: "admin.token" } })).toEqual([]);
    },
  );

  it.each([undefined, "127.0.0.1:9091", "127.8.9.10:9091", "[::1]:9091"])(
    "leaves the token optional when admin.listen is %s (loopback)",
    (listen) => {
      expect(problems({ ...minimal, ...(listen === undefined ? {} : { admin: { listen } }) })).toEqual([]);
    },
  );
});
