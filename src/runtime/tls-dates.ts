import type { Config } from "../config/schema.ts";
import { type CertificateExpiry, certificateExpiries } from "./certificate-expiry.ts";
import { type CrlNextUpdate, crlNextUpdates } from "./crl-next-update.ts";

/** What of a config's TLS files runs out, read by the supervisor once per config (start, reload) for the metrics. */
export interface TlsDates {
  /** When each certificate sipedge shows expires. */
  readonly certificates: readonly CertificateExpiry[];
  /** When each listener's client CRL is due for renewal. */
  readonly crls: readonly CrlNextUpdate[];
}

export const NO_TLS_DATES: TlsDates = { certificates: [], crls: [] };

export function tlsDates(config: Config): TlsDates {
  return { certificates: certificateExpiries(config), crls: crlNextUpdates(config) };
}
