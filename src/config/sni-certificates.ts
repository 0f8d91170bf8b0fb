import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { CertificatePair, ClientAuth, ClientRules, ConfigError, SniCertificate } from "./schema.ts";
import { list, oneOf, section, text } from "./schema-fields.ts";

/**
 * A DNS name, or `*.` and one: the wildcard stands for the leftmost label
 * alone (RFC 6125 §6.4.3), so `*.example.com` is shown for
 * `a.example.com`, never for `example.com` or `a.b.example.com`.
 */
const SERVER_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

const SERVER_NAME_PROBLEM = 'must be a server name like "sip.example.com" or "*.example.com"';

/** A `certificates` entry as parsed, its own client rules not yet joined with its listener's. */
export interface ParsedSniCertificate extends Omit<SniCertificate, "clients"> {
  readonly own: { readonly clientAuth?: ClientAuth; readonly ca?: string; readonly crl?: string };
}

/** `listen[].certificates`: each entry's keys; the files are read once loadConfig has resolved their paths. */
export const sniCertificateList = list(
  section({
    cert: text().describe("PEM: the certificate, then the chain that vouches for it"),
    key: text().describe("Its private key, PEM"),
    names: list(
      z
        .string(SERVER_NAME_PROBLEM)
        .transform((name) => name.toLowerCase().replace(/\.$/, ""))
        .pipe(z.string().regex(SERVER_NAME, SERVER_NAME_PROBLEM)),
    )
      .min(1, "must name a server name (left out: the certificate's own DNS names)")
      .optional()
      .describe("Server names, exact or *.one-label wildcards; left out: the certificate's subjectAltName DNS names"),
    alternative: section({
      cert: text().describe("PEM: the certificate, then the chain that vouches for it"),
      key: text().describe("Its private key, PEM"),
    })
      .optional()
      .describe("A second certificate of another key type for these names (ECDSA beside RSA)"),
    clientAuth: oneOf(["none", "request", "require"])
      .optional()
      .describe("Client certificates for these names, as the listener's clientAuth; left out: the listener's"),
    ca: text()
      .optional()
      .describe("The CA bundle these names' client certificates must chain to; left out: the listener's ca and crl"),
    crl: text().optional().describe("With this entry's ca: PEM CRLs of the CAs in a client's chain"),
  }).transform(
    (e): ParsedSniCertificate => ({
      cert: e.cert,
      key: e.key,
      names: e.names,
      alternative: e.alternative,
      own: {
        ...(e.clientAuth === undefined ? {} : { clientAuth: e.clientAuth }),
        ...(e.ca === undefined ? {} : { ca: e.ca }),
        ...(e.crl === undefined ? {} : { crl: e.crl }),
      },
    }),
  ),
);

/**
 * An entry's client rules joined with its listener's: what it names of
 * its own, the rest its listener's, but a CRL only with its CA (an entry
 * with a CA of its own has no use for the CRLs of its listener's).
 * Undefined when it names none: the listener's own server takes its clients.
 */
export function withClientRules(entry: ParsedSniCertificate, listener: ClientRules): SniCertificate {
  const { own, ...certificate } = entry;
  const named = own.clientAuth !== undefined || own.ca !== undefined;
  const clients: ClientRules | undefined = named
    ? {
        clientAuth: own.clientAuth ?? listener.clientAuth,
        ca: own.ca ?? listener.ca,
        crl: own.ca === undefined ? listener.crl : own.crl,
      }
    : undefined;
  return { ...certificate, clients };
}

/** One `certificates` entry read: what its files hold, and the names it is shown for. */
export interface SniCertificateFiles {
  /** The certificate and its chain, as the file has them, then its `alternative`'s, if any. */
  readonly cert: readonly Buffer[];
  readonly key: readonly Buffer[];
  readonly names: readonly string[];
}

/**
 * Every entry's files, checked as a handshake will need them: a
 * certificate and an unencrypted private key that node can read, the key
 * the certificate's own, and each name shown by one certificate only.
 * `path` is the listener's key path (`listen[2]`), for the errors.
 */
export function readSniCertificates(
  list: readonly SniCertificate[],
  path: string,
): { readonly files: readonly SniCertificateFiles[]; readonly errors: readonly ConfigError[] } {
  const errors: ConfigError[] = [];
  const fail = (at: string, problem: string) => void errors.push({ path: at, problem });
  const files: SniCertificateFiles[] = [];
  /** The entry that shows each name. */
  const shown = new Map<string, number>();
  for (const [i, entry] of list.entries()) {
    const at = `${path}.certificates[${i}]`;
    const read = readEntry(entry, at, fail);
    if (read === undefined) continue;
    files.push(read);
    for (const name of read.names) {
      const other = shown.get(name);
      if (other === undefined) shown.set(name, i);
      else
        fail(
          `${at}.names`,
          `${name}${entry.names === undefined ? " (from the certificate)" : ""} is shown by certificates[${other}] already`,
        );
    }
  }
  return { files, errors };
}

function readEntry(
  entry: SniCertificate,
  at: string,
  fail: (at: string, problem: string) => void,
): SniCertificateFiles | undefined {
  const first = readPair(entry, at, fail);
  const alternative =
    entry.alternative === undefined ? undefined : readPair(entry.alternative, `${at}.alternative`, fail);
  if (first === undefined || (entry.alternative !== undefined && alternative === undefined)) return undefined;
  const names = entry.names ?? dnsNames(first.x509);
  if (names.length === 0) {
    fail(`${at}.names`, `is required: the certificate in ${entry.cert} has no DNS name in its subjectAltName`);
    return undefined;
  }
  const pairs = alternative === undefined ? [first] : [first, alternative];
  return { cert: pairs.map((p) => p.cert), key: pairs.map((p) => p.key), names };
}

/** A certificate file and its key's: both readable, the key unencrypted and the certificate's own. */
function readPair(
  pair: CertificatePair,
  at: string,
  fail: (at: string, problem: string) => void,
): { readonly cert: Buffer; readonly key: Buffer; readonly x509: X509Certificate } | undefined {
  const cert = readFile(pair.cert, `${at}.cert`, fail);
  const key = readFile(pair.key, `${at}.key`, fail);
  if (cert === undefined || key === undefined) return undefined;
  const x509 = parsed(() => new X509Certificate(cert), `${at}.cert`, `${pair.cert} holds no PEM certificate`, fail);
  const privateKey = parsed(
    () => createPrivateKey(key),
    `${at}.key`,
    `${pair.key} holds no unencrypted PEM private key`,
    fail,
  );
  if (x509 === undefined || privateKey === undefined) return undefined;
  if (!x509.checkPrivateKey(privateKey)) {
    fail(`${at}.key`, `${pair.key} is not the key of the certificate in ${pair.cert}`);
    return undefined;
  }
  return { cert, key, x509 };
}

/** A certificate's subjectAltName DNS entries, lower case ("DNS:a.test, IP Address:…" as node gives them). */
export function dnsNames(x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4).toLowerCase());
}

function readFile(file: string, at: string, fail: (at: string, problem: string) => void): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (e) {
    fail(at, `cannot read ${file}: ${(e as Error).message}`);
    return undefined;
  }
}

function parsed<T>(
  make: () => T,
  at: string,
  problem: string,
  fail: (at: string, problem: string) => void,
): T | undefined {
  try {
    return make();
  } catch (e) {
    fail(at, `${problem} (${(e as Error).message})`);
    return undefined;
  }
}
