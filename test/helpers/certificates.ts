import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { demoCertificate } from "../../src/runtime/demo.ts";

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * Two certificates, `one` and `two`, and the `live` files a config names,
 * which hold `one` until `renew()` overwrites them in place with `two`, as
 * a renewal (certbot and the like) does. `dir` is a fresh folder for more.
 */
export function renewableCertificate(): {
  readonly dir: string;
  readonly one: CertificateFiles;
  readonly two: CertificateFiles;
  readonly live: CertificateFiles;
  renew(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-renewal-"));
  const [one, two] = [demoCertificate(join(dir, "one")), demoCertificate(join(dir, "two"))];
  mkdirSync(join(dir, "live"));
  const live = { cert: join(dir, "live", "cert.pem"), key: join(dir, "live", "key.pem") };
  const install = (c: CertificateFiles) => {
    copyFileSync(c.cert, live.cert);
    copyFileSync(c.key, live.key);
  };
  install(one);
  return { dir, one, two, live, renew: () => install(two) };
}

/**
 * A self-signed certificate for 127.0.0.1 whose key openssl makes with
 * `newkey` (e.g. `["-newkey", "rsa:4096"]`), in a fresh folder named for `name`.
 */
export function selfSignedCertificate(newkey: readonly string[], name: string): CertificateFiles {
  const dir = mkdtempSync(join(tmpdir(), `sipedge-${name}-`));
  const files = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", ...newkey, "-nodes", "-days", "2", "-subj", `/CN=${name}`],
      ...["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", files.key, "-out", files.cert],
    ],
    { stdio: "pipe" },
  );
  return files;
}

export interface PrivatePki {
  /** The CA's certificate. */
  readonly ca: string;
  readonly pbx: CertificateFiles;
  readonly edge: CertificateFiles;
  readonly other: CertificateFiles;
}

/** A private CA and three leaves it signed: a backend's (for 127.0.0.1), sipedge's listener's (edge.test) and one for another host. */
export function privatePki(): PrivatePki {
  const { ca, sign } = privateCa("sipedge-pki-", "sipedge test private CA");
  return {
    ca,
    pbx: sign("pbx", "pbx", "subjectAltName=IP:127.0.0.1"),
    edge: sign("edge", "edge", "subjectAltName=DNS:edge.test"),
    other: sign("other", "other", "subjectAltName=DNS:other.test"),
  };
}

/**
 * A private EC P-256 CA in a fresh folder, and `sign`: a leaf (or, by its
 * extension, an intermediate CA) as `file`.pem and `file`.key, signed by
 * the CA in `issuer`.pem; every certificate valid for 2 days.
 */
function privateCa(prefix: string, caName: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    ...["req", "-x509", ...ec, "-days", "2", "-subj", `/CN=${caName}`],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-keyout", f("ca.key"), "-out", f("ca.pem")],
  );
  const sign = (file: string, cn: string, extension: string, issuer = "ca"): CertificateFiles => {
    openssl("req", "-new", ...ec, "-subj", `/CN=${cn}`, "-keyout", f(`${file}.key`), "-out", f(`${file}.csr`));
    writeFileSync(f(`${file}.ext`), `${extension}\n`);
    openssl(
      ...["x509", "-req", "-in", f(`${file}.csr`), "-CA", f(`${issuer}.pem`), "-CAkey", f(`${issuer}.key`)],
      ...["-CAcreateserial", "-days", "2", "-extfile", f(`${file}.ext`), "-out", f(`${file}.pem`)],
    );
    return { cert: f(`${file}.pem`), key: f(`${file}.key`) };
  };
  return { ca: f("ca.pem"), f, sign };
}

export interface TrunkPki {
  /** The CA that signed every leaf. */
  readonly ca: string;
  /** Trunk certificates: CN and subjectAltName DNS a.trunk.test, b.trunk.test. */
  readonly a: CertificateFiles;
  readonly b: CertificateFiles;
  /** Signed by the CA, naming no trunk (c.test). */
  readonly stranger: CertificateFiles;
  /** For a.trunk.test too, and revoked: listed in `crl`. */
  readonly revoked: CertificateFiles;
  /** The CA's CRL (PEM), made by `openssl ca -gencrl`, listing `revoked`. */
  readonly crl: string;
  /** The CA's CRL from before it revoked anything. */
  readonly crlBefore: string;
}

/**
 * `openssl ca` over the CA `issuer` (issuer.pem, issuer.key in `dir`), for
 * its CRLs: `args` after `ca -config … -keyfile … -cert …` (`-gencrl -out
 * crl.pem`, `-revoke cert.pem`). Each CRL is good for 2 days.
 */
function crlAuthority(dir: string, issuer: string): (...args: string[]) => void {
  const f = (name: string) => join(dir, name);
  writeFileSync(f(`${issuer}-index.txt`), "");
  writeFileSync(f(`${issuer}-crlnumber`), "01\n");
  writeFileSync(
    f(`${issuer}-crl.cnf`),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${issuer}-index.txt\ncrlnumber = ${issuer}-crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n`,
  );
  const ca = ["ca", "-config", f(`${issuer}-crl.cnf`), "-keyfile", f(`${issuer}.key`), "-cert", f(`${issuer}.pem`)];
  return (...args) => void execFileSync("openssl", [...ca, ...args], { stdio: "pipe", cwd: dir });
}

/** Client certificates for trunks under one private CA, one of them revoked by the CA's CRL. */
export function trunkPki(): TrunkPki {
  const { ca, f, sign } = privateCa("sipedge-trunks-", "sipedge trunk test CA");
  const leaf = (file: string, name: string) => sign(file, name, `subjectAltName=DNS:${name}`);
  const revoked = leaf("revoked", "a.trunk.test");
  const authority = crlAuthority(dirname(ca), "ca");
  authority("-gencrl", "-out", f("crl-before.pem"));
  authority("-revoke", revoked.cert);
  authority("-gencrl", "-out", f("crl.pem"));
  return {
    ca,
    a: leaf("a", "a.trunk.test"),
    b: leaf("b", "b.trunk.test"),
    stranger: leaf("c", "c.test"),
    revoked,
    crl: f("crl.pem"),
    crlBefore: f("crl-before.pem"),
  };
}

export interface ChainPki {
  /** The root CA and the intermediate it signed, in one bundle (a listener's `ca`). */
  readonly bundle: string;
  /** A client certificate the intermediate signed; its cert file holds the chain (the leaf, then the intermediate). */
  readonly client: CertificateFiles;
  /** Each CA's CRL (PEM), revoking nothing. */
  readonly rootCrl: string;
  readonly intermediateCrl: string;
}

/** A client certificate under an intermediate CA, with a CRL from each CA of its chain. */
export function chainPki(): ChainPki {
  const { ca, f, sign } = privateCa("sipedge-chain-", "sipedge chain test root CA");
  sign("intermediate", "sipedge chain test intermediate CA", "basicConstraints=critical,CA:TRUE");
  const leaf = sign("client", "client.test", "subjectAltName=DNS:client.test", "intermediate");
  writeFileSync(f("client-chain.pem"), Buffer.concat([readFileSync(leaf.cert), readFileSync(f("intermediate.pem"))]));
  writeFileSync(f("bundle.pem"), Buffer.concat([readFileSync(ca), readFileSync(f("intermediate.pem"))]));
  crlAuthority(dirname(ca), "ca")("-gencrl", "-out", f("root-crl.pem"));
  crlAuthority(dirname(ca), "intermediate")("-gencrl", "-out", f("intermediate-crl.pem"));
  return {
    bundle: f("bundle.pem"),
    client: { cert: f("client-chain.pem"), key: leaf.key },
    rootCrl: f("root-crl.pem"),
    intermediateCrl: f("intermediate-crl.pem"),
  };
}

export interface SniPki {
  /** The CA that signed every leaf. */
  readonly ca: string;
  /** For a.test, signed by an intermediate CA: its cert file holds the chain (the leaf, then the intermediate). */
  readonly a: CertificateFiles;
  /** A second certificate for a.test (CN "a.test renewed"), as a renewal brings. */
  readonly aRenewed: CertificateFiles;
  readonly b: CertificateFiles;
  /** For *.w.test. */
  readonly wildcard: CertificateFiles;
}

/**
 * EC P-256 certificates for several server names under one private CA;
 * each leaf's CN is its name (what s_client prints of the peer) and its
 * subjectAltName the DNS name.
 */
export function sniPki(): SniPki {
  const { ca, f, sign } = privateCa("sipedge-sni-", "sipedge SNI test CA");
  sign("intermediate", "sipedge SNI test intermediate CA", "basicConstraints=critical,CA:TRUE");
  const a = sign("a", "a.test", "subjectAltName=DNS:a.test", "intermediate");
  writeFileSync(f("a-chain.pem"), Buffer.concat([readFileSync(a.cert), readFileSync(f("intermediate.pem"))]));
  return {
    ca,
    a: { cert: f("a-chain.pem"), key: a.key },
    aRenewed: sign("a2", "a.test renewed", "subjectAltName=DNS:a.test"),
    b: sign("b", "b.test", "subjectAltName=DNS:b.test"),
    wildcard: sign("w", "*.w.test", "subjectAltName=DNS:*.w.test"),
  };
}

/**
 * A self-signed certificate and its key in a fresh folder, valid from
 * `notBefore` to `notAfter`: `openssl ca` sets both ends (`req -x509`
 * takes only a number of days from now, so it cannot make an expired one).
 */
export function datedCertificate(notBefore: Date, notAfter: Date): CertificateFiles & { readonly dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-dated-"));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe", cwd: dir });
  writeFileSync(f("index.txt"), "");
  writeFileSync(f("serial"), "01\n");
  writeFileSync(
    f("ca.cnf"),
    "[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n" +
      "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-new", ...ec, "-subj", "/CN=dated", "-keyout", f("key.pem"), "-out", f("req.csr"));
  // openssl ca's time format: YYYYMMDDHHMMSSZ.
  const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]|\.\d+/g, "")}`;
  openssl(
    ...["ca", "-batch", "-config", f("ca.cnf"), "-selfsign", "-keyfile", f("key.pem"), "-in", f("req.csr")],
    ...["-startdate", stamp(notBefore), "-enddate", stamp(notAfter), "-notext", "-out", f("cert.pem")],
  );
  return { dir, cert: f("cert.pem"), key: f("key.pem") };
}
