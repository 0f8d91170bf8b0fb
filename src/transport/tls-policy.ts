import { constants } from "node:crypto";
import type { SecureContextOptions } from "node:tls";

/**
 * The TLS 1.2 suites sipedge offers and accepts: forward secret (ECDHE) and
 * AEAD only (AES-GCM, ChaCha20-Poly1305), ECDSA before RSA, as RFC 9325
 * §4.2 recommends; no CBC, SHA-1 MAC or static RSA. TLS 1.3's suites are all
 * AEAD and are left to OpenSSL's default (Node keeps them when the list
 * names none).
 */
export const DEFAULT_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** RFC 3261 §26.2.1 wants TLS for sips; RFC 8996 retires 1.0 and 1.1. */
export const DEFAULT_MIN_VERSION = "TLSv1.2";

/**
 * What every TLS context of sipedge's has unless the config says otherwise
 * (listen[].tls): a peer gets TLS 1.3 whenever it offers it (OpenSSL picks
 * the highest version both speak, up to Node's maxVersion, 1.3), and on 1.2
 * our order of suites, not its own.
 */
const HARDENED: SecureContextOptions = {
  minVersion: DEFAULT_MIN_VERSION,
  ciphers: DEFAULT_CIPHERS,
  honorCipherOrder: true,
};

/**
 * A peer may not renegotiate a TLS 1.2 session: each renegotiation is a
 * full handshake's crypto on our loop for a few bytes of the peer's
 * (CVE-2011-1473), and nothing in SIP needs one. OpenSSL answers with a
 * no_renegotiation alert; TLS 1.3 has no renegotiation at all.
 */
const NO_RENEGOTIATION = constants.SSL_OP_NO_RENEGOTIATION;

/**
 * Options with the hardened defaults under them: what the config gives (a
 * certificate, `tls.ciphers`, …) wins, renegotiation stays off. Every TLS
 * listener, every context a reload sets and every connection to a TLS
 * backend is made through this.
 */
export function hardened<T extends SecureContextOptions>(options: T): T {
  return { ...HARDENED, ...options, secureOptions: (options.secureOptions ?? 0) | NO_RENEGOTIATION };
}
