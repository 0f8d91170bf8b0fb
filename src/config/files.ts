import { existsSync, readFileSync } from "node:fs";
import { expiryOf, readCertificates, readPrivateKey } from "./certificate-files.ts";
import { checkCrl } from "./crl-file.ts";
import type { CertificatePair, ClientRules, Config, ConfigError } from "./schema.ts";

/** The size of the flow-token secret (proxy/flow-token.ts makes one this long, and takes no other). */
export const FLOW_SECRET_BYTES = 32;

/**
 * What opening the files a config names found: errors (sipedge would start
 * without a working TLS listener, or not at all) and warnings (a
 * certificate within its last days), each at the key that names the file.
 */
export interface FileFindings {
  readonly errors: readonly ConfigError[];
  readonly warnings: readonly ConfigError[];
}

/**
 * Opens and checks every file a validated config names (its paths already
 * resolved): listener certificates, keys, CA bundles and CRLs, the backend CA,
 * the flow-token secret. The schema only knows a path is a string; this is
 * what tells a missing certificate or a key of another one before a
 * service starts on them. The admin token file is read by config/load.ts
 * itself (the operator commands need it too).
 */
export function checkFiles(config: Config, now: Date = new Date()): FileFindings {
  const errors: ConfigError[] = [];
  const warnings: ConfigError[] = [];
  const check = (identity: Identity, clients: ClientRules | undefined, at: string) => {
    const found = checkIdentity(identity, at, now);
    errors.push(...found.errors);
    warnings.push(...found.warnings);
    if (clients?.ca !== undefined) errors.push(...checkBundle(clients.ca, `${at}.ca`));
    if (clients?.crl !== undefined && clients.ca !== undefined)
      errors.push(...checkCrl(clients.crl, clients.ca, `${at}.crl`, now));
  };
  config.listen.forEach((l, i) => {
    if (l.transport !== "tls" && l.transport !== "wss") return;
    check(l, l, `listen[${i}]`);
    // An entry's CA and CRL are checked where it names them; those it takes from the listener were, above.
    for (const [j, c] of l.certificates.entries()) check(c, ownRules(c.clients, l), `listen[${i}].certificates[${j}]`);
  });
  const { backendTls, flowSecretFile } = config.sip;
  if (backendTls.ca !== undefined) errors.push(...checkBundle(backendTls.ca, "sip.backendTls.ca"));
  if (flowSecretFile !== undefined) errors.push(...checkFlowSecret(flowSecretFile));
  return { errors, warnings };
}

/** A certificate, its key, and one of another key type beside it: a listener's defaults, or a `certificates` entry's. */
type Identity = CertificatePair & { readonly alternative: CertificatePair | undefined };

/** What of an entry's client rules is its own: a CA not the listener's, and its CRL. */
function ownRules(clients: ClientRules | undefined, l: ClientRules): ClientRules | undefined {
  return clients === undefined || clients.ca === l.ca ? undefined : clients;
}

/**
 * A listener's (or a `certificates` entry's) default certificates: its `cert` and, if any, its
 * `alternative`, each checked as a pair; the two of different key types,
 * since OpenSSL keeps one certificate per key type and the later would
 * quietly replace the other.
 */
function checkIdentity(l: Identity, at: string, now: Date): FileFindings {
  const first = checkPair(l, at, now);
  if (l.alternative === undefined) return first;
  const second = checkPair(l.alternative, `${at}.alternative`, now);
  const errors = [...first.errors, ...second.errors];
  if (first.keyType !== undefined && first.keyType === second.keyType)
    errors.push({
      path: `${at}.alternative.cert`,
      problem: `holds a ${first.keyType} certificate as ${at}.cert does: the alternative must be of another key type (ECDSA beside RSA)`,
    });
  return { errors, warnings: [...first.warnings, ...second.warnings] };
}

/**
 * A certificate (with its chain) and key: each parses, the key is the
 * leaf's, and no certificate of the chain has expired (one near its end
 * is a warning: the service should start, and someone should renew).
 * Found too: the leaf's key type ("rsa", "ec"), when it parses.
 */
function checkPair(
  pair: CertificatePair,
  at: string,
  now: Date,
): FileFindings & { readonly keyType?: string | undefined } {
  const certs = readCertificates(pair.cert);
  const key = readPrivateKey(pair.key);
  const errors: ConfigError[] = [];
  const warnings: ConfigError[] = [];
  if (!certs.ok) errors.push({ path: `${at}.cert`, problem: certs.problem });
  if (!key.ok) errors.push({ path: `${at}.key`, problem: key.problem });
  if (!certs.ok) return { errors, warnings };
  const [leaf] = certs.value;
  if (key.ok && leaf !== undefined && !leaf.checkPrivateKey(key.value))
    errors.push({ path: `${at}.key`, problem: `${pair.key} is not the key of ${at}.cert (${pair.cert})` });
  for (const certificate of certs.value) {
    const expiry = expiryOf(pair.cert, certificate, now);
    if (expiry.kind === "expired") errors.push({ path: `${at}.cert`, problem: expiry.problem });
    if (expiry.kind === "near") warnings.push({ path: `${at}.cert`, problem: expiry.problem });
  }
  return { errors, warnings, keyType: leaf?.publicKey.asymmetricKeyType };
}

/** A CA bundle: every certificate in it parses (an expired old root in a bundle is common and harmless). */
function checkBundle(path: string, at: string): ConfigError[] {
  const certs = readCertificates(path);
  return certs.ok ? [] : [{ path: at, problem: certs.problem }];
}

/**
 * The flow-token secret: read as it is when there, else made at start.
 * Missing is fine even where its folder is missing too: the appliance's
 * /var/lib/sipedge is made by systemd (StateDirectory) only as the service
 * starts, after Ansible checked the config. One of another length would be
 * replaced by a new secret at start, breaking every token issued before:
 * said here instead, for the operator to decide.
 */
function checkFlowSecret(path: string): ConfigError[] {
  const at = "sip.flowSecretFile";
  if (!existsSync(path)) return [];
  let held: Buffer;
  try {
    held = readFileSync(path);
  } catch (e) {
    return [{ path: at, problem: `cannot read ${path}: ${(e as Error).message}` }];
  }
  if (held.length === FLOW_SECRET_BYTES) return [];
  const what = held.length === 0 ? "is empty" : `holds ${held.length} bytes`;
  return [
    {
      path: at,
      problem: `${path} ${what}; a flow secret is ${FLOW_SECRET_BYTES} bytes (remove the file for sipedge to make one)`,
    },
  ];
}
