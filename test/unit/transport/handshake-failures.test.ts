import { describe, expect, it } from "vitest";
import { handshakeFailure } from "../../../src/transport/handshake-failures.ts";

describe("handshakeFailure", () => {
  it.each([
    // A client certificate node refused after the handshake (its authorizationError).
    ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "unknown_ca"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "unknown_ca"],
    ["CERT_HAS_EXPIRED", "expired"],
    // Listed in the listener's crl, or its CA's CRL missing or out of date.
    ["CERT_REVOKED", "revoked"],
    ["UNABLE_TO_GET_CRL", "revoked"],
    ["CRL_HAS_EXPIRED", "revoked"],
    // The client's alert, as OpenSSL 3 spells its prefixes.
    ["ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "unknown_ca"],
    ["ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED", "expired"],
    ["ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_UNKNOWN", "name_mismatch"],
    ["ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "name_mismatch"],
    ["ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION", "protocol_version"],
    // OpenSSL on our side.
    ["ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", "no_certificate"],
    ["ERR_SSL_UNSUPPORTED_PROTOCOL", "protocol_version"],
    ["ERR_SSL_NO_SHARED_CIPHER", "no_shared_cipher"],
    ["ERR_SSL_NO_SUITABLE_KEY_SHARE", "no_shared_cipher"],
    ["ECONNRESET", "other"],
    ["ERR_SSL_WRONG_VERSION_NUMBER", "other"],
    [undefined, "other"],
  ] as const)("%s: %s", (code, reason) => {
    expect(handshakeFailure(code)).toBe(reason);
  });
});
