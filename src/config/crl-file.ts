import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { readCertificates } from "./certificate-files.ts";
import { certificateSubject, crlIssuer, nextUpdate } from "./der.ts";
import type { ConfigError } from "./schema.ts";

const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g;

/**
 * A listener's `crl` file, checked as node will load it: PEM CRLs that
 * OpenSSL takes with the listener's CA, one from each CA of that bundle,
 * none past its nextUpdate. A file that cannot be read or holds no CRL
 * would otherwise stop the listener from starting, or a reload from
 * applying; `ca` is checked on its own.
 */
export function checkCrl(crl: string, ca: string, at: string, now: Date): ConfigError[] {
  let text: Buffer;
  try {
    text = readFileSync(crl);
  } catch (e) {
    return [{ path: at, problem: `cannot read ${crl}: ${(e as Error).message}` }];
  }
  const ders = pemCrls(text);
  if (ders.length === 0) return [{ path: at, problem: `${crl} holds no PEM CRL` }];
  try {
    createSecureContext({ ca: readFileSync(ca), crl: pemCrlBlocks(text) });
  } catch (e) {
    return [{ path: at, problem: `${crl}: OpenSSL refuses it (${(e as Error).message})` }];
  }
  return [...missingCrls(crl, ders, ca, at), ...staleCrls(crl, ders, at, now)];
}

/**
 * node checks every certificate of a client's chain against a CRL of its
 * issuer, not the leaf's alone (X509_V_FLAG_CRL_CHECK_ALL, set with `crl`):
 * a CA of the listener's `ca` that issued no CRL of the file fails every
 * chain through it (UNABLE_TO_GET_CRL). An intermediate a client sends
 * itself needs one too, but only the client knows it.
 */
function missingCrls(crl: string, ders: readonly Buffer[], ca: string, at: string): ConfigError[] {
  const bundle = readCertificates(ca);
  if (!bundle.ok) return []; // said at `ca`
  const issuers = ders.flatMap((der) => crlIssuer(der) ?? []);
  return bundle.value.flatMap((x509) => {
    const subject = certificateSubject(x509.raw);
    if (!x509.ca || subject === undefined || issuers.some((i) => i.equals(subject))) return [];
    const name = x509.subject.replace(/\n/g, ", ");
    return [
      {
        path: at,
        problem: `${crl} holds no CRL of ${name} (a CA of ${ca}): node checks each certificate of a client's chain against its issuer's CRL, so every client certificate through that CA would be refused`,
      },
    ];
  });
}

/** Past its nextUpdate, OpenSSL refuses every certificate that CA signed (CRL_HAS_EXPIRED). */
function staleCrls(crl: string, ders: readonly Buffer[], at: string, now: Date): ConfigError[] {
  return ders.flatMap((der, i) => {
    const next = nextUpdate(der);
    if (next === undefined || next > now) return [];
    const which = ders.length > 1 ? ` (CRL ${i + 1} of ${ders.length})` : "";
    return [
      {
        path: at,
        problem: `${crl}${which} was due for renewal on ${next.toISOString()}: its CA's client certificates would all be refused`,
      },
    ];
  });
}

/**
 * Each PEM CRL of a `crl` file, in file order, as node's `crl` option wants
 * them: one string each, since node loads only the first CRL of a string or
 * buffer it is given (PEM_read_bio_X509_CRL once), and a chain through an
 * intermediate CA then failed for want of the other CA's (UNABLE_TO_GET_CRL).
 */
export function pemCrlBlocks(text: Buffer): string[] {
  return crlMatches(text).map((m) => m[0]);
}

/** The DER of each PEM CRL in a `crl` file, in file order. */
export function pemCrls(text: Buffer): Buffer[] {
  return crlMatches(text).map((m) => Buffer.from(m[1] ?? "", "base64"));
}

function crlMatches(text: Buffer): RegExpExecArray[] {
  return [...text.toString("latin1").matchAll(PEM_CRL)];
}
