// The few DER fields of X.509 certificates and CRLs that node:crypto does not
// give (it has no CRL object at all), read from the bytes OpenSSL has loaded already.

/** One DER element: its tag, where it begins, and where its contents begin and end. */
interface Element {
  readonly tag: number;
  readonly at: number;
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
  return start + length <= der.length ? { tag, at, start, end: start + length } : undefined;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
/** A certificate's version: context-specific, constructed, [0]. */
const VERSION = 0xa0;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/**
 * The first `count` fields of the SEQUENCE a certificate or CRL signs
 * (tbsCertificate, tbsCertList), the first element of the outer SEQUENCE;
 * undefined when the DER is not that shape.
 */
function signedFields(der: Buffer, count: number): Element[] | undefined {
  const outer = element(der, 0);
  const tbs = outer?.tag === SEQUENCE ? element(der, outer.start) : undefined;
  if (tbs?.tag !== SEQUENCE) return undefined;
  let at = tbs.start;
  const fields: Element[] = [];
  while (at < tbs.end && fields.length < count) {
    const e = element(der, at);
    if (e === undefined) return undefined;
    fields.push(e);
    at = e.end;
  }
  return fields;
}

/**
 * RFC 5280 §5.1: CertificateList ::= SEQUENCE { tbsCertList SEQUENCE {
 * version INTEGER OPTIONAL, signature, issuer, thisUpdate Time,
 * nextUpdate Time OPTIONAL, … } … }: the fields after the version.
 */
function crlFields(der: Buffer): Element[] {
  const fields = signedFields(der, 5) ?? [];
  return fields[0]?.tag === INTEGER ? fields.slice(1) : fields;
}

/**
 * A CRL's nextUpdate. undefined: none, or not that shape (OpenSSL has read
 * the file already; this only dates it).
 */
export function nextUpdate(der: Buffer): Date | undefined {
  const next = crlFields(der)[3];
  if (next === undefined) return undefined;
  return time(next.tag, der.toString("latin1", next.start, next.end));
}

/** A CRL's issuer Name (RFC 5280 §5.1.2.3), as DER: OpenSSL finds a certificate's CRL by it. */
export function crlIssuer(der: Buffer): Buffer | undefined {
  const issuer = crlFields(der)[1];
  return issuer === undefined ? undefined : der.subarray(issuer.at, issuer.end);
}

/**
 * A certificate's subject Name, as DER: RFC 5280 §4.1: TBSCertificate ::=
 * SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber, signature,
 * issuer, validity, subject, … }.
 */
export function certificateSubject(der: Buffer): Buffer | undefined {
  const fields = signedFields(der, 6) ?? [];
  const subject = fields[0]?.tag === VERSION ? fields[5] : fields[4];
  return subject === undefined ? undefined : der.subarray(subject.at, subject.end);
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
