import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/validate.ts";
import { crlNextUpdates } from "../../../src/runtime/crl-next-update.ts";
import { type TrunkPki, trunkPki } from "../../helpers/certificates.ts";
import { unwrapConfig } from "../../helpers/config.ts";

/** OpenSSL's reading of a CRL file's (first) nextUpdate, seconds since the epoch. */
function opensslNextUpdate(file: string): number {
  const out = execFileSync("openssl", ["crl", "-noout", "-nextupdate", "-in", file], { encoding: "utf8" });
  return Date.parse(out.replace(/^nextUpdate=/, "").trim()) / 1000;
}

/** A CRL of `pki`'s CA good for one day (the helper's are good for two), as short.pem in `dir`. */
function dayCrl(pki: TrunkPki, dir: string): string {
  const short = join(dir, "short.pem");
  const ca = ["ca", "-config", "ca-crl.cnf", "-keyfile", "ca.key", "-cert", pki.ca, "-gencrl", "-crldays", "1"];
  execFileSync("openssl", [...ca, "-out", short], { stdio: "pipe", cwd: dirname(pki.ca) });
  return short;
}

describe("the client CRLs' next updates (sipedge_tls_crl_next_update_timestamp_seconds)", () => {
  it("dates each listener's crl as OpenSSL does, the earliest of a file's CRLs; a listener without one, or whose file is gone, gives none", () => {
    const pki = trunkPki();
    const dir = mkdtempSync(join(tmpdir(), "sipedge-crl-dates-"));
    // Two CRLs in one file, the later first (2 days, then 1): the earlier is the one to renew first.
    const short = dayCrl(pki, dir);
    const both = join(dir, "both.pem");
    writeFileSync(both, `${readFileSync(pki.crl, "utf8")}${readFileSync(short, "utf8")}`);
    const tls = (port: number, crl: string | undefined) => ({
      ...{ transport: "tls", address: "127.0.0.1", port, cert: pki.a.cert, key: pki.a.key },
      ...(crl === undefined ? {} : { clientAuth: "require", ca: pki.ca, crl }),
    });
    const config = unwrapConfig(
      validateConfig({
        listen: [tls(5061, pki.crl), tls(5062, undefined), tls(5063, both), tls(5064, join(dir, "gone.pem"))],
        backends: [{ name: "p", members: [{ name: "a", uri: "sip:127.0.0.1:9" }] }],
      }),
    );
    const earliest = opensslNextUpdate(short);
    expect(earliest).toBeLessThan(opensslNextUpdate(pki.crl) - 3600);
    expect(crlNextUpdates(config)).toEqual([
      { listener: "127.0.0.1:5061", nextUpdate: opensslNextUpdate(pki.crl) },
      { listener: "127.0.0.1:5063", nextUpdate: earliest },
    ]);
    expect(opensslNextUpdate(pki.crl)).toBeGreaterThan(Date.now() / 1000 + 86_400);
  });

  it("dates a certificates entry's own crl under its listener, the earlier of the listener's and the entry's", () => {
    const pki = trunkPki();
    const short = dayCrl(pki, mkdtempSync(join(tmpdir(), "sipedge-crl-entry-")));
    const entry = {
      cert: pki.b.cert,
      key: pki.b.key,
      names: ["b.test"],
      clientAuth: "require",
      ca: pki.ca,
      crl: short,
    };
    const tls = { transport: "tls", address: "127.0.0.1", cert: pki.a.cert, key: pki.a.key, certificates: [entry] };
    // One listener asks for no certificate of its own; the other has its own CRL, a day later than the entry's.
    const mutual = { ...tls, port: 5062, clientAuth: "require", ca: pki.ca, crl: pki.crl };
    const config = unwrapConfig(
      validateConfig({
        listen: [{ ...tls, port: 5061 }, mutual],
        backends: [{ name: "p", members: [{ name: "a", uri: "sip:127.0.0.1:9" }] }],
      }),
    );
    expect(crlNextUpdates(config)).toEqual([
      { listener: "127.0.0.1:5061", nextUpdate: opensslNextUpdate(short) },
      { listener: "127.0.0.1:5062", nextUpdate: opensslNextUpdate(short) },
    ]);
  });
});
