import { X509Certificate } from "node:crypto";
import type { TlsOptions } from "node:tls";
import { type HandshakeFailure, noFailures } from "./handshake-failures.ts";

/** Upper bounds (seconds) of the TLS handshake duration buckets. */
export const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** Handshakes of one listener: plain numbers, so a worker can send them to the supervisor as they are. */
export interface HandshakeStats {
  /** The listener's address:port, once bound (every worker's listener on it adds to the same series). */
  listener: string;
  /** The certificate's key type: "ec", "rsa", "ed25519", … */
  readonly keyType: string;
  ok: number;
  /** Of `ok`: those that resumed a session (a ticket, RFC 5077 §3.2; a PSK, RFC 8446 §2.2) rather than a full handshake. */
  resumed: number;
  /** Failed handshakes by reason (transport/handshake-failures.ts). */
  readonly failures: Record<HandshakeFailure, number>;
  /** Handshakes done by the version they agreed on ("TLSv1.3", "TLSv1.2"): how many peers still need 1.2. */
  readonly versions: Record<string, number>;
  sumSeconds: number;
  /** Handshakes per bucket (not cumulative); the last slot is over the largest bound. */
  readonly buckets: number[];
}

function handshakeStats(listener: string, keyType: string): HandshakeStats {
  const buckets = new Array(HANDSHAKE_BUCKETS.length + 1).fill(0);
  return { listener, keyType, ok: 0, resumed: 0, failures: noFailures(), versions: {}, sumSeconds: 0, buckets };
}

/**
 * A TLS listener's handshakes, one HandshakeStats per key type of the
 * certificate it showed: a listener with an ECDSA and an RSA certificate
 * (OpenSSL picks one per client), or SNI certificates of several types,
 * counts each handshake under the certificate shown. A failed handshake may
 * end before any is chosen: it counts under the default certificate's.
 */
export class ListenerHandshakes {
  readonly #byKeyType = new Map<string, HandshakeStats>();
  readonly #default: HandshakeStats;
  #listener = "";

  /** `keyTypes`: the default certificates' ("ec", "rsa"), the first the `cert`'s; each has a series from the start. */
  constructor(keyTypes: readonly string[]) {
    for (const keyType of keyTypes) this.of(keyType);
    this.#default = this.of(keyTypes[0] ?? "unknown");
  }

  /** The listener's address:port, once bound. */
  set listener(label: string) {
    this.#listener = label;
    for (const s of this.#byKeyType.values()) s.listener = label;
  }

  /** The handshakes under certificates of `keyType`. */
  of(keyType: string): HandshakeStats {
    let stats = this.#byKeyType.get(keyType);
    if (stats === undefined) {
      stats = handshakeStats(this.#listener, keyType);
      this.#byKeyType.set(keyType, stats);
    }
    return stats;
  }

  /** Where a failed handshake is counted. */
  get failures(): Record<HandshakeFailure, number> {
    return this.#default.failures;
  }

  all(): HandshakeStats[] {
    return [...this.#byKeyType.values()];
  }
}

/** A certificate's key type ("ec", "rsa", "ed25519", …); "unknown" for one node:tls took but X509Certificate cannot read. */
export function keyTypeOf(cert: string | Buffer | X509Certificate | undefined): string {
  try {
    const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert ?? "");
    return x509.publicKey.asymmetricKeyType ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The key types of the certificates in a listener's (or a name's) TLS options, in their order. */
export function keyTypesOf(options: TlsOptions): string[] {
  return ([options.cert ?? []].flat() as (string | Buffer)[]).map(keyTypeOf);
}

/** The key type the certificates of all these options share; undefined if they are of more than one. */
export function onlyKeyType(options: readonly TlsOptions[]): string | undefined {
  const types = new Set(options.flatMap(keyTypesOf));
  return types.size === 1 ? [...types][0] : undefined;
}

export function recordHandshake(s: HandshakeStats, seconds: number, version: string | null, resumed: boolean): void {
  s.ok++;
  if (resumed) s.resumed++;
  const v = version ?? "unknown";
  s.versions[v] = (s.versions[v] ?? 0) + 1;
  s.sumSeconds += seconds;
  let i = 0;
  while (i < HANDSHAKE_BUCKETS.length && seconds > (HANDSHAKE_BUCKETS[i] as number)) i++;
  s.buckets[i] = (s.buckets[i] ?? 0) + 1;
}
