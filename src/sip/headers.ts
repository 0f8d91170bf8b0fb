import { lower } from "./chars.ts";

/**
 * The headers a proxy touches get a small integer id so the parser can find
 * them without building a lower-cased string per header line.
 */
export const HeaderId = {
  Other: 0,
  Via: 1,
  Route: 2,
  RecordRoute: 3,
  Path: 4,
  CallId: 5,
  CSeq: 6,
  From: 7,
  To: 8,
  MaxForwards: 9,
  Contact: 10,
  ContentLength: 11,
  ContentType: 12,
  Supported: 13,
  Require: 14,
  ProxyRequire: 15,
  Expires: 16,
  Subject: 17,
  ContentEncoding: 18,
  Date: 19,
  Event: 20,
  ReferTo: 21,
  AllowEvents: 22,
  Unsupported: 23,
  FlowTimer: 24,
} as const;
export type HeaderId = (typeof HeaderId)[keyof typeof HeaderId];

/** Canonical spelling, used when sipedge writes a header itself. */
export const CANONICAL_NAME: Readonly<Record<HeaderId, string>> = {
  [HeaderId.Other]: "",
  [HeaderId.Via]: "Via",
  [HeaderId.Route]: "Route",
  [HeaderId.RecordRoute]: "Record-Route",
  [HeaderId.Path]: "Path",
  [HeaderId.CallId]: "Call-ID",
  [HeaderId.CSeq]: "CSeq",
  [HeaderId.From]: "From",
  [HeaderId.To]: "To",
  [HeaderId.MaxForwards]: "Max-Forwards",
  [HeaderId.Contact]: "Contact",
  [HeaderId.ContentLength]: "Content-Length",
  [HeaderId.ContentType]: "Content-Type",
  [HeaderId.Supported]: "Supported",
  [HeaderId.Require]: "Require",
  [HeaderId.ProxyRequire]: "Proxy-Require",
  [HeaderId.Expires]: "Expires",
  [HeaderId.Subject]: "Subject",
  [HeaderId.ContentEncoding]: "Content-Encoding",
  [HeaderId.Date]: "Date",
  [HeaderId.Event]: "Event",
  [HeaderId.ReferTo]: "Refer-To",
  [HeaderId.AllowEvents]: "Allow-Events",
  [HeaderId.Unsupported]: "Unsupported",
  [HeaderId.FlowTimer]: "Flow-Timer",
};

// RFC 3261 §7.3.3 compact forms, plus RFC 3265 (o, u) and RFC 3515 (r).
const COMPACT: ReadonlyArray<readonly [string, HeaderId]> = [
  ["v", HeaderId.Via],
  ["i", HeaderId.CallId],
  ["f", HeaderId.From],
  ["t", HeaderId.To],
  ["m", HeaderId.Contact],
  ["l", HeaderId.ContentLength],
  ["c", HeaderId.ContentType],
  ["k", HeaderId.Supported],
  ["s", HeaderId.Subject],
  ["e", HeaderId.ContentEncoding],
  ["o", HeaderId.Event],
  ["r", HeaderId.ReferTo],
  ["u", HeaderId.AllowEvents],
];

interface Entry {
  readonly id: HeaderId;
  readonly bytes: Uint8Array;
  readonly next: Entry | undefined;
}

const BY_HASH = new Map<number, Entry>();

function hashString(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

function register(name: string, id: HeaderId): void {
  const lowerName = name.toLowerCase();
  const h = hashString(lowerName);
  BY_HASH.set(h, { id, bytes: Buffer.from(lowerName, "latin1"), next: BY_HASH.get(h) });
}

for (const [id, name] of Object.entries(CANONICAL_NAME)) {
  if (name !== "") register(name, Number(id) as HeaderId);
}
for (const [name, id] of COMPACT) register(name, id);

/** Identifies the header name in buf[start, end) case-insensitively. */
export function headerIdOf(buf: Uint8Array, start: number, end: number): HeaderId {
  let h = 0;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + lower(buf[i] as number)) | 0;
  for (let e = BY_HASH.get(h); e !== undefined; e = e.next) {
    if (e.bytes.length !== end - start) continue;
    let same = true;
    for (let i = 0; i < e.bytes.length; i++) {
      if (e.bytes[i] !== lower(buf[start + i] as number)) {
        same = false;
        break;
      }
    }
    if (same) return e.id;
  }
  return HeaderId.Other;
}

/** Resolves a header name given as text (any case, long or compact form). */
export function headerIdOfName(name: string): HeaderId {
  const b = Buffer.from(name, "latin1");
  return headerIdOf(b, 0, b.length);
}

/**
 * Headers that may appear at most once (RFC 3261 §7.3.1, RFC 4475 §3.3.8):
 * a second occurrence makes the request unanswerable except with 400.
 */
export const SINGLE_VALUED: ReadonlySet<HeaderId> = new Set<HeaderId>([
  HeaderId.CallId,
  HeaderId.CSeq,
  HeaderId.From,
  HeaderId.To,
  HeaderId.MaxForwards,
  HeaderId.ContentLength,
  HeaderId.ContentType,
  HeaderId.Expires,
]);
