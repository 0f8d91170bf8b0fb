import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

/** A certificate closer to its end than this is named in a warning (the alert rules use the same 14 days). */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** What reading one file came to: its content, or why there is none, said with the file's name. */
export type FileRead<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The text of `path`, or why it cannot be read. */
function readText(path: string): FileRead<string> {
  try {
    return { ok: true, value: readFileSync(path, "utf8") };
  } catch (e) {
    return { ok: false, problem: `cannot read ${path}: ${(e as Error).message}` };
  }
}

/**
 * Every PEM certificate in `path`, in file order: a listener's certificate
 * with its chain (the leaf first, as node:tls sends it), or a CA bundle.
 * PEM only, as node:tls takes it; one block that does not parse fails the file.
 */
export function readCertificates(path: string): FileRead<readonly X509Certificate[]> {
  const text = readText(path);
  if (!text.ok) return text;
  const blocks = text.value.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return { ok: false, problem: `${path} holds no PEM certificate` };
  const certificates: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (e) {
      return { ok: false, problem: `${path}: certificate ${i + 1} does not parse: ${(e as Error).message}` };
    }
  }
  return { ok: true, value: certificates };
}

/** The private key in `path` (unencrypted: sipedge takes no passphrase), or why there is none. */
export function readPrivateKey(path: string): FileRead<KeyObject> {
  const text = readText(path);
  if (!text.ok) return text;
  try {
    return { ok: true, value: createPrivateKey(text.value) };
  } catch (e) {
    return { ok: false, problem: `${path} holds no usable private key: ${(e as Error).message}` };
  }
}

/** A certificate's end seen from `now`: past (an error), near (a warning) or far. */
export type Expiry =
  | { readonly kind: "expired"; readonly problem: string }
  | { readonly kind: "near"; readonly problem: string }
  | { readonly kind: "far" };

export function expiryOf(path: string, certificate: X509Certificate, now: Date): Expiry {
  const end = certificate.validToDate;
  const which = `${path} (${certificate.subject.replace(/\n/g, ", ")})`;
  const left = end.getTime() - now.getTime();
  if (left <= 0) return { kind: "expired", problem: `${which} expired on ${end.toISOString()}` };
  if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
    const days = Math.floor(left / DAY_MS);
    return { kind: "near", problem: `${which} expires on ${end.toISOString()}, in ${days} days` };
  }
  return { kind: "far" };
}
