import { mkdtempSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAdminAccess, loadConfig } from "../../../src/config/load.ts";
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

describe("admin token file", () => {
  /** A config beside a token file holding `token` (none when undefined), named relative to the config. */
  function withToken(token: string | undefined): string {
    const file = write(`listen: [{ transport: udp, address: 127.0.0.1, port: 5060 }]
${backends}admin: { listen: "10.20.0.5:9091", tokenFile: admin.token }
`);
    if (token !== undefined) writeFileSync(join(file, "..", "admin.token"), token);
    return file;
  }

  function problems(file: string): string[] {
    const r = loadConfig(file);
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`);
  }

  it.each([
    ["empty", "", "is empty after trimming"],
    ["blank", "  \n\n", "is empty after trimming"],
    ["short", "fifteen-chars!!\n", "holds 15 characters after trimming"],
  ])("refuses a token file that is %s, naming admin.tokenFile and saying why", (_what, token, held) => {
    const file = withToken(token);
    expect(problems(file)).toEqual([
      `admin.tokenFile: ${join(file, "..", "admin.token")} ${held}; a token needs at least 16 ` +
        "(an empty one would leave the API open, a short one can be guessed)",
    ]);
  });

  it("refuses a token file it cannot read", () => {
    expect(problems(withToken(undefined))).toEqual([expect.stringMatching(/^admin\.tokenFile: cannot read .*ENOENT/)]);
  });

  it("takes a token of 16 characters, the file found beside the config", () => {
    const file = withToken("sixteen-chars-ok\n");
    expect(unwrapConfig(loadConfig(file)).admin.tokenFile).toBe(join(file, "..", "admin.token"));
  });
});

describe("the admin API's access, for the operator commands", () => {
  it("reads the admin section and its token (beside the config) even when the rest of the file is broken", () => {
    const file = write(
      `listen: nowhere\nhealth: { timeout: never }\nadmin: { listen: "127.0.0.1:9191", tokenFile: admin.token }\n`,
    );
    writeFileSync(join(file, "..", "admin.token"), "sixteen-chars-ok\n");
    expect(loadAdminAccess(file)).toEqual({
      ok: true,
      value: {
        admin: { listen: "127.0.0.1:9191", tokenFile: join(file, "..", "admin.token") },
        token: "sixteen-chars-ok",
      },
    });
  });

  it("defaults to the loopback API without a token", () => {
    expect(loadAdminAccess(write(backends))).toEqual({
      ok: true,
      value: { admin: { listen: "127.0.0.1:9091", tokenFile: undefined }, token: undefined },
    });
  });

  it("names what keeps it from the API: the admin section's problems, an unreadable token", () => {
    const r = loadAdminAccess(write(`admin: { listen: "0.0.0.0:9091", tokenFile: missing.token }\n`));
    expect(r.ok ? [] : r.errors.map((e) => e.path)).toEqual(["admin.tokenFile"]);
    const file = write(`admin: { listen: "somewhere" }\n`);
    expect(loadAdminAccess(file)).toEqual({
      ok: false,
      errors: [{ path: "admin.listen", problem: 'must be "address:port"', at: { file, line: 1, col: 18 } }],
    });
  });
});
