import { createSecureContext, type SecureContextOptions } from "node:tls";
import { DEFAULT_MIN_VERSION } from "../transport/tls-policy.ts";
import { join, type Obj, type Reader } from "./reader.ts";
import type { ClientAuth, Listener, SecureListener, TlsSettings, TlsVersion, Trunk, UnknownClient } from "./schema.ts";
import { sniCertificates } from "./sni-certificates.ts";

/** The keys only a TLS or WSS listener has. */
export const SECURE_LISTENER_KEYS = [
  "cert",
  "key",
  "certificates",
  "ca",
  "crl",
  "clientAuth",
  "unknownClient",
  "tls",
] as const;
/** The keys only a WSS listener has. */
export const WSS_LISTENER_KEYS = ["allowedOrigins"] as const;

const CLIENT_AUTH: readonly ClientAuth[] = ["none", "request", "require"];
/**
 * Anonymous by default: the certificate verified against the listener's own
 * `ca` (required with certNames trunks), and as no trunk's it gets nothing a
 * client without one would not; as it was before the key existed.
 */
const UNKNOWN_CLIENT: readonly UnknownClient[] = ["anonymous", "refuse"];
/** Never below 1.2: RFC 8996 retired 1.0 and 1.1. */
const VERSIONS: readonly TlsVersion[] = ["TLSv1.2", "TLSv1.3"];

type Secure = Omit<SecureListener, "transport" | "address" | "port">;

/**
 * A TLS or WSS listener's own keys: its certificates, client authentication
 * and `tls` settings, and a WSS listener's allowed origins (undefined where
 * wrong: r has the error).
 */
export function secureListener(
  r: Reader,
  o: Obj,
  path: string,
  transport: "tls" | "wss",
): { readonly [K in keyof Secure]: Secure[K] | undefined } & {
  readonly allowedOrigins?: readonly string[] | undefined;
} {
  const secure = {
    cert: r.string(o, "cert", path),
    key: r.string(o, "key", path),
    certificates: sniCertificates(r, o.certificates, join(path, "certificates")),
    ca: typeof o.ca === "string" ? o.ca : undefined,
    crl: o.crl === undefined ? undefined : r.string(o, "crl", path),
    clientAuth: r.oneOf(o, "clientAuth", path, CLIENT_AUTH, "none"),
    unknownClient: r.oneOf(o, "unknownClient", path, UNKNOWN_CLIENT, "anonymous"),
    tls: tlsSettings(r, o.tls ?? {}, join(path, "tls")),
  };
  clientCertificateKeys(r, o, secure, path);
  if (transport === "wss")
    return { ...secure, allowedOrigins: origins(r, o.allowedOrigins, join(path, "allowedOrigins")) };
  onlyOnWss(r, o, path);
  return secure;
}

/** `crl` and `unknownClient` concern client certificates: without them asked for, or a CA to check them, they would do nothing. */
function clientCertificateKeys(
  r: Reader,
  o: Obj,
  l: { readonly ca: string | undefined; readonly clientAuth: ClientAuth | undefined },
  path: string,
): void {
  if (o.crl !== undefined && l.ca === undefined)
    r.fail(join(path, "crl"), "needs ca: the CA whose revocations it lists");
  if (l.clientAuth !== "none") return;
  for (const key of ["crl", "unknownClient"])
    if (o[key] !== undefined) r.fail(join(path, key), "needs clientAuth request or require");
}

/** A listener but a WSS one with a WSS-only key: an error naming it. */
export function onlyOnWss(r: Reader, o: Obj, path: string): void {
  for (const key of WSS_LISTENER_KEYS)
    if (o[key] !== undefined) r.fail(join(path, key), "only applies to wss listeners");
}

/**
 * `allowedOrigins`: each an origin as a browser sends it (RFC 6454 §6.2:
 * scheme, host, and the port unless it is the scheme's), kept in that
 * serialisation, so that the listener compares strings.
 */
function origins(r: Reader, raw: unknown, path: string): readonly string[] | undefined {
  if (raw === undefined) return undefined;
  return (r.list(raw, path) ?? []).flatMap((entry, i) => {
    const origin = typeof entry === "string" ? webOrigin(entry) : undefined;
    if (origin !== undefined) return [origin];
    r.fail(`${path}[${i}]`, 'must be an origin like "https://phone.example.com" (scheme, host and port only)');
    return [];
  });
}

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

/** What node:tls makes of a listener's `tls` settings (on top of transport/tls-policy.ts's defaults). */
export function contextOptions(s: TlsSettings): SecureContextOptions {
  return {
    minVersion: s.minVersion,
    ...(s.ciphers === undefined ? {} : { ciphers: s.ciphers }),
    ...(s.groups === undefined ? {} : { ecdhCurve: s.groups }),
  };
}

/**
 * `tls.ciphers`, `tls.groups`, `tls.minVersion`, each tried on a secure
 * context here, as the listener will make one: a typo is a config error
 * that names its key, not a listener that fails to start.
 */
function tlsSettings(r: Reader, raw: unknown, path: string): TlsSettings | undefined {
  const o = r.object(raw, path, ["ciphers", "groups", "minVersion"]);
  if (o === undefined) return undefined;
  const errors = r.errors.length;
  const settings: TlsSettings = {
    ciphers: openSslList(r, o, "ciphers", path, (ciphers) => ({ ciphers })),
    groups: openSslList(r, o, "groups", path, (ecdhCurve) => ({ ecdhCurve })),
    minVersion: r.oneOf(o, "minVersion", path, VERSIONS, DEFAULT_MIN_VERSION) ?? DEFAULT_MIN_VERSION,
  };
  // Each part known, the whole may still match nothing (a list of exclusions only).
  const whole = r.errors.length === errors ? contextProblem(contextOptions(settings)) : undefined;
  if (whole !== undefined) r.fail(path, `OpenSSL refuses these settings: ${whole}`);
  return settings;
}

/**
 * A colon-separated OpenSSL list, every name in it tried alone: OpenSSL
 * skips a name it does not know as long as another one matches, so a
 * misspelt suite or group would quietly narrow the list.
 */
function openSslList(
  r: Reader,
  o: Obj,
  key: string,
  path: string,
  alone: (name: string) => SecureContextOptions,
): string | undefined {
  if (o[key] === undefined) return undefined;
  const list = r.string(o, key, path);
  if (list === undefined) return undefined;
  // Exclusions (!, -), moves (+) and directives (@STRENGTH, @SECLEVEL=n) name nothing of their own.
  for (const name of list.split(":").filter((n) => n !== "" && !/^[!+\-@]/.test(n))) {
    const problem = contextProblem(alone(name));
    if (problem !== undefined) r.fail(join(path, key), `"${name}" is not one OpenSSL knows (${problem})`);
  }
  return list;
}

function contextProblem(options: SecureContextOptions): string | undefined {
  try {
    createSecureContext(options);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * A trunk known by `certNames` trusts whoever shows a verified certificate
 * with that name: verified against the listener's own `ca`, or, without
 * one, against the public roots, where anyone can buy a certificate for a
 * name they hold, and so become that trunk. A listener that asks for client
 * certificates must therefore name the CA that vouches for them.
 */
export function requireClientCa(
  r: Reader,
  listen: readonly (Listener | undefined)[],
  trunks: readonly (Trunk | undefined)[],
): void {
  const byName = trunks.findIndex((t) => (t?.certNames.length ?? 0) > 0);
  if (byName < 0) return;
  listen.forEach((l, i) => {
    if (l === undefined || !("clientAuth" in l)) return;
    if (l.clientAuth === "none" || l.ca !== undefined) return;
    r.fail(
      `listen[${i}].ca`,
      `is required with clientAuth ${l.clientAuth} while trunks are known by certNames (trunks[${byName}]): without it any publicly trusted certificate bearing a trunk's name would be that trunk`,
    );
  });
}

/** A `requireCert` trunk could never connect where no listener asks for a client certificate. */
export function requireCertListener(
  r: Reader,
  listen: readonly (Listener | undefined)[],
  trunks: readonly (Trunk | undefined)[],
): void {
  const asks = listen.some((l) => l !== undefined && "clientAuth" in l && l.clientAuth !== "none");
  if (asks) return;
  trunks.forEach((t, i) => {
    if (t?.requireCert === true)
      r.fail(`trunks[${i}].requireCert`, "needs a tls or wss listener with clientAuth request or require");
  });
}
