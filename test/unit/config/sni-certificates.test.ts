import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.ts";
import type { SecureListener } from "../../../src/config/schema.ts";
import { sniPki } from "../../helpers/certificates.ts";

const pki = sniPki();

/** A config file beside copies of the test certificates (a.pem, a.key, …), its TLS listener with these `certificates`. */
function load(certificates: string): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-sni-config-"));
  for (const [name, files] of Object.entries({ a: pki.a, a2: pki.aRenewed, b: pki.b, w: pki.wildcard })) {
    copyFileSync(files.cert, join(dir, `${name}.pem`));
    copyFileSync(files.key, join(dir, `${name}.key`));
  }
  const file = join(dir, "sipedge.yaml");
  writeFileSync(
    file,
    `listen:
  - { transport: tls, address: 127.0.0.1, port: 5061, cert: b.pem, key: b.key,
      certificates: ${certificates} }
backends: [{ name: core, members: [{ name: pbx, uri: "sip:127.0.0.1:5080" }] }]
`,
  );
  return loadConfig(file);
}

function problems(certificates: string): string[] {
  const r = load(certificates);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`);
}

describe("listen[].certificates", () => {
  it("takes certificates beside the config, their names given or left to their own DNS names", () => {
    const r = load("[{ cert: a.pem, key: a.key }, { cert: w.pem, key: w.key, names: [X.test., '*.y.test'] }]");
    expect(r.ok).toBe(true);
    const listener = (r.ok ? r.value.listen[0] : undefined) as SecureListener;
    expect(listener.certificates.map((c) => [c.cert.endsWith("/a.pem"), c.names])).toEqual([
      [true, undefined],
      [false, ["x.test", "*.y.test"]],
    ]);
  });

  it("names the key of a file that cannot be read, or holds no certificate or key", () => {
    expect(problems("[{ cert: missing.pem, key: a.key }]")).toEqual([
      expect.stringMatching(/^listen\[0\]\.certificates\[0\]\.cert: cannot read .*missing\.pem: ENOENT/),
    ]);
    expect(problems("[{ cert: a.key, key: a.pem }]")).toEqual([
      expect.stringMatching(/^listen\[0\]\.certificates\[0\]\.cert: .*a\.key holds no PEM certificate/),
      expect.stringMatching(/^listen\[0\]\.certificates\[0\]\.key: .*a\.pem holds no unencrypted PEM private key/),
    ]);
  });

  it("names the key path of a key that is not its certificate's", () => {
    expect(problems("[{ cert: a.pem, key: a.key }, { cert: b.pem, key: a.key }]")).toEqual([
      expect.stringMatching(
        /^listen\[0\]\.certificates\[1\]\.key: .*a\.key is not the key of the certificate in .*b\.pem$/,
      ),
    ]);
  });

  it("refuses a name two entries show, given or from the certificates", () => {
    expect(problems("[{ cert: a.pem, key: a.key }, { cert: a2.pem, key: a2.key }]")).toEqual([
      "listen[0].certificates[1].names: a.test (from the certificate) is shown by certificates[0] already",
    ]);
    expect(problems("[{ cert: a.pem, key: a.key }, { cert: b.pem, key: b.key, names: [b.test, A.test] }]")).toEqual([
      "listen[0].certificates[1].names: a.test is shown by certificates[0] already",
    ]);
  });

  it("refuses what is no server name, an empty list and unknown keys", () => {
    expect(
      problems(
        "[{ cert: a.pem, key: a.key, names: [a..test, '*.*.test', 'x.*.test', '*', 7] }, { cert: b.pem, key: b.key, names: [], unknownClient: refuse }]",
      ),
    ).toEqual([
      ...[0, 1, 2, 3, 4].map(
        (i) => `listen[0].certificates[0].names[${i}]: must be a server name like "sip.example.com" or "*.example.com"`,
      ),
      "listen[0].certificates[1].unknownClient: unknown key (expected one of cert, key, names, alternative, clientAuth, ca, crl)",
      "listen[0].certificates[1].names: must name a server name (left out: the certificate's own DNS names)",
    ]);
  });
});
