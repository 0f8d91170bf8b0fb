import { HANDSHAKE_BUCKETS } from "../../transport/handshakes.ts";
import { failedHandshakes, handshakeSeries, handshakes } from "./aggregate.ts";
import { counter, type Family, gauge, histogram } from "./family.ts";

/** The client-facing TLS listeners' rows of the catalogue (catalogue.ts lists them in this order). */
export const TLS_FAMILIES: readonly Family[] = [
  counter({
    name: "sipedge_tls_handshakes_total",
    help: "TLS handshakes on the client-facing listeners, by key type and result",
    labels: ["key_type", "result"],
    read: (s) =>
      handshakes(s.workers).flatMap((h) => [
        [{ key_type: h.keyType, result: "ok" }, h.ok] as const,
        [{ key_type: h.keyType, result: "failed" }, failedHandshakes(h)] as const,
      ]),
  }),
  counter({
    name: "sipedge_tls_handshakes_by_session_total",
    help: "TLS handshakes done on the client-facing listeners, by listener (address:port), key type and session: resumed (a ticket any IO worker opens) or full",
    labels: ["listener", "key_type", "session"],
    read: (s) =>
      handshakes(s.workers).flatMap((h) => [
        [{ listener: h.listener, key_type: h.keyType, session: "full" }, h.ok - h.resumed] as const,
        [{ listener: h.listener, key_type: h.keyType, session: "resumed" }, h.resumed] as const,
      ]),
  }),
  counter({
    name: "sipedge_tls_handshake_failures_total",
    help: "TLS handshakes failed on the client-facing listeners, by listener (address:port), key type and reason: unknown_ca, expired, revoked (a client certificate its listener's crl lists), name_mismatch, no_certificate, protocol_version, no_shared_cipher, other",
    labels: ["listener", "key_type", "reason"],
    read: (s) =>
      handshakes(s.workers).flatMap((h) =>
        Object.entries(h.failures).map(
          ([reason, n]) => [{ listener: h.listener, key_type: h.keyType, reason }, n] as const,
        ),
      ),
  }),
  counter({
    name: "sipedge_tls_handshakes_by_version_total",
    help: "TLS handshakes done on the client-facing listeners, by key type and the protocol version agreed on",
    labels: ["key_type", "version"],
    read: (s) =>
      handshakes(s.workers).flatMap((h) =>
        Object.entries(h.versions).map(([version, n]) => [{ key_type: h.keyType, version }, n] as const),
      ),
  }),
  histogram({
    name: "sipedge_tls_handshake_seconds",
    help: "TLS handshake duration on the client-facing listeners, by key type",
    labels: ["key_type"],
    bounds: HANDSHAKE_BUCKETS,
    read: (s) => handshakeSeries(s.workers),
  }),
  gauge({
    name: "sipedge_tls_certificate_expiry_timestamp_seconds",
    help: "When each certificate sipedge shows expires (its notAfter), by listener (address:port, or backend), subject CN or first DNS name, and key type",
    labels: ["listener", "name", "key_type"],
    read: (s) =>
      s.tlsDates.certificates.map(
        (c) => [{ listener: c.listener, name: c.name, key_type: c.keyType }, c.expires] as const,
      ),
  }),
  gauge({
    name: "sipedge_tls_crl_next_update_timestamp_seconds",
    help: "When each listener's client CRL (its crl file, as the last start or reload loaded it) is due for renewal: the earliest nextUpdate of its CRLs, by listener (address:port); past it, every client certificate its CA signed is refused",
    labels: ["listener"],
    read: (s) => s.tlsDates.crls.map((c) => [{ listener: c.listener }, c.nextUpdate] as const),
  }),
];
