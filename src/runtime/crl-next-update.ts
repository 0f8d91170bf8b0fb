import { readFileSync } from "node:fs";
import { pemCrls } from "../config/crl-file.ts";
import { nextUpdate } from "../config/der.ts";
import type { Config } from "../config/schema.ts";
import { listenerLabel } from "../transport/address.ts";

/** When a listener's client CRL is due for renewal (sipedge_tls_crl_next_update_timestamp_seconds). */
export interface CrlNextUpdate {
  /** The listener whose `crl` it is: "address:port". */
  readonly listener: string;
  /** The earliest nextUpdate of the file's CRLs, seconds since the epoch. */
  readonly nextUpdate: number;
}

/**
 * Each TLS and WSS listener's `crl` (and its `certificates` entries'), dated once per config (start, reload)
 * like the certificates (runtime/certificate-expiry.ts): the CRLs OpenSSL
 * checks clients against are the ones the last reload loaded, so a file
 * renewed without a reload changes nothing here either. Past its
 * nextUpdate, OpenSSL refuses every client certificate that CA signed
 * (CRL_HAS_EXPIRED); check-config and a reload refuse such a file, but one
 * loaded in time goes stale while sipedge runs. A file of several CRLs
 * gives its earliest; a file that cannot be read, or whose CRLs name no
 * nextUpdate, gives none (check-config says why).
 */
export function crlNextUpdates(config: Config): CrlNextUpdate[] {
  return config.listen.flatMap((l) => {
    if (l.transport !== "tls" && l.transport !== "wss") return [];
    // A `certificates` entry's own CRL counts for its listener too: its clients come in there.
    const files = new Set([l.crl, ...l.certificates.map((c) => c.clients?.crl)].filter((f) => f !== undefined));
    const dates = [...files].flatMap((file) => crlDates(file));
    if (dates.length === 0) return [];
    return [{ listener: listenerLabel(l.address, l.port), nextUpdate: Math.min(...dates) / 1000 }];
  });
}

/** The nextUpdate of each CRL in a file (ms since the epoch); none when it cannot be read. */
function crlDates(file: string): number[] {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch {
    return [];
  }
  return pemCrls(text).flatMap((der) => nextUpdate(der)?.getTime() ?? []);
}
