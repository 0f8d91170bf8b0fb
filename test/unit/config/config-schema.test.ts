import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateAdmin, validateConfig } from "../../../src/config/validate.ts";
import { unwrapConfig } from "../../helpers/config.ts";

const minimal = {
  listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
  backends: [{ name: "core", members: [{ name: "pbx-a", uri: "sip:127.0.0.1:5080" }] }],
};

function problems(raw: unknown): string[] {
  const r = validateConfig(raw);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`);
}

describe("the config schema", () => {
  it("turns the appliance's config into the Config the hand-written validator made (every default and unit)", () => {
    const raw = parse(readFileSync(new URL("../../../appliance/config/sipedge.yaml", import.meta.url), "utf8"));
    const c = unwrapConfig(validateConfig(raw));
    const secure = {
      address: "auto",
      cert: "tls/cert.pem",
      key: "tls/key.pem",
      certificates: [],
      ca: undefined,
      crl: undefined,
      clientAuth: "none",
      unknownClient: "anonymous",
      tls: { ciphers: undefined, groups: undefined, minVersion: "TLSv1.2" },
    };
    expect(c).toEqual({
      io: { threads: 0, pin: true, grace: 10_000, backendPort: 15060, backendAddress: undefined },
      listen: [
        { transport: "udp", address: "auto", port: 5060 },
        { transport: "tcp", address: "auto", port: 5060 },
        { transport: "tls", port: 5061, ...secure },
        { transport: "wss", port: 8443, ...secure, allowedOrigins: undefined },
      ],
      backends: [
        {
          name: "core",
          algorithm: "hash-callid",
          members: [
            {
              name: "pbx-a",
              uri: "sip:192.0.2.10:5060;transport=udp",
              host: "192.0.2.10",
              port: 5060,
              transport: "udp",
              weight: 1,
            },
          ],
        },
      ],
      trunks: [],
      health: { interval: 1000, timeout: 500, downAfter: 2, upAfter: 2, aliveCodes: [] },
      limits: {
        memory: 256 * 2 ** 20,
        maxConnections: 1250,
        maxConnectionsPerIp: 50,
        maxHandshakes: 256,
        handshakeTimeout: 10_000,
        messageTimeout: 10_000,
        udpReceiveBuffer: 2 ** 20,
        maxTransactions: 20_000,
        maxEndpoints: 200_000,
        answersPerSource: 500,
        idleTimeout: 900_000,
      },
      admin: {
        listen: "0.0.0.0:9091",
        tokenFile: "/etc/sipedge/admin.token",
        stateFile: "/var/lib/sipedge/operator-states.json",
      },
      sip: {
        timers: { t1: 500, t2: 4000, t4: 5000, timerC: 181_000 },
        firstResponseTimeout: 2000,
        failoverOn: [503],
        retryAfter: 30,
        maxMessageSize: 65_536,
        flowTimer: 120_000,
        flowSecretFile: "/var/lib/sipedge/flow-secret",
        backendTls: { verify: true, ca: undefined },
        foreignRoute: "reject",
      },
      tls: { ticketKeyRotation: 3_600_000 },
      log: { level: "info", format: "journal" },
    });
  });

  it("takes a key written with no value (YAML's null) as left out: its default", () => {
    const raw = parse(
      "io:\nlisten: [{ transport: tls, address: 127.0.0.1, port: 5061, cert: c, key: k, tls: }]\n" +
        "backends: [{ name: core, members: [{ name: a, uri: 'sip:127.0.0.1', weight: ~ }] }]\nsip: { failoverOn: }\n",
    );
    const c = unwrapConfig(validateConfig(raw));
    expect([c.io.threads, c.backends[0]?.members[0]?.weight, c.sip.failoverOn]).toEqual([0, 1, [503]]);
    expect(c.listen[0]).toMatchObject({ tls: { minVersion: "TLSv1.2" } });
  });

  it("names a file that is no mapping, and a missing list, rather than throwing", () => {
    expect(validateConfig("listen")).toEqual({ ok: false, errors: [{ path: "", problem: "must be a mapping" }] });
    expect(problems({})).toEqual(["listen: is required", "backends: is required"]);
    expect(problems({ ...minimal, backends: "core", trunks: 7 })).toEqual([
      "backends: must be a list",
      "trunks: must be a list",
    ]);
  });

  it("names each unknown key before the other problems of its mapping, and each problem once", () => {
    expect(problems({ ...minimal, sip: { timers: { t5: "1s", t1: "soon" }, retryAfter: 1.5, typo: 1 } })).toEqual([
      "sip.typo: unknown key (expected one of timers, firstResponseTimeout, failoverOn, retryAfter, maxMessageSize, flowTimer, flowSecretFile, backendTls, foreignRoute)",
      "sip.timers.t5: unknown key (expected one of t1, t2, t4, timerC)",
      'sip.timers.t1: must be a duration like "500ms", "2s" or "3m"',
      "sip.retryAfter: must be an integer from 0 to 86400",
    ]);
  });

  it("still checks names across pools and trunks when an entry elsewhere is wrong", () => {
    const pool = { name: "core", members: [{ name: "a", uri: "sip:127.0.0.1" }] };
    expect(
      problems({
        ...minimal,
        backends: [pool, { ...pool, members: [...pool.members, { name: "b", uri: "mailto:x@y" }] }],
        trunks: [
          { name: "t", sources: ["nope"] },
          { name: "t", sources: ["192.0.2.1"] },
        ],
      }),
    ).toEqual([
      "backends[1].members[1].uri: not a SIP URI",
      'backends: name "core" is used twice',
      'backends: member name "a" is used twice',
      'trunks[0].sources[0]: must be a CIDR like "198.51.100.0/24" or an address',
      'trunks: name "t" is used twice',
    ]);
  });

  it("reads the admin section alone, naming its keys under admin", () => {
    expect(validateAdmin({ admin: { listen: "nowhere" }, listen: "broken" })).toEqual({
      ok: false,
      errors: [{ path: "admin.listen", problem: 'must be "address:port"' }],
    });
    expect(validateAdmin({ listen: "broken" })).toEqual({
      ok: true,
      value: { listen: "127.0.0.1:9091", tokenFile: undefined, stateFile: undefined },
    });
  });
});
