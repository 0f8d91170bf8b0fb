import type { SipError } from "./errors.ts";
import { HeaderId } from "./headers.ts";
import type { SipMessage } from "./message.ts";
import { formatParams, type Param } from "./params.ts";
import type { Result } from "./result.ts";
import type { Via } from "./via.ts";

/** Setters whose second call replaces the first one's edit, by their slot in #setterEdits. */
const MAX_FORWARDS = 0;
const TOP_VIA_SOURCE = 1;
const REQUEST_URI = 2;
type Setter = typeof MAX_FORWARDS | typeof TOP_VIA_SOURCE | typeof REQUEST_URI;

/**
 * Builds an outgoing message from the received bytes plus a short list of
 * splices. Untouched bytes are never re-serialised: the output is slices of
 * the original buffer interleaved with the new text, ready for a vectored
 * write (socket.cork + write per slice, or writev).
 *
 * Any sequence of its operations composes, in any order, on any message, and
 * never throws (it runs on the data path): see #plan for how edits that meet
 * are resolved.
 */
export class MessageEditor {
  readonly #msg: SipMessage;
  // Parallel arrays: replace bytes [start, end) with text, in call order.
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #texts: string[] = [];
  /** Which edit each setter made (-1: none yet), so that a second call replaces it. */
  readonly #setterEdits = [-1, -1, -1];

  constructor(msg: SipMessage) {
    this.#msg = msg;
    // RFC 3261 §18.3: a message may leave by a stream, where Content-Length
    // frames it; one that came without (UDP, WebSocket) gets one on its way.
    if (msg.contentLength === undefined) this.addHeader("Content-Length", String(msg.bodyEnd - msg.bodyStart));
  }

  /** RFC 3261 §16.6 step 8: the new Via goes above every existing one. */
  prependVia(value: string): this {
    const first = this.#msg.indexOf(HeaderId.Via);
    return this.#insertLine(first < 0 ? this.#firstHeaderStart() : this.#msg.headerLineStart(first), "Via", value);
  }

  /** RFC 3261 §16.6 step 4: our Record-Route goes above the ones already there. */
  insertRecordRoute(value: string): this {
    return this.#insertAbove(HeaderId.RecordRoute, "Record-Route", value);
  }

  /** RFC 3327 §4.3: a proxy adds its Path value above the existing ones. */
  insertPath(value: string): this {
    return this.#insertAbove(HeaderId.Path, "Path", value);
  }

  /**
   * RFC 3261 §16.4: pop the first `count` Route values (those naming this
   * proxy), whole lines where every value on them goes.
   */
  removeRoutes(count: number): Result<this, SipError> {
    const routes = this.#msg.addresses(HeaderId.Route);
    if (!routes.ok) return routes;
    const list = routes.value;
    let i = 0;
    while (i < count && i < list.length) {
      const first = list[i] as (typeof list)[number];
      let lineEnd = i;
      while (lineEnd < list.length && (list[lineEnd] as (typeof list)[number]).header === first.header) lineEnd++;
      const until = Math.min(lineEnd, count);
      const kept = list[until];
      this.#removeFirstValue(first.header, first.start, until < lineEnd && kept !== undefined ? kept.start : undefined);
      i = until;
    }
    return { ok: true, value: this };
  }

  /** RFC 3261 §18.1.2: a response leaves with its top Via removed. */
  removeTopVia(): Result<this, SipError> {
    const vias = this.#msg.via();
    if (!vias.ok) return vias;
    const [first, second] = vias.value;
    if (first === undefined) return { ok: true, value: this };
    const header = this.#msg.indexOf(HeaderId.Via);
    const sameLine = second !== undefined && second.start < this.#msg.headerLineEnd(header);
    return { ok: true, value: this.#removeFirstValue(header, first.start, sameLine ? second.start : undefined) };
  }

  /** RFC 3261 §16.6 step 3: set (or add) Max-Forwards. */
  setMaxForwards(n: number): this {
    const i = this.#msg.indexOf(HeaderId.MaxForwards);
    if (i < 0)
      return this.#set(MAX_FORWARDS, this.#msg.headersEnd, this.#msg.headersEnd, line("Max-Forwards", String(n)));
    return this.#set(MAX_FORWARDS, this.#msg.headerValueStart(i), this.#msg.headerValueEnd(i), String(n));
  }

  /**
   * RFC 3261 §18.2.1 `received` and RFC 3581 §4 `rport` on the top Via.
   * The top Via value is rewritten (LWS normalised); nothing else is.
   */
  setTopViaSource(received: string, rport: number | undefined): Result<this, SipError> {
    const vias = this.#msg.via();
    if (!vias.ok) return vias;
    const top = vias.value[0];
    if (top === undefined) return { ok: true, value: this };
    const params: Param[] = [];
    for (const p of top.params) {
      const name = p.name.toLowerCase();
      if (name === "received") continue;
      params.push(name === "rport" && rport !== undefined ? { name: p.name, value: String(rport) } : p);
    }
    params.push({ name: "received", value: received });
    return { ok: true, value: this.#set(TOP_VIA_SOURCE, top.start, top.end, formatVia(top, params)) };
  }

  setRequestUri(uri: string): this {
    if (this.#msg.kind !== "request") return this;
    return this.#set(REQUEST_URI, this.#msg.uriStart, this.#msg.uriEnd, uri);
  }

  /** Appends a header after the last one. */
  addHeader(name: string, value: string): this {
    return this.#insertLine(this.#msg.headersEnd, name, value);
  }

  /** The outgoing message as buffer slices; untouched ranges are views of the original. */
  slices(): Buffer[] {
    const msg = this.#msg;
    const plan = this.#plan();
    // One allocation for all new text, then views of it.
    let joined = "";
    for (const i of plan) joined += this.#texts[i];
    const text = Buffer.from(joined, "latin1");
    const out: Buffer[] = [];
    let pos = msg.start;
    let t = 0;
    let pendingText = 0;
    for (const i of plan) {
      const start = this.#starts[i] as number;
      if (start > pos) {
        // Text inserted back to back at one offset goes out as one slice.
        if (pendingText > 0) out.push(text.subarray(t - pendingText, t));
        pendingText = 0;
        out.push(msg.buf.subarray(pos, start));
      }
      const len = (this.#texts[i] as string).length;
      t += len;
      pendingText += len;
      pos = this.#ends[i] as number;
    }
    if (pendingText > 0) out.push(text.subarray(t - pendingText, t));
    if (msg.bodyEnd > pos) out.push(msg.buf.subarray(pos, msg.bodyEnd));
    return out;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.slices());
  }

  #insertAbove(id: HeaderId, name: string, value: string): this {
    const first = this.#msg.indexOf(id);
    return this.#insertLine(first < 0 ? this.#firstHeaderStart() : this.#msg.headerLineStart(first), name, value);
  }

  #firstHeaderStart(): number {
    return this.#msg.startLineEnd + 2;
  }

  #insertLine(at: number, name: string, value: string): this {
    return this.#splice(at, at, line(name, value));
  }

  /** Removes the first value of a header line: the whole line when it is the only one. */
  #removeFirstValue(header: number, start: number, nextOnSameLine: number | undefined): this {
    if (nextOnSameLine !== undefined) return this.#splice(start, nextOnSameLine, "");
    return this.#splice(this.#msg.headerLineStart(header), this.#msg.headerLineEnd(header), "");
  }

  #splice(start: number, end: number, text: string): this {
    this.#starts.push(start);
    this.#ends.push(end);
    this.#texts.push(text);
    return this;
  }

  /** A setter's edit: the first call adds it, a later one replaces it (the last value set wins). */
  #set(setter: Setter, start: number, end: number, text: string): this {
    const i = this.#setterEdits[setter] as number;
    if (i < 0) {
      this.#setterEdits[setter] = this.#starts.length;
      return this.#splice(start, end, text);
    }
    this.#starts[i] = start;
    this.#ends[i] = end;
    this.#texts[i] = text;
    return this;
  }

  /**
   * The edits to apply, in message order. Edits that meet are resolved, never refused:
   * - insertions at one offset go out in call order, before a range replaced
   *   or removed from that same offset (prependVia or insertRecordRoute at the
   *   start of a Route line that removeRoutes removes: both hold);
   * - of ranges starting at one offset, the widest is applied;
   * - an edit starting inside a range already applied is dropped: what it
   *   would change is gone (setTopViaSource on the Via removeTopVia removes).
   * Every edit ends where a header line, value or the Request-URI ends, so
   * what is applied leaves a message that parses.
   */
  #plan(): number[] {
    const starts = this.#starts;
    const ends = this.#ends;
    const n = starts.length;
    // Stable insertion sort: a proxy makes a handful of edits, mostly in order.
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      let k = i;
      while (k > 0 && precedes(starts, ends, i, order[k - 1] as number)) {
        order[k] = order[k - 1] as number;
        k--;
      }
      order[k] = i;
    }
    let kept = 0;
    let pos = this.#msg.start;
    for (const i of order) {
      if ((starts[i] as number) < pos) continue;
      order[kept++] = i;
      pos = ends[i] as number;
    }
    order.length = kept;
    return order;
  }
}

/**
 * Whether edit a goes before edit b: message order; at one offset,
 * insertions first, then ranges, the widest first. Ties keep call order.
 */
function precedes(starts: readonly number[], ends: readonly number[], a: number, b: number): boolean {
  const sa = starts[a] as number;
  const sb = starts[b] as number;
  if (sa !== sb) return sa < sb;
  const ea = ends[a] as number;
  const eb = ends[b] as number;
  const aInserts = ea === sa;
  if (aInserts !== (eb === sb)) return aInserts;
  return ea > eb;
}

function line(name: string, value: string): string {
  return `${name}: ${value}\r\n`;
}

export function formatVia(via: Via, params: readonly Param[] = via.params): string {
  const port = via.port === undefined ? "" : `:${via.port}`;
  return `${via.protocol}/${via.transport} ${via.host}${port}${formatParams(params)}`;
}
