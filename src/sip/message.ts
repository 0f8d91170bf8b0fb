import { type Address, parseAddress } from "./address.ts";
import type { SipError, SipErrorCode } from "./errors.ts";
import { CANONICAL_NAME, HeaderId, headerIdOfName } from "./headers.ts";
import { MAX_VALUES_PER_HEADER, MAX_VALUES_PER_MESSAGE, SPANS, splitList } from "./list.ts";
import type { Result } from "./result.ts";
import {
  type CSeq,
  checkDate,
  parseCallId,
  parseCSeq,
  parseDeltaSeconds,
  parseMaxForwards,
  parseOptionTags,
} from "./scalars.ts";
import type { GrammarError } from "./text.ts";
import { parseUri, type Uri } from "./uri.ts";
import { parseVia, type Via } from "./via.ts";

/** Fields per header in the flat header table. */
export const HEADER_STRIDE = 6;
export const H_ID = 0;
export const H_NAME_START = 1;
export const H_NAME_END = 2;
export const H_VALUE_START = 3;
export const H_VALUE_END = 4;
export const H_FOLDED = 5;

/** Offsets the parser found; everything else is decoded on first access. */
export type MessageLayout = Pick<
  SipMessageBase,
  | "buf"
  | "text"
  | "start"
  | "startLineEnd"
  | "headers"
  | "present"
  | "repeated"
  | "headersEnd"
  | "bodyStart"
  | "bodyEnd"
  | "contentLength"
>;

export type Contacts = { readonly star: true } | { readonly star: false; readonly list: readonly Address[] };

/** An address together with the byte range of its value in the message. */
export interface Located<T> {
  readonly value: T;
  /** Index of the header line in the header table. */
  readonly header: number;
  readonly start: number;
  readonly end: number;
}

type Cached<T> = Result<T, SipError> | undefined;

const ABSENT = { ok: true, value: undefined } as const;
const NONE: readonly never[] = [];

function itself<T>(value: T): T {
  return value;
}

function located<T>(value: T, header: number, start: number, end: number): Located<T> {
  return { value, header, start, end };
}

/**
 * A parsed message: offsets over the received bytes plus lazily decoded,
 * cached header values. Decoders return Results; nothing here throws on input.
 */
abstract class SipMessageBase {
  readonly buf: Buffer;
  /**
   * The message from its start line on as latin1 text (one char per byte),
   * at least through the header section; decoders read ranges of it.
   */
  readonly text: string;
  /** First byte of the start line. */
  readonly start: number;
  /** Offset of the CRLF that ends the start line. */
  readonly startLineEnd: number;
  /** Flat table, HEADER_STRIDE numbers per header line, in message order. */
  readonly headers: readonly number[];
  /** Bit (1 << HeaderId) set for every header id present. */
  readonly present: number;
  /** Bit set for every header id present more than once. */
  readonly repeated: number;
  /** Offset of the empty line's CRLF that ends the header section. */
  readonly headersEnd: number;
  readonly bodyStart: number;
  /** End of the message: bytes past it (RFC 3261 §18.3) are not part of it. */
  readonly bodyEnd: number;
  readonly contentLength: number | undefined;

  #via: Cached<readonly Via[]>;
  #cseq: Cached<CSeq>;
  #callId: Cached<string>;
  #from: Cached<Address>;
  #to: Cached<Address>;
  #maxForwards: Cached<number | undefined>;
  #contacts: Cached<Contacts | undefined>;
  // Where #source put the value: s[#a, #b), message offset = #base + index.
  #a = 0;
  #b = 0;
  #base = 0;
  /** Route, Record-Route, Path and Contact lists, by header id. */
  #addresses: Cached<readonly Located<Address>[]>[] | undefined;

  constructor(layout: MessageLayout) {
    this.buf = layout.buf;
    this.text = layout.text;
    this.start = layout.start;
    this.startLineEnd = layout.startLineEnd;
    this.headers = layout.headers;
    this.present = layout.present;
    this.repeated = layout.repeated;
    this.headersEnd = layout.headersEnd;
    this.bodyStart = layout.bodyStart;
    this.bodyEnd = layout.bodyEnd;
    this.contentLength = layout.contentLength;
  }

  get headerCount(): number {
    return this.headers.length / HEADER_STRIDE;
  }

  headerId(i: number): HeaderId {
    return this.headers[i * HEADER_STRIDE + H_ID] as HeaderId;
  }

  /** The header's name as written. */
  headerName(i: number): string {
    const h = i * HEADER_STRIDE;
    return this.#slice(this.headers[h + H_NAME_START] as number, this.headers[h + H_NAME_END] as number);
  }

  /** The header's value as latin1 text, a folded line break blanked to spaces. */
  headerValue(i: number): string {
    const h = i * HEADER_STRIDE;
    const s = this.#slice(this.headers[h + H_VALUE_START] as number, this.headers[h + H_VALUE_END] as number);
    return this.headers[h + H_FOLDED] === 1 ? s.replace(/[\r\n]/g, " ") : s;
  }

  /** Bytes [a, b) of the message, as text. */
  #slice(a: number, b: number): string {
    return this.text.slice(a - this.start, b - this.start);
  }

  headerValueStart(i: number): number {
    return this.headers[i * HEADER_STRIDE + H_VALUE_START] as number;
  }

  headerValueEnd(i: number): number {
    return this.headers[i * HEADER_STRIDE + H_VALUE_END] as number;
  }

  /** Where the header line starts (its name). */
  headerLineStart(i: number): number {
    return this.headers[i * HEADER_STRIDE + H_NAME_START] as number;
  }

  /** Just past the CRLF that ends the header line (trailing LWS included). */
  headerLineEnd(i: number): number {
    const valueEnd = this.headers[i * HEADER_STRIDE + H_VALUE_END] as number;
    return this.text.indexOf("\r\n", valueEnd - this.start) + 2 + this.start;
  }

  /** Index of the first header with this id, or -1. */
  indexOf(id: HeaderId, from = 0): number {
    if (id !== HeaderId.Other && !(this.present & (1 << id))) return -1;
    for (let i = from, n = this.headerCount; i < n; i++) {
      if (this.headers[i * HEADER_STRIDE + H_ID] === id) return i;
    }
    return -1;
  }

  countOf(id: HeaderId): number {
    let n = 0;
    for (let i = 0; i < this.headers.length; i += HEADER_STRIDE) if (this.headers[i] === id) n++;
    return n;
  }

  /** Raw values of every header with this name (any case, long or compact). */
  values(name: string): string[] {
    const id = headerIdOfName(name);
    const out: string[] = [];
    const lowerName = name.toLowerCase();
    for (let i = 0, n = this.headerCount; i < n; i++) {
      if (id !== HeaderId.Other ? this.headerId(i) === id : this.headerName(i).toLowerCase() === lowerName) {
        out.push(this.headerValue(i));
      }
    }
    return out;
  }

  get body(): Buffer {
    return this.buf.subarray(this.bodyStart, this.bodyEnd);
  }

  /** The message's own bytes (trailing datagram bytes excluded). */
  get bytes(): Buffer {
    return this.buf.subarray(this.start, this.bodyEnd);
  }

  /** Every Via value in order, across repeated and comma-joined headers. */
  via(): Result<readonly Via[], SipError> {
    if (this.#via === undefined) {
      this.#via = this.#each(HeaderId.Via, "ERR_SIP_BAD_VIA", parseVia, itself);
    }
    return this.#via;
  }

  cseq(): Result<CSeq, SipError> {
    this.#cseq ??= this.#single(HeaderId.CSeq, "ERR_SIP_BAD_CSEQ", parseCSeq);
    return this.#cseq;
  }

  callId(): Result<string, SipError> {
    this.#callId ??= this.#single(HeaderId.CallId, "ERR_SIP_BAD_CALL_ID", parseCallId);
    return this.#callId;
  }

  from(): Result<Address, SipError> {
    this.#from ??= this.#single(HeaderId.From, "ERR_SIP_BAD_ADDRESS", parseAddress);
    return this.#from;
  }

  to(): Result<Address, SipError> {
    this.#to ??= this.#single(HeaderId.To, "ERR_SIP_BAD_ADDRESS", parseAddress);
    return this.#to;
  }

  /** undefined when absent (RFC 2543 peers omit it, RFC 4475 §3.4.1). */
  maxForwards(): Result<number | undefined, SipError> {
    this.#maxForwards ??= this.#optional(HeaderId.MaxForwards, "ERR_SIP_BAD_MAX_FORWARDS", parseMaxForwards);
    return this.#maxForwards;
  }

  expires(): Result<number | undefined, SipError> {
    return this.#optional(HeaderId.Expires, "ERR_SIP_BAD_EXPIRES", parseDeltaSeconds);
  }

  date(): Result<string | undefined, SipError> {
    return this.#optional(HeaderId.Date, "ERR_SIP_BAD_DATE", checkDate);
  }

  /** undefined when there is no Contact header. */
  contacts(): Result<Contacts | undefined, SipError> {
    if (this.#contacts !== undefined) return this.#contacts;
    const i = this.indexOf(HeaderId.Contact);
    if (i >= 0 && this.headerValue(i).trim() === "*") {
      this.#contacts =
        this.countOf(HeaderId.Contact) === 1
          ? { ok: true, value: { star: true } }
          : this.#error("ERR_SIP_BAD_ADDRESS", this.headerValueStart(i), "Contact * must stand alone");
      return this.#contacts;
    }
    const list = this.addresses(HeaderId.Contact);
    this.#contacts = !list.ok
      ? list
      : { ok: true, value: i < 0 ? undefined : { star: false, list: list.value.map((l) => l.value) } };
    return this.#contacts;
  }

  /** Route, Record-Route, Path or Contact values with their byte ranges. */
  addresses(id: HeaderId): Result<readonly Located<Address>[], SipError> {
    this.#addresses ??= [];
    let r = this.#addresses[id];
    if (r === undefined) {
      r = this.#each(id, "ERR_SIP_BAD_ADDRESS", parseAddress, located);
      this.#addresses[id] = r;
    }
    return r;
  }

  contentType(): string | undefined {
    const i = this.indexOf(HeaderId.ContentType);
    return i < 0 ? undefined : this.headerValue(i).trim();
  }

  /** Option tags of every Supported, Require or Proxy-Require header. */
  optionTags(id: typeof HeaderId.Supported | typeof HeaderId.Require | typeof HeaderId.ProxyRequire) {
    const tags: string[] = [];
    for (let i = this.indexOf(id); i >= 0; i = this.indexOf(id, i + 1)) {
      const r = this.#decode(i, "ERR_SIP_BAD_HEADER", parseOptionTags);
      if (!r.ok) return r;
      tags.push(...r.value);
    }
    return { ok: true as const, value: tags };
  }

  #error(code: SipErrorCode, offset: number, detail: string): { ok: false; error: SipError } {
    return { ok: false, error: { code, offset, detail } };
  }

  #grammarError(code: SipErrorCode, i: number, offset: number, e: GrammarError) {
    const name = CANONICAL_NAME[this.headerId(i)] || this.headerName(i);
    return this.#error(e.code ?? code, offset, `${name}: ${e.detail}`);
  }

  /**
   * Decoders read header values in place, as ranges of the message text
   * (a slice would be a SlicedString, slower for every charCodeAt). A
   * folded value is the exception: it is copied with its line breaks
   * blanked. Returns the text to read; #a, #b and #base say where.
   */
  #source(i: number): string {
    const h = i * HEADER_STRIDE;
    this.#base = this.start;
    this.#a = (this.headers[h + H_VALUE_START] as number) - this.start;
    this.#b = (this.headers[h + H_VALUE_END] as number) - this.start;
    if (this.headers[h + H_FOLDED] !== 1) return this.text;
    const flat = this.text.slice(this.#a, this.#b).replace(/[\r\n]/g, " ");
    this.#base += this.#a;
    this.#a = 0;
    this.#b = flat.length;
    return flat;
  }

  #decode<T>(
    i: number,
    code: SipErrorCode,
    parse: (s: string, a: number, b: number) => Result<T, GrammarError>,
  ): Result<T, SipError> {
    const s = this.#source(i);
    const r = parse(s, this.#a, this.#b);
    return r.ok ? r : this.#grammarError(code, i, this.#base + r.error.at, r.error);
  }

  #single<T>(
    id: HeaderId,
    code: SipErrorCode,
    parse: (s: string, a: number, b: number) => Result<T, GrammarError>,
  ): Result<T, SipError> {
    const i = this.indexOf(id);
    if (i < 0) return this.#error("ERR_SIP_MISSING_HEADER", this.headersEnd, `missing ${CANONICAL_NAME[id]}`);
    return this.#decode(i, code, parse);
  }

  #optional<T>(
    id: HeaderId,
    code: SipErrorCode,
    parse: (s: string, a: number, b: number) => Result<T, GrammarError>,
  ): Result<T | undefined, SipError> {
    return this.indexOf(id) < 0 ? ABSENT : this.#single(id, code, parse);
  }

  /**
   * Parses every value of every `id` header in order, each made into what
   * `make` makes of it with its line and byte range; the first error, if
   * any, instead. Values are counted across the message: the last header
   * line may only hold what is left of MAX_VALUES_PER_MESSAGE.
   */
  #each<T, U>(
    id: HeaderId,
    code: SipErrorCode,
    parse: (s: string, a: number, b: number, base: number) => Result<T, GrammarError>,
    make: (value: T, header: number, start: number, end: number) => U,
  ): Result<readonly U[], SipError> {
    // Made at the first value, at its size: most messages carry one Via and
    // no Route, and an array pushed to from empty reserves 17 slots.
    let out: U[] | undefined;
    let values = 0;
    for (let i = this.indexOf(id); i >= 0; i = this.indexOf(id, i + 1)) {
      const s = this.#source(i);
      const base = this.#base;
      const left = MAX_VALUES_PER_MESSAGE - values;
      const count = splitList(s, this.#a, this.#b, Math.min(MAX_VALUES_PER_HEADER, left));
      if (typeof count !== "number") {
        const e = count.error;
        const perMessage = e.code === "ERR_SIP_TOO_MANY_VALUES" && left < MAX_VALUES_PER_HEADER;
        const error = perMessage ? { ...e, detail: `more than ${MAX_VALUES_PER_MESSAGE} values in the message` } : e;
        return this.#grammarError(code, i, base + e.at, error);
      }
      // No decoder splits a list, so SPANS holds this line's values throughout.
      for (let k = 0; k < count; k++) {
        const a = SPANS[2 * k] as number;
        const b = SPANS[2 * k + 1] as number;
        const r = parse(s, a, b, base);
        if (!r.ok) return this.#grammarError(code, i, base + r.error.at, r.error);
        const value = make(r.value, i, base + a, base + b);
        if (out === undefined) out = [value];
        else out.push(value);
      }
      values += count;
    }
    return { ok: true, value: out ?? NONE };
  }
}

export class SipRequest extends SipMessageBase {
  readonly kind = "request";
  readonly method: string;
  readonly uriStart: number;
  readonly uriEnd: number;
  #uri: Result<Uri, SipError> | undefined;

  constructor(layout: MessageLayout, method: string, uriStart: number, uriEnd: number) {
    super(layout);
    this.method = method;
    this.uriStart = uriStart;
    this.uriEnd = uriEnd;
  }

  get uriText(): string {
    return this.text.slice(this.uriStart - this.start, this.uriEnd - this.start);
  }

  uri(): Result<Uri, SipError> {
    if (this.#uri === undefined) {
      const r = parseUri(this.text, this.uriStart - this.start, this.uriEnd - this.start);
      this.#uri = r.ok
        ? r
        : { ok: false, error: { code: "ERR_SIP_BAD_URI", offset: this.start + r.error.at, detail: r.error.detail } };
    }
    return this.#uri;
  }
}

export class SipResponse extends SipMessageBase {
  readonly kind = "response";
  readonly status: number;
  readonly reasonStart: number;

  constructor(layout: MessageLayout, status: number, reasonStart: number) {
    super(layout);
    this.status = status;
    this.reasonStart = reasonStart;
  }

  /** Reason phrase as UTF-8 (RFC 3261 §25.1 allows UTF8-NONASCII). */
  get reason(): string {
    return this.buf.toString("utf8", this.reasonStart, this.startLineEnd);
  }
}

export type SipMessage = SipRequest | SipResponse;
