import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { dnsNames } from "../config/sni-certificates.ts";
import { listenerLabel } from "../transport/address.ts";
import { keyTypeOf } from "../transport/handshakes.ts";

/** When one loaded certificate expires (sipedge_tls_certificate_expiry_timestamp_seconds). */
export interface CertificateExpiry {
  /** The listener that shows it: "address:port", or "backend" for the backend side's. */
  readonly listener: string;
  /** Its subject CN, else its first subjectAltName DNS name, else its subject. */
  readonly name: string;
  /** Its key type ("ec", "rsa"): a listener may show an ECDSA and an RSA certificate for one name. */
  readonly keyType: string;
  /** Its notAfter, seconds since the epoch. */
  readonly expires: number;
}

/**
 * Every certificate a config has sipedge show, read once per config (start,
 * reload) rather than per worker or scrape: the files are the config's, the
 * same in every worker. Each TLS and WSS listener's default (`cert` and
 * `alternative`) and SNI certificates, and the backend side's (the first
 * TLS listener's `cert`, also shown when sipedge connects to a TLS
 * backend). Two of one listener under one name and key type (an SNI entry
 * beside a default for the same host) give one series, the earlier
 * expiry: the one that needs renewing first. A file
 * that cannot be read gives none; the worker that reads it says why.
 */
export function certificateExpiries(config: Config): CertificateExpiry[] {
  const found = new Map<string, CertificateExpiry>();
  const add = (listener: string, file: string) => {
    const read = expiry(listener, file);
    const key = `${listener} ${read?.name} ${read?.keyType}`;
    if (read !== undefined && (found.get(key)?.expires ?? Number.POSITIVE_INFINITY) > read.expires)
      found.set(key, read);
  };
  for (const l of config.listen) {
    if (l.transport !== "tls" && l.transport !== "wss") continue;
    add(listenerLabel(l.address, l.port), l.cert);
    if (l.alternative !== undefined) add(listenerLabel(l.address, l.port), l.alternative.cert);
    for (const c of l.certificates) {
      add(listenerLabel(l.address, l.port), c.cert);
      if (c.alternative !== undefined) add(listenerLabel(l.address, l.port), c.alternative.cert);
    }
  }
  const first = config.listen.find((l) => l.transport === "tls");
  if (first !== undefined && "cert" in first) add("backend", first.cert);
  return [...found.values()];
}

function expiry(listener: string, file: string): CertificateExpiry | undefined {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(readFileSync(file));
  } catch {
    return undefined;
  }
  const cn = /^CN=(.*)$/m.exec(x509.subject)?.[1];
  const name = cn ?? dnsNames(x509)[0] ?? x509.subject.replace(/\n/g, ", ");
  return { listener, name, keyType: keyTypeOf(x509), expires: x509.validToDate.getTime() / 1000 };
}
