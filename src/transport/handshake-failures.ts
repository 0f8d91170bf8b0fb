/**
 * Why a TLS handshake failed, whichever side gave up: we refused the
 * client's certificate, or the client refused ours (its alert), or the two
 * had nothing in common.
 * - unknown_ca: a certificate that chains to no trusted CA;
 * - expired: a certificate past its notAfter;
 * - revoked: a client certificate the listener's `crl` lists, or one
 *   whose CA's CRL is missing or out of date (OpenSSL then cannot tell);
 * - name_mismatch: the client's alert certificate_unknown or
 *   bad_certificate, which OpenSSL clients send when our certificate does
 *   not name the server they asked for (ssl_verify_alarm_type's default);
 * - no_certificate: no client certificate on a `clientAuth: require` listener;
 * - protocol_version: no TLS version both speak (TLS 1.1 and older, RFC 8996);
 * - no_shared_cipher: no suite, group or signature algorithm both speak;
 * - other: anything else (a reset, a timeout, bytes that are no TLS).
 */
export const HANDSHAKE_FAILURES = [
  "unknown_ca",
  "expired",
  "revoked",
  "name_mismatch",
  "no_certificate",
  "protocol_version",
  "no_shared_cipher",
  "other",
] as const;

export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

/**
 * Node's codes: `ERR_SSL_` and OpenSSL's reason for a handshake error (the
 * alert's name after `ALERT_`; OpenSSL 3 spells the prefix `SSLV3_`,
 * `TLSV1_` or `SSL/TLS_`), X509_V_ERR names without the prefix for a
 * client certificate node refused after the handshake.
 */
const BY_CODE: readonly (readonly [RegExp, HandshakeFailure])[] = [
  [
    /ALERT_UNKNOWN_CA$|^(UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED)$/,
    "unknown_ca",
  ],
  [/ALERT_CERTIFICATE_EXPIRED$|^CERT_HAS_EXPIRED$/, "expired"],
  [/ALERT_CERTIFICATE_REVOKED$|^(CERT_REVOKED|UNABLE_TO_GET_CRL|CRL_HAS_EXPIRED|CRL_NOT_YET_VALID)$/, "revoked"],
  [/ALERT_(CERTIFICATE_UNKNOWN|BAD_CERTIFICATE)$/, "name_mismatch"],
  [/^ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE$/, "no_certificate"],
  [
    /^ERR_SSL_(UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|UNSUPPORTED_SSL_VERSION)$|ALERT_PROTOCOL_VERSION$/,
    "protocol_version",
  ],
  [
    /^ERR_SSL_(NO_SHARED_CIPHER|NO_CIPHERS_AVAILABLE|NO_SHARED_GROUPS|NO_SUITABLE_KEY_SHARE|NO_SUITABLE_SIGNATURE_ALGORITHM)$/,
    "no_shared_cipher",
  ],
];

/** The reason for an error's `code` (a tlsClientError's, or a TLSSocket's authorizationError). */
export function handshakeFailure(code: string | undefined): HandshakeFailure {
  if (code === undefined) return "other";
  for (const [pattern, reason] of BY_CODE) if (pattern.test(code)) return reason;
  return "other";
}

/** A count per reason, all zero. */
export function noFailures(): Record<HandshakeFailure, number> {
  return Object.fromEntries(HANDSHAKE_FAILURES.map((r) => [r, 0])) as Record<HandshakeFailure, number>;
}
