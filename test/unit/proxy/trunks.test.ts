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

function matcher(trunks: unknown): TrunkMatcher {
  return new TrunkMatcher(unwrapConfig(validateConfig({ ...base, trunks })).trunks);
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

  it("name the key of a bad trunk definition", () => {
    const r = validateConfig({
      ...base,
      trunks: [{ name: "a", sources: ["10.0.0.0/33", "nope"] }, { name: "b" }, { name: "a", certNames: ["x"] }],
    });
    expect(r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`)).toEqual([
      'trunks[0].sources[0]: must be a CIDR like "198.51.100.0/24" or an address',
      'trunks[0].sources[1]: must be a CIDR like "198.51.100.0/24" or an address',
      "trunks[1]: needs sources or certNames to recognise the trunk by",
      'trunks: name "a" is used twice',
    ]);
  });
});
