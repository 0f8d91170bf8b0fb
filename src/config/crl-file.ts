import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import type { ConfigError } from "./schema.ts";

const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g;

/**
 * A listener's `crl` file, checked as node will load it: PEM CRLs that
 * OpenSSL takes with the listener's CA, none past its nextUpdate (OpenSSL
 * then refuses every certificate that CA signed: CRL_HAS_EXPIRED). A file
 * that cannot be read or holds no CRL would otherwise stop the listener
 * from starting, or a reload from applying; `ca` is checked on its own.
 */
export function checkCrl(crl: string, ca: string, at: string, now: Date): ConfigError[] {
  let text: Buffer;
  try {
    text = readFileSync(crl);
  } catch (e) {
    return [{ path: at, problem: `cannot read ${crl}: ${(e as Error).message}` }];
  }
  const ders = pemCrls(text);
  if (ders.length === 0) return [{ path: at, problem: `${crl} holds no PEM CRL` }];
  try {
    createSecureContext({ ca: readFileSync(ca), crl: text });
  } catch (e) {
    return [{ path: at, problem: `${crl}: OpenSSL refuses it (${(e as Error).message})` }];
  }
  return ders.flatMap((der, i) => {
    const next = nextUpdate(der);
    if (next === undefined || next > now) return [];
    const which = ders.length > 1 ? ` (CRL ${i + 1} of ${ders.length})` : "";
    return [
      {
        path: at,
        problem: `${crl}${which} was due for renewal on ${next.toISOString()}: its CA's client certificates would all be refused`,
      },
    ];
  });
}

/** The DER of each PEM CRL in a `crl` file, in file order. */
export function pemCrls(text: Buffer): Buffer[] {
  return [...text.toString("latin1").matchAll(PEM_CRL)].map((m) => Buffer.from(m[1] ?? "", "base64"));
}

/** One DER element: its tag, and where its contents begin and end. */
interface Element {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

function element(der: Buffer, at: number): Element | undefined {
  const tag = der[at];
  let length = der[at + 1];
  if (tag === undefined || length === undefined) return undefined;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > der.length) return undefined;
    length = der.readUIntBE(start, bytes);
    start += bytes;
  }
  return start + length <= der.length ? { tag, start, end: start + length } : undefined;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/**
 * RFC 5280 §5.1: CertificateList ::= SEQUENCE { tbsCertList SEQUENCE {
 * version INTEGER OPTIONAL, signature, issuer, thisUpdate Time,
 * nextUpdate Time OPTIONAL, … } … }. undefined: none, or not that shape
 * (OpenSSL has read the file already; this only dates it).
 */
export function nextUpdate(der: Buffer): Date | undefined {
  const list = element(der, 0);
  const tbs = list?.tag === SEQUENCE ? element(der, list.start) : undefined;
  if (tbs?.tag !== SEQUENCE) return undefined;
  let at = tbs.start;
  const fields: Element[] = [];
  while (at < tbs.end && fields.length < 5) {
    const e = element(der, at);
    if (e === undefined) return undefined;
    fields.push(e);
    at = e.end;
  }
  const times = fields[0]?.tag === INTEGER ? fields.slice(3) : fields.slice(2);
  const next = times[1];
  if (next === undefined) return undefined;
  return time(next.tag, der.toString("latin1", next.start, next.end));
}

/** RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (years 1950-2049), GeneralizedTime YYYYMMDDHHMMSSZ. */
function time(tag: number, text: string): Date | undefined {
  const m =
    tag === UTC_TIME
      ? /^(\d{2})(\d{10})Z$/.exec(text)
      : tag === GENERALIZED_TIME
        ? /^(\d{4})(\d{10})Z$/.exec(text)
        : null;
  if (m === null) return undefined;
  const [, y = "", rest = ""] = m;
  const year = y.length === 2 ? (Number(y) < 50 ? 2000 : 1900) + Number(y) : Number(y);
  const [mo, d, h, mi, s] = (rest.match(/\d{2}/g) ?? []).map(Number);
  return new Date(Date.UTC(year, (mo ?? 1) - 1, d, h, mi, s));
}
