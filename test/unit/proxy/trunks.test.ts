import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/validate.ts";
import { TrunkMatcher } from "../../../src/proxy/trunks.ts";
import type { Flow } from "../../../src/transport/flow.ts";
import { unwrapConfig } from "../../helpers/config.ts";

function flow(remoteAddress: string, names: readonly string[] = [], reliable = names.length > 0): Flow {
  return {
    id: 1,
    transport: reliable ? "tls" : "udp",
    reliable,
    remoteAddress,
    remotePort: 5060,
    localAddress: "127.0.0.1",
    localPort: 5060,
    closed: false,
    peerNames: () => names,
    send: () => true,
  };
}

const base = {
  listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
  backends: [{ name: "core", members: [{ name: "pbx-a", uri: "sip:127.0.0.1:5080" }] }],
};

/** A TLS listener that asks for client certificates too, as requireCert trunks need. */
const mutualTls = { transport: "tls", address: "127.0.0.1", port: 5061, cert: "c.pem", key: "k.pem" };

function matcher(trunks: unknown): TrunkMatcher {
  const listen = [...base.listen, { ...mutualTls, ca: "ca.pem", clientAuth: "request" }];
  return new TrunkMatcher(unwrapConfig(validateConfig({ ...base, listen, trunks })).trunks);
}

describe("trunks", () => {
  it("are recognised by source CIDR, bare address or verified certificate name, first match wins", () => {
    const m = matcher([
      { name: "carrier-a", sources: ["198.51.100.0/24", "2001:db8::/32"] },
      { name: "pbx-b", sources: ["203.0.113.7"], certNames: ["PBX-B.example.com"] },
      { name: "wide", sources: ["198.51.0.0/16"] },
    ]);
    expect(m.of(flow("198.51.100.9"))).toBe("carrier-a");
    expect(m.of(flow("::ffff:198.51.100.9"))).toBe("carrier-a");
    expect(m.of(flow("2001:db8::1"))).toBe("carrier-a");
    expect(m.of(flow("198.51.7.1"))).toBe("wide");
    expect(m.of(flow("203.0.113.7"))).toBe("pbx-b");
    expect(m.of(flow("203.0.113.8"))).toBeUndefined();
    expect(m.of(flow("192.0.2.1", ["pbx-b.example.com"]))).toBe("pbx-b");
    // Certificate names count only on stream flows (a datagram has none).
    expect(m.of(flow("192.0.2.1", ["pbx-b.example.com"], false))).toBeUndefined();
  });

  it("are trusted by source address over a connection only: a datagram's source is the sender's word", () => {
    const m = matcher([{ name: "carrier", sources: ["198.51.100.0/24"], trusted: true }]);
    expect(m.of(flow("198.51.100.9"))).toBe("carrier");
    expect(m.trusted(flow("198.51.100.9", [], false))).toBe(false);
    expect(m.trusted(flow("198.51.100.9", [], true))).toBe(true);
  });

  it("bind a connection with a verified certificate to the certificate's trunk, whatever its address", () => {
    // carrier-b's sources come first and hold the address: on the old first-match order, a-cert's
    // connection from there counted as carrier-b.
    const m = matcher([
      { name: "carrier-b", sources: ["198.51.100.0/24"] },
      { name: "carrier-a", certNames: ["a.example.com"] },
    ]);
    expect(m.binding(flow("198.51.100.9", ["a.example.com"]))).toEqual({ kind: "trunk", name: "carrier-a" });
    // A verified certificate that names no trunk is that, not carrier-b by its address.
    expect(m.binding(flow("198.51.100.9", ["c.example.com"]))).toEqual({ kind: "stranger" });
    expect(m.binding(flow("198.51.100.9"))).toEqual({ kind: "trunk", name: "carrier-b" });
  });

  it("refuse a stranger's certificate only where the listener says unknownClient: refuse", () => {
    const m = matcher([{ name: "carrier-a", certNames: ["a.example.com"] }]);
    const stranger = flow("192.0.2.1", ["c.example.com"]);
    expect(m.refusal(stranger, "anonymous")).toBeUndefined();
    expect(m.of(stranger)).toBeUndefined();
    expect(m.refusal(stranger, "refuse")).toBe("unknown_client");
    expect(m.refusal(flow("192.0.2.1", ["a.example.com"]), "refuse")).toBeUndefined();
    // No certificate at all is no stranger: such a client never claimed to be anyone.
    expect(m.refusal(flow("192.0.2.1", [], true), "refuse")).toBeUndefined();
    expect(new TrunkMatcher([]).refusal(stranger, "refuse")).toBe("unknown_client");
  });

  it("know a requireCert trunk only by its certificate: a connection from its sources without it is refused", () => {
    const m = matcher([
      { name: "carrier", sources: ["198.51.100.0/24"], certNames: ["carrier.example.com"], requireCert: true },
      { name: "office", sources: ["198.51.100.64/26"] },
    ]);
    const bare = flow("198.51.100.9", [], true);
    expect(m.binding(bare)).toEqual({ kind: "uncertified", trunk: "carrier" });
    expect(m.refusal(bare, "anonymous")).toBe("certificate_required");
    expect(m.of(bare)).toBeUndefined();
    expect(m.of(flow("198.51.100.9", ["carrier.example.com"]))).toBe("carrier");
    // A datagram cannot show a certificate: no trunk's, nothing to refuse.
    expect(m.binding(flow("198.51.100.9", [], false))).toEqual({ kind: "anonymous" });
    // Another trunk known by address inside those sources is still that trunk.
    expect(m.of(flow("198.51.100.70", [], true))).toBe("office");
  });

  it("name the key of a bad trunk definition", () => {
    const r = validateConfig({
      ...base,
      trunks: [
        { name: "a", sources: ["10.0.0.0/33", "nope"] },
        { name: "b" },
        { name: "a", certNames: ["x"] },
        { name: "c", sources: ["10.0.0.1"], requireCert: true },
      ],
    });
    expect(r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`)).toEqual([
      'trunks[0].sources[0]: must be a CIDR like "198.51.100.0/24" or an address',
      'trunks[0].sources[1]: must be a CIDR like "198.51.100.0/24" or an address',
      "trunks[1]: needs sources or certNames to recognise the trunk by",
      "trunks[3].requireCert: needs certNames to know the trunk by",
      'trunks: name "a" is used twice',
      "trunks[3].requireCert: needs a tls or wss listener with clientAuth request or require",
    ]);
  });
});
