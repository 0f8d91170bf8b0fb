import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { ConfigError, SniCertificate } from "./schema.ts";
import { list, section, text } from "./schema-fields.ts";

/**
 * A DNS name, or `*.` and one: the wildcard stands for the leftmost label
 * alone (RFC 6125 §6.4.3), so `*.example.com` is shown for
 * `a.example.com`, never for `example.com` or `a.b.example.com`.
 */
const SERVER_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

const SERVER_NAME_PROBLEM = 'must be a server name like "sip.example.com" or "*.example.com"';

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
  }).transform((entry): SniCertificate => ({ cert: entry.cert, key: entry.key, names: entry.names })),
);

/** One `certificates` entry read: what its files hold, and the names it is shown for. */
export interface SniCertificateFiles {
  /** The certificate and its chain, as the file has them. */
  readonly cert: Buffer;
  readonly key: Buffer;
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
  const cert = readFile(entry.cert, `${at}.cert`, fail);
  const key = readFile(entry.key, `${at}.key`, fail);
  if (cert === undefined || key === undefined) return undefined;
  const x509 = parsed(() => new X509Certificate(cert), `${at}.cert`, `${entry.cert} holds no PEM certificate`, fail);
  const privateKey = parsed(
    () => createPrivateKey(key),
    `${at}.key`,
    `${entry.key} holds no unencrypted PEM private key`,
    fail,
  );
  if (x509 === undefined || privateKey === undefined) return undefined;
  if (!x509.checkPrivateKey(privateKey)) {
    fail(`${at}.key`, `${entry.key} is not the key of the certificate in ${entry.cert}`);
    return undefined;
  }
  const names = entry.names ?? dnsNames(x509);
  if (names.length === 0) {
    fail(`${at}.names`, `is required: the certificate in ${entry.cert} has no DNS name in its subjectAltName`);
    return undefined;
  }
  return { cert, key, names };
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
