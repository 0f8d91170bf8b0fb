import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatError, loadCheckedConfig } from "../../../src/config/load.ts";
import type { ConfigError } from "../../../src/config/schema.ts";
import { demoCertificate } from "../../../src/runtime/demo.ts";
import { chainPki, datedCertificate, privatePki, selfSignedCertificate, trunkPki } from "../../helpers/certificates.ts";

const DAY = 86_400_000;

/**
 * A config in a fresh folder with a UDP and a TLS listener (listen[1]) on
 * tls/cert.pem and tls/key.pem, relative; `more` is more YAML lines.
 */
function configWith(more = ""): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-files-"));
  mkdirSync(join(dir, "tls"));
  const file = join(dir, "sipedge.yaml");
  writeFileSync(
    file,
    `listen:
  - { transport: udp, address: 127.0.0.1, port: 5060 }
  - { transport: tls, address: 127.0.0.1, port: 5061, cert: tls/cert.pem, key: tls/key.pem }
backends:
  - name: core
    members: [{ name: pbx-a, uri: "sip:192.0.2.10:5060" }]
${more}`,
  );
  return { dir, file };
}

function install(dir: string, files: { cert: string; key: string }): void {
  copyFileSync(files.cert, join(dir, "tls", "cert.pem"));
  copyFileSync(files.key, join(dir, "tls", "key.pem"));
}

/** What check-config prints, less where in the file (a test below has that): the errors, else the warnings marked as such. */
function findings(file: string, o: { baseDir?: string; now?: Date } = {}): string[] {
  const r = loadCheckedConfig(file, o.baseDir, o.now);
  const text = (e: ConfigError) => formatError({ path: e.path, problem: e.problem });
  return r.ok ? r.warnings.map((w) => `warning ${text(w)}`) : r.errors.map(text);
}

const fresh = () => demoCertificate(mkdtempSync(join(tmpdir(), "sipedge-cert-")));

describe("the files a config names", () => {
  it("are fine when the certificate parses, the key is its own and it is far from its end", () => {
    const { dir, file } = configWith();
    install(dir, fresh());
    expect(findings(file)).toEqual([]);
  });

  it("name the key of a missing certificate and key, and where in the file it is", () => {
    const { dir, file } = configWith();
    const r = loadCheckedConfig(file);
    expect(r.ok ? [] : r.errors.map((e) => e.at)).toEqual([
      { file, line: 3, col: 61 },
      { file, line: 3, col: 80 },
    ]);
    expect(findings(file)).toEqual([
      `listen[1].cert: cannot read ${join(dir, "tls/cert.pem")}: ENOENT: no such file or directory, open '${join(dir, "tls/cert.pem")}'`,
      `listen[1].key: cannot read ${join(dir, "tls/key.pem")}: ENOENT: no such file or directory, open '${join(dir, "tls/key.pem")}'`,
    ]);
  });

  it("refuse a key that belongs to another certificate", () => {
    const { dir, file } = configWith();
    const [one, two] = [fresh(), fresh()];
    install(dir, { cert: one.cert, key: two.key });
    expect(findings(file)).toEqual([
      `listen[1].key: ${join(dir, "tls/key.pem")} is not the key of listen[1].cert (${join(dir, "tls/cert.pem")})`,
    ]);
  });

  it("refuse a certificate or key file that does not hold one", () => {
    const { dir, file } = configWith();
    writeFileSync(
      join(dir, "tls", "cert.pem"),
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    );
    writeFileSync(join(dir, "tls", "key.pem"), "");
    const [cert, key] = findings(file);
    expect(cert).toMatch(/^listen\[1\]\.cert: .*cert\.pem: certificate 1 does not parse: /);
    expect(key).toMatch(/^listen\[1\]\.key: .*key\.pem holds no usable private key: /);
    writeFileSync(join(dir, "tls", "cert.pem"), "hello\n");
    expect(findings(file)[0]).toBe(`listen[1].cert: ${join(dir, "tls/cert.pem")} holds no PEM certificate`);
  });

  it("refuse an expired certificate, and warn of one within 14 days of its end", () => {
    const { dir, file } = configWith();
    const now = Date.now();
    install(dir, datedCertificate(new Date(now - 30 * DAY), new Date(now - DAY)));
    expect(findings(file)).toEqual([
      expect.stringMatching(/^listen\[1\]\.cert: .*cert\.pem \(CN=dated\) expired on \d{4}-\d\d-\d\dT/),
    ]);
    install(dir, datedCertificate(new Date(now - DAY), new Date(now + 3 * DAY + 3_600_000)));
    expect(findings(file)).toEqual([
      expect.stringMatching(/^warning listen\[1\]\.cert: .*cert\.pem \(CN=dated\) expires on .*, in 3 days$/),
    ]);
    // 15 days left: no word.
    install(dir, datedCertificate(new Date(now - DAY), new Date(now + 15 * DAY)));
    expect(findings(file)).toEqual([]);
    expect(findings(file, { now: new Date(now + 14 * DAY) })).toHaveLength(1);
  });

  it("check an alternative certificate as the default one, and refuse one of the same key type", () => {
    const { dir, file } = configWith();
    install(dir, fresh()); // ECDSA
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace(
        "key: tls/key.pem }",
        "key: tls/key.pem, alternative: { cert: alt.pem, key: alt-key.pem } }",
      ),
    );
    const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "alternative");
    copyFileSync(rsa.cert, join(dir, "alt.pem"));
    copyFileSync(fresh().key, join(dir, "alt-key.pem"));
    expect(findings(file)).toEqual([
      `listen[1].alternative.key: ${join(dir, "alt-key.pem")} is not the key of listen[1].alternative.cert (${join(dir, "alt.pem")})`,
    ]);
    copyFileSync(rsa.key, join(dir, "alt-key.pem"));
    // The pair is taken; its chain's dates are checked as the default's are (the helper's certificate has 2 days).
    expect(findings(file)).toEqual([
      expect.stringMatching(/^warning listen\[1\]\.alternative\.cert: .*\(CN=alternative\) expires on .*, in \d days$/),
    ]);
    const ecdsa = fresh();
    copyFileSync(ecdsa.cert, join(dir, "alt.pem"));
    copyFileSync(ecdsa.key, join(dir, "alt-key.pem"));
    expect(findings(file)).toEqual([
      "listen[1].alternative.cert: holds a ec certificate as listen[1].cert does: the alternative must be of another key type (ECDSA beside RSA)",
    ]);
  });

  it("check a certificates entry's alternative and own CA as a listener's", () => {
    const { dir, file } = configWith();
    install(dir, fresh());
    const a = fresh(); // ECDSA, for sipedge-demo: the entry names its server name
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace(
        "key: tls/key.pem }",
        `key: tls/key.pem, certificates: [{ cert: ${a.cert}, key: ${a.key}, names: [a.test], alternative: { cert: alt.pem, key: alt-key.pem }, clientAuth: require, ca: a-ca.pem }] }`,
      ),
    );
    const ecdsa = fresh();
    copyFileSync(ecdsa.cert, join(dir, "alt.pem"));
    copyFileSync(ecdsa.key, join(dir, "alt-key.pem"));
    writeFileSync(join(dir, "a-ca.pem"), "");
    expect(findings(file)).toEqual([
      "listen[1].certificates[0].alternative.cert: holds a ec certificate as listen[1].certificates[0].cert does: the alternative must be of another key type (ECDSA beside RSA)",
      `listen[1].certificates[0].ca: ${join(dir, "a-ca.pem")} holds no PEM certificate`,
    ]);
    const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "alternative");
    copyFileSync(rsa.cert, join(dir, "alt.pem"));
    copyFileSync(rsa.key, join(dir, "alt-key.pem"));
    copyFileSync(privatePki().ca, join(dir, "a-ca.pem"));
    expect(findings(file)).toEqual([
      expect.stringMatching(/^warning listen\[1\]\.certificates\[0\]\.alternative\.cert: .*expires on/),
    ]);
  });

  it("check the CA bundles: a listener's and the backends'", () => {
    const { dir, file } = configWith("sip: { backendTls: { ca: backends-ca.pem } }\n");
    install(dir, fresh());
    writeFileSync(join(dir, "backends-ca.pem"), "");
    expect(findings(file)).toEqual([`sip.backendTls.ca: ${join(dir, "backends-ca.pem")} holds no PEM certificate`]);
    copyFileSync(privatePki().ca, join(dir, "backends-ca.pem"));
    expect(findings(file)).toEqual([]);
  });

  it("check a listener's CRL: there, a PEM CRL, one OpenSSL takes, not past its nextUpdate", () => {
    const pki = trunkPki();
    const { dir, file } = configWith();
    install(dir, fresh());
    // The same config, its TLS listener asking for client certificates of pki's CA and checking them against crl.pem.
    const mutual = "cert: tls/cert.pem, key: tls/key.pem, clientAuth: require, ca: ca.pem, crl: crl.pem";
    const yaml = readFileSync(file, "utf8").replace("cert: tls/cert.pem, key: tls/key.pem", mutual);
    writeFileSync(file, yaml);
    copyFileSync(pki.ca, join(dir, "ca.pem"));
    const crl = join(dir, "crl.pem");
    expect(findings(file)).toEqual([expect.stringMatching(/^listen\[1\]\.crl: cannot read .*crl\.pem: ENOENT/)]);
    copyFileSync(pki.ca, crl);
    expect(findings(file)).toEqual([`listen[1].crl: ${crl} holds no PEM CRL`]);
    writeFileSync(crl, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
    expect(findings(file)).toEqual([expect.stringMatching(/^listen\[1\]\.crl: .* OpenSSL refuses it/)]);
    copyFileSync(pki.crl, crl);
    expect(findings(file)).toEqual([]);
    // Made for 2 days: past its nextUpdate OpenSSL would refuse every certificate of the CA.
    expect(findings(file, { now: new Date(Date.now() + 3 * DAY) })).toEqual([
      expect.stringMatching(
        /^listen\[1\]\.crl: .*crl\.pem was due for renewal on .*: its CA's client certificates would all be refused$/,
      ),
    ]);
  });

  it("check a listener's CRLs cover each CA of its ca bundle, as node checks every certificate of a client's chain", () => {
    const pki = chainPki();
    const { dir, file } = configWith();
    install(dir, fresh());
    const mutual = "cert: tls/cert.pem, key: tls/key.pem, clientAuth: require, ca: ca.pem, crl: crl.pem";
    writeFileSync(file, readFileSync(file, "utf8").replace("cert: tls/cert.pem, key: tls/key.pem", mutual));
    copyFileSync(pki.bundle, join(dir, "ca.pem"));
    const crl = join(dir, "crl.pem");
    copyFileSync(pki.intermediateCrl, crl);
    expect(findings(file)).toEqual([
      `listen[1].crl: ${crl} holds no CRL of CN=sipedge chain test root CA (a CA of ${join(dir, "ca.pem")}): node checks each certificate of a client's chain against its issuer's CRL, so every client certificate through that CA would be refused`,
    ]);
    writeFileSync(crl, Buffer.concat([readFileSync(pki.intermediateCrl), readFileSync(pki.rootCrl)]));
    expect(findings(file)).toEqual([]);
  });

  it("check the flow secret: made at start when missing, else exactly 32 bytes", () => {
    const { dir, file } = configWith("sip: { flowSecretFile: flow.secret }\n");
    install(dir, fresh());
    expect(findings(file)).toEqual([]);
    writeFileSync(join(dir, "flow.secret"), "");
    expect(findings(file)).toEqual([
      `sip.flowSecretFile: ${join(dir, "flow.secret")} is empty; a flow secret is 32 bytes (remove the file for sipedge to make one)`,
    ]);
    writeFileSync(join(dir, "flow.secret"), Buffer.alloc(32, 7));
    expect(findings(file)).toEqual([]);
    // Missing, even with its folder: made at start (the appliance's folder by systemd's StateDirectory).
    const nowhere = configWith("sip: { flowSecretFile: no/such/folder/flow.secret }\n");
    install(nowhere.dir, fresh());
    expect(findings(nowhere.file)).toEqual([]);
    writeFileSync(join(dir, "flow.secret"), Buffer.alloc(31, 7));
    expect(findings(file)[0]).toMatch(/^sip\.flowSecretFile: .*flow\.secret holds 31 bytes; a flow secret is 32 bytes/);
  });

  it("resolve relative paths against a base folder when given one, not the config's", () => {
    const live = configWith();
    install(live.dir, fresh());
    // The copy Ansible checks sits alone in a temporary folder.
    const copy = join(mkdtempSync(join(tmpdir(), "sipedge-copy-")), "sipedge.yaml");
    copyFileSync(live.file, copy);
    expect(findings(copy)[0]).toMatch(/^listen\[1\]\.cert: cannot read /);
    expect(findings(copy, { baseDir: live.dir })).toEqual([]);
  });
});
