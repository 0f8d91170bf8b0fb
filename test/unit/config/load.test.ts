import { mkdtempSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.ts";
import { unwrapConfig } from "../../helpers/config.ts";

function write(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-load-"));
  const file = join(dir, "sipedge.yaml");
  writeFileSync(file, yaml);
  return file;
}

const backends = `backends:
  - name: core
    members: [{ name: pbx-a, uri: "sip:192.0.2.10:5060" }]
`;

describe("config loading", () => {
  it("resolves address: auto to one of this host's own non-loopback IPv4 addresses", () => {
    const own = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === "IPv4" && !a.internal)
      .map((a) => a?.address);
    const file = write(`listen:
  - { transport: udp, address: auto, port: 5060 }
  - { transport: tls, address: auto, port: 5061, cert: tls/cert.pem, key: tls/key.pem }
  - { transport: tcp, address: 127.0.0.1, port: 5060 }
${backends}`);
    const c = unwrapConfig(loadConfig(file));
    expect(own).toContain(c.listen[0]?.address);
    expect(c.listen[1]?.address).toBe(c.listen[0]?.address);
    expect(c.listen[2]?.address).toBe("127.0.0.1");
    expect(c.listen[1]).toMatchObject({ cert: join(file, "..", "tls/cert.pem") });
  });

  it("names the key when a listener address is neither an IP nor auto", () => {
    const r = loadConfig(write(`listen: [{ transport: udp, address: eth0, port: 5060 }]\n${backends}`));
    expect(r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`)).toEqual([
      'listen[0].address: must be an IP address or "auto"',
    ]);
  });
});
