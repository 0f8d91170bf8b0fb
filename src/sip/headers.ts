import { lower } from "./chars.ts";

/**
 * The headers a proxy touches get a small integer id so the parser can find
 * them without building a lower-cased string per header line. Ids stay
 * below 31: a message keeps one bit per id for "present" and "repeated".
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
  readonly name: string;
  readonly next: Entry | undefined;
}

/**
 * Indexed by length and first char (both mod 32): one array read and one
 * comparison identify a name, with no hashing (a Map costs more here than
 * the rest of the header line's parsing).
 */
const BY_SHAPE: (Entry | undefined)[] = new Array(1024).fill(undefined);

function shapeOf(len: number, first: number): number {
  return ((len & 31) << 5) | (first & 31);
}

function register(name: string, id: HeaderId): void {
  const lowerName = name.toLowerCase();
  const shape = shapeOf(lowerName.length, lowerName.charCodeAt(0));
  BY_SHAPE[shape] = { id, name: lowerName, next: BY_SHAPE[shape] };
}

for (const [id, name] of Object.entries(CANONICAL_NAME)) {
  if (name !== "") register(name, Number(id) as HeaderId);
}
for (const [name, id] of COMPACT) register(name, id);

/** Identifies the header name s[start, end) case-insensitively. */
export function headerIdOf(s: string, start: number, end: number): HeaderId {
  const len = end - start;
  for (let e = BY_SHAPE[shapeOf(len, s.charCodeAt(start))]; e !== undefined; e = e.next) {
    const name = e.name;
    if (name.length !== len) continue;
    let i = 0;
    while (i < len && name.charCodeAt(i) === lower(s.charCodeAt(start + i))) i++;
    if (i === len) return e.id;
  }
  return HeaderId.Other;
}

/** Resolves a header name given as text (any case, long or compact form). */
export function headerIdOfName(name: string): HeaderId {
  return headerIdOf(name, 0, name.length);
}

/**
 * Headers that may appear at most once (RFC 3261 §7.3.1, RFC 4475 §3.3.8),
 * as a bit per HeaderId: a second occurrence earns a 400.
 */
export const SINGLE_VALUED_MASK: number = [
  HeaderId.CallId,
  HeaderId.CSeq,
  HeaderId.From,
  HeaderId.To,
  HeaderId.MaxForwards,
  HeaderId.ContentLength,
  HeaderId.ContentType,
  HeaderId.Expires,
].reduce((mask, id) => mask | (1 << id), 0);
