import { isIP } from "node:net";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { z } from "zod";
import { DEFAULT_MIN_VERSION } from "../transport/tls-policy.ts";
import { isWildcard } from "./addresses.ts";
import type { Listener, TlsSettings } from "./schema.ts";
import { int, list, oneOf, section, text } from "./schema-fields.ts";
import { sniCertificateList, withClientRules } from "./sni-certificates.ts";

/** The keys only a TLS or WSS listener has. */
const SECURE_LISTENER_KEYS = [
  "cert",
  "key",
  "alternative",
  "certificates",
  "ca",
  "crl",
  "clientAuth",
  "unknownClient",
  "tls",
] as const;

/** Never below 1.2: RFC 8996 retired 1.0 and 1.1. */
const VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

/** What a listener's `tls` is when left out: sipedge's hardened defaults (transport/tls-policy.ts). */
const DEFAULT_TLS: TlsSettings = { ciphers: undefined, groups: undefined, minVersion: DEFAULT_MIN_VERSION };

/**
 * A colon-separated OpenSSL list, every name in it tried alone: OpenSSL
 * skips a name it does not know as long as another one matches, so a
 * misspelt suite or group would quietly narrow the list.
 */
function openSslList(alone: (name: string) => SecureContextOptions) {
  return text().superRefine((list, ctx) => {
    // Exclusions (!, -), moves (+) and directives (@STRENGTH, @SECLEVEL=n) name nothing of their own.
    for (const name of list.split(":").filter((n) => n !== "" && !/^[!+\-@]/.test(n))) {
      const problem = contextProblem(alone(name));
      if (problem !== undefined) ctx.addIssue(`"${name}" is not one OpenSSL knows (${problem})`);
    }
  });
}

/**
 * `tls.ciphers`, `tls.groups`, `tls.minVersion`, each tried on a secure
 * context here, as the listener will make one: a typo is a config error
 * that names its key, not a listener that fails to start.
 */
const tlsSettings = section({
  ciphers: openSslList((ciphers) => ({ ciphers }))
    .optional()
    .describe("OpenSSL cipher list (TLS 1.2); left out: ECDHE with AES-GCM or ChaCha20-Poly1305"),
  groups: openSslList((ecdhCurve) => ({ ecdhCurve }))
    .optional()
    .describe("Key-exchange groups, colon-separated, most preferred first; left out: Node's"),
  minVersion: oneOf(VERSIONS).prefault(DEFAULT_MIN_VERSION).describe("The oldest TLS version taken"),
})
  .describe("TLS protocol settings, for those who must differ from sipedge's hardened defaults")
  .transform((s): TlsSettings => ({ ciphers: s.ciphers, groups: s.groups, minVersion: s.minVersion }))
  .superRefine((settings, ctx) => {
    // Each part known, the whole may still match nothing (a list of exclusions only).
    const whole = contextProblem(contextOptions(settings));
    if (whole !== undefined) ctx.addIssue(`OpenSSL refuses these settings: ${whole}`);
  });

/** What node:tls makes of a listener's `tls` settings (on top of transport/tls-policy.ts's defaults). */
export function contextOptions(s: TlsSettings): SecureContextOptions {
  return {
    minVersion: s.minVersion,
    ...(s.ciphers === undefined ? {} : { ciphers: s.ciphers }),
    ...(s.groups === undefined ? {} : { ecdhCurve: s.groups }),
  };
}

function contextProblem(options: SecureContextOptions): string | undefined {
  try {
    createSecureContext(options);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const ORIGIN_PROBLEM = 'must be an origin like "https://phone.example.com" (scheme, host and port only)';

/**
 * `allowedOrigins`: each an origin as a browser sends it (RFC 6454 §6.2:
 * scheme, host, and the port unless it is the scheme's), kept in that
 * serialisation, so that the listener compares strings.
 */
const origins = list(
  z.string(ORIGIN_PROBLEM).transform((entry, ctx) => {
    const origin = webOrigin(entry);
    if (origin === undefined) ctx.addIssue(ORIGIN_PROBLEM);
    return origin ?? entry;
  }),
);

/** "HTTPS://Phone.Example.com:443" → "https://phone.example.com"; undefined unless an http(s) URL of an origin alone. */
function webOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const bare =
    url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && url.password === "";
  return bare && (url.protocol === "https:" || url.protocol === "http:") ? url.origin : undefined;
}

const listenAddress = text()
  .refine((a) => a === "auto" || isIP(a) !== 0, 'must be an IP address or "auto"')
  // sipedge names its listeners in Via and Record-Route: a wildcard cannot be advertised.
  .refine((a) => !isWildcard(a), "must be a concrete address, not a wildcard");

/**
 * One `listen` entry. Its keys are one mapping for every transport, so that
 * each wrong key is named (rather than "no transport matches"); which keys a
 * transport takes is checked once the values are known.
 */
export const listener = section({
  transport: oneOf(["udp", "tcp", "tls", "wss"]).describe("wss: SIP over secure WebSocket (RFC 7118)"),
  address: listenAddress.describe(
    'A concrete IP address (it is named in Via and Record-Route), or "auto": the host\'s first non-loopback IPv4',
  ),
  port: int(0, 65535).describe("The port; 0: one the kernel picks"),
  cert: text().optional().describe("tls, wss (required): the default certificate's PEM file, then its chain"),
  key: text().optional().describe("tls, wss (required): its private key's PEM file"),
  alternative: section({
    cert: text().describe("PEM: the certificate, then the chain that vouches for it"),
    key: text().describe("Its private key, PEM"),
  })
    .optional()
    .describe(
      "tls, wss: a second default certificate of another key type (ECDSA beside RSA); each client is shown the one its signature algorithms take",
    ),
  certificates: sniCertificateList
    .optional()
    .describe("tls, wss: further certificates, each shown to a client that asks for one of its names (SNI)"),
  ca: text().optional().describe("tls, wss: the CA bundle client certificates must chain to"),
  crl: text()
    .optional()
    .describe("tls, wss, with ca and clientAuth: PEM CRLs of the CAs in a client's chain; a revoked certificate fails"),
  clientAuth: oneOf(["none", "request", "require"])
    .optional()
    .describe("tls, wss: ask clients for a certificate (request) or refuse those without (require); left out: none"),
  /**
   * Anonymous by default: the certificate verified against the listener's own
   * `ca` (required with certNames trunks), and as no trunk's it gets nothing a
   * client without one would not; as it was before the key existed.
   */
  unknownClient: oneOf(["anonymous", "refuse"])
    .optional()
    .describe("tls, wss, with clientAuth: a verified certificate naming no trunk; left out: anonymous"),
  tls: tlsSettings.optional().describe("tls, wss: TLS protocol settings"),
  allowedOrigins: origins
    .optional()
    .describe("wss: origins (https://host[:port]) whose pages may connect; any other gets 403. Left out: any"),
})
  .superRefine((l, ctx) => {
    const secure = l.transport === "tls" || l.transport === "wss";
    const fail = (key: string | readonly (string | number)[], problem: string) =>
      ctx.addIssue({ code: "custom", message: problem, path: typeof key === "string" ? [key] : [...key] });
    if (secure) {
      for (const key of ["cert", "key"] as const) if (l[key] === undefined) fail(key, "is required");
      // `crl` and `unknownClient` concern client certificates: without them asked for, or a CA to check them, they would do nothing.
      if (l.crl !== undefined && l.ca === undefined) fail("crl", "needs ca: the CA whose revocations it lists");
      const asks = (clientAuth: string | undefined) => (clientAuth ?? "none") !== "none";
      if (!asks(l.clientAuth) && l.crl !== undefined) fail("crl", "needs clientAuth request or require");
      const names = l.certificates ?? [];
      if (l.unknownClient !== undefined && !asks(l.clientAuth) && !names.some((c) => asks(c.own.clientAuth)))
        fail("unknownClient", "needs clientAuth request or require (the listener's or a certificates entry's)");
      names.forEach(({ own }, j) => {
        if (own.crl === undefined) return;
        if (own.ca === undefined)
          fail(["certificates", j, "crl"], "needs this entry's ca: the CA whose revocations it lists");
        else if (!asks(own.clientAuth ?? l.clientAuth))
          fail(["certificates", j, "crl"], "needs clientAuth request or require (this entry's or the listener's)");
      });
    } else {
      for (const key of SECURE_LISTENER_KEYS)
        if (l[key] !== undefined) fail(key, "only applies to tls and wss listeners");
    }
    if (l.transport !== "wss" && l.allowedOrigins !== undefined)
      fail("allowedOrigins", "only applies to wss listeners");
  })
  .transform((l): Listener => {
    const { transport, address, port } = l;
    if (transport === "udp" || transport === "tcp") return { transport, address, port };
    const clients = { clientAuth: l.clientAuth ?? "none", ca: l.ca, crl: l.crl };
    const secure = {
      address,
      port,
      cert: l.cert as string,
      key: l.key as string,
      alternative: l.alternative,
      certificates: (l.certificates ?? []).map((c) => withClientRules(c, clients)),
      ...clients,
      unknownClient: l.unknownClient ?? "anonymous",
      tls: l.tls ?? DEFAULT_TLS,
    };
    return transport === "tls" ? { transport, ...secure } : { transport, ...secure, allowedOrigins: l.allowedOrigins };
  });

/** The parts of a listener and a trunk the checks across them read: the values as parsed so far, whichever are valid. */
type Parsed = Readonly<Record<string, unknown>>;

function mappings(v: unknown): Parsed[] {
  return Array.isArray(v) ? v.map((e) => (typeof e === "object" && e !== null ? (e as Parsed) : {})) : [];
}

function asksClientCertificate(l: Parsed): boolean {
  return (l.transport === "tls" || l.transport === "wss") && l.clientAuth !== undefined && l.clientAuth !== "none";
}

/**
 * The servers of a parsed TLS or WSS listener that ask clients for a
 * certificate, each with the CA it checks them against and where a missing
 * one is to be named: the listener's own server, and each `certificates`
 * entry with client rules of its own.
 */
function certificateAskers(l: Parsed, i: number): Asker[] {
  const askers: Asker[] = asksClientCertificate(l)
    ? [{ ca: l.ca, at: ["listen", i, "ca"], problem: `is required with clientAuth ${l.clientAuth}` }]
    : [];
  if (l.transport !== "tls" && l.transport !== "wss") return askers;
  mappings(l.certificates).forEach((c, j) => {
    // Parsed, an entry's rules are joined with its listener's (`clients`); else they are its own so far.
    const rules = (c.clients ?? c.own ?? {}) as Parsed;
    if (rules.clientAuth === undefined && rules.ca === undefined) return; // the listener's own rules, checked above
    const clientAuth = rules.clientAuth ?? l.clientAuth;
    if (clientAuth === undefined || clientAuth === "none") return;
    const at = ["listen", i, "certificates", j, "clientAuth"];
    askers.push({ ca: rules.ca ?? l.ca, at, problem: `${clientAuth} needs a ca (this entry's or the listener's)` });
  });
  return askers;
}

interface Asker {
  readonly ca: unknown;
  readonly at: (string | number)[];
  readonly problem: string;
}

/**
 * A trunk known by `certNames` trusts whoever shows a verified certificate
 * with that name: verified against the listener's own `ca`, or, without
 * one, against the public roots, where anyone can buy a certificate for a
 * name they hold, and so become that trunk. A listener that asks for client
 * certificates must therefore name the CA that vouches for them.
 */
export function requireClientCa(
  listen: unknown,
  trunks: unknown,
  fail: (path: readonly (string | number)[], problem: string) => void,
) {
  const byName = mappings(trunks).findIndex((t) => Array.isArray(t.certNames) && t.certNames.length > 0);
  if (byName < 0) return;
  mappings(listen).forEach((l, i) => {
    for (const { ca, at, problem } of certificateAskers(l, i)) {
      if (ca !== undefined) continue;
      fail(
        at,
        `${problem} while trunks are known by certNames (trunks[${byName}]): without it any publicly trusted certificate bearing a trunk's name would be that trunk`,
      );
    }
  });
}

/** A `requireCert` trunk could never connect where no listener asks for a client certificate. */
export function requireCertListener(
  listen: unknown,
  trunks: unknown,
  fail: (path: readonly (string | number)[], problem: string) => void,
) {
  if (mappings(listen).some((l, i) => certificateAskers(l, i).length > 0)) return;
  mappings(trunks).forEach((t, i) => {
    if (t.requireCert === true)
      fail(["trunks", i, "requireCert"], "needs a tls or wss listener with clientAuth request or require");
  });
}
