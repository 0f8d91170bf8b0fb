import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { SessionTickets } from "./ticket-keys.ts";
import { hardened } from "./tls-policy.ts";

/** A certificate a TLS listener shows the clients that ask for one of its names. */
export interface NamedCertificate {
  /** Exact names and `*.` wildcards, lower case; no name in two certificates. */
  readonly names: readonly string[];
  /** PEM: the certificate and its chain. */
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * The secure contexts a TLS listener chooses from by the server name a
 * client asks for (SNI, RFC 6066 §3), made once per config (start, reload),
 * never per handshake: one per certificate, with the hardened defaults and
 * `common` (the listener's `tls` settings and CA) under it, as the default
 * context has. One certificate each: node takes from the context SNI
 * chooses only its last certificate, key and chain (UseSNIContext), so an
 * ECDSA and an RSA certificate side by side in one would show the one.
 * Each seals and opens session tickets with the shared keys: node asks the
 * context SNI chose for them.
 */
export class ServerNameContexts {
  readonly #byName = new Map<string, SecureContext>();

  constructor(common: SecureContextOptions, certificates: readonly NamedCertificate[], tickets: SessionTickets) {
    for (const { names, cert, key } of certificates) {
      const context = createSecureContext(hardened({ ...common, cert, key }));
      tickets.install(context);
      for (const name of names) this.#byName.set(name, context);
    }
  }

  /** The context for the name a client asked for; undefined: none configured, the listener's default is shown. */
  lookup(servername: string): SecureContext | undefined {
    return matchServerName(this.#byName, servername);
  }
}

/**
 * An exact name first, then the wildcard of its parent: `*.example.com`
 * stands for one leftmost label (RFC 6125 §6.4.3), so it matches
 * `a.example.com` and neither `example.com` nor `a.b.example.com`.
 */
export function matchServerName<T>(byName: ReadonlyMap<string, T>, servername: string): T | undefined {
  const name = servername.toLowerCase().replace(/\.$/, "");
  const exact = byName.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf(".");
  return dot > 0 ? byName.get(`*${name.slice(dot)}`) : undefined;
}
