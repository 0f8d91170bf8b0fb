import type { SipError } from "./errors.ts";
import { HeaderId } from "./headers.ts";
import type { SipMessage } from "./message.ts";
import { formatParams, type Param } from "./params.ts";
import type { Result } from "./result.ts";
import type { Via } from "./via.ts";

/**
 * Builds an outgoing message from the received bytes plus a short list of
 * splices. Untouched bytes are never re-serialised: the output is slices of
 * the original buffer interleaved with the new text, ready for a vectored
 * write (socket.cork + write per slice, or writev).
 */
export class MessageEditor {
  readonly #msg: SipMessage;
  // Parallel arrays: replace bytes [start, end) with text, in insertion order.
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #texts: string[] = [];

  constructor(msg: SipMessage) {
    this.#msg = msg;
  }

  /** RFC 3261 §16.6 step 8: the new Via goes above every existing one. */
  prependVia(value: string): this {
    const first = this.#msg.indexOf(HeaderId.Via);
    return this.#insertLine(first < 0 ? this.#firstHeaderStart() : this.#msg.headerLine(first)[0], "Via", value);
  }

  /** RFC 3261 §16.6 step 4: our Record-Route goes above the ones already there. */
  insertRecordRoute(value: string): this {
    return this.#insertAbove(HeaderId.RecordRoute, "Record-Route", value);
  }

  /** RFC 3327 §4.3: a proxy adds its Path value above the existing ones. */
  insertPath(value: string): this {
    return this.#insertAbove(HeaderId.Path, "Path", value);
  }

  /** RFC 3261 §16.4: pop the Route entry that names this proxy. */
  removeTopRoute(): Result<this, SipError> {
    const routes = this.#msg.addresses(HeaderId.Route);
    if (!routes.ok) return routes;
    const [first, second] = routes.value;
    if (first === undefined) return { ok: true, value: this };
    return { ok: true, value: this.#removeFirstValue(first.header, first.start, second?.header === first.header ? second.start : undefined) };
  }

  /** RFC 3261 §18.1.2: a response leaves with its top Via removed. */
  removeTopVia(): Result<this, SipError> {
    const vias = this.#msg.via();
    if (!vias.ok) return vias;
    const [first, second] = vias.value;
    if (first === undefined) return { ok: true, value: this };
    const header = this.#msg.indexOf(HeaderId.Via);
    const sameLine = second !== undefined && second.start < this.#msg.headerLine(header)[1];
    return { ok: true, value: this.#removeFirstValue(header, first.start, sameLine ? second.start : undefined) };
  }

  /** RFC 3261 §16.6 step 3: set (or add) Max-Forwards. */
  setMaxForwards(n: number): this {
    const i = this.#msg.indexOf(HeaderId.MaxForwards);
    if (i < 0) return this.#insertLine(this.#msg.headersEnd, "Max-Forwards", String(n));
    return this.#splice(this.#msg.headerValueStart(i), this.#msg.headerValueEnd(i), String(n));
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
    return { ok: true, value: this.#splice(top.start, top.end, formatVia(top, params)) };
  }

  setRequestUri(uri: string): this {
    if (this.#msg.kind !== "request") return this;
    return this.#splice(this.#msg.uriStart, this.#msg.uriEnd, uri);
  }

  /** Appends a header after the last one. */
  addHeader(name: string, value: string): this {
    return this.#insertLine(this.#msg.headersEnd, name, value);
  }

  /** The outgoing message as buffer slices; untouched ranges are views of the original. */
  slices(): Buffer[] {
    const msg = this.#msg;
    const starts = this.#starts;
    const n = starts.length;
    // Insertion sort by offset, stable, for the handful of edits a proxy makes.
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      let j = order.length;
      while (j > 0 && (starts[order[j - 1] as number] as number) > (starts[i] as number)) j--;
      order.splice(j, 0, i);
    }
    // One allocation for all new text, then views of it.
    let joined = "";
    for (const i of order) joined += this.#texts[i];
    const text = Buffer.from(joined, "latin1");
    const out: Buffer[] = [];
    let pos = msg.start;
    let t = 0;
    for (const i of order) {
      const start = starts[i] as number;
      if (start < pos) throw new Error("MessageEditor: overlapping edits");
      if (start > pos) out.push(msg.buf.subarray(pos, start));
      const len = (this.#texts[i] as string).length;
      if (len > 0) out.push(text.subarray(t, t + len));
      t += len;
      pos = this.#ends[i] as number;
    }
    if (msg.bodyEnd > pos) out.push(msg.buf.subarray(pos, msg.bodyEnd));
    return out;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.slices());
  }

  #insertAbove(id: HeaderId, name: string, value: string): this {
    const first = this.#msg.indexOf(id);
    return this.#insertLine(first < 0 ? this.#firstHeaderStart() : this.#msg.headerLine(first)[0], name, value);
  }

  #firstHeaderStart(): number {
    return this.#msg.startLineEnd + 2;
  }

  #insertLine(at: number, name: string, value: string): this {
    return this.#splice(at, at, `${name}: ${value}\r\n`);
  }

  /** Removes the first value of a header line: the whole line when it is the only one. */
  #removeFirstValue(header: number, start: number, nextOnSameLine: number | undefined): this {
    if (nextOnSameLine !== undefined) return this.#splice(start, nextOnSameLine, "");
    const [lineStart, lineEnd] = this.#msg.headerLine(header);
    return this.#splice(lineStart, lineEnd, "");
  }

  #splice(start: number, end: number, text: string): this {
    this.#starts.push(start);
    this.#ends.push(end);
    this.#texts.push(text);
    return this;
  }
}

export function formatVia(via: Via, params: readonly Param[] = via.params): string {
  const port = via.port === undefined ? "" : `:${via.port}`;
  return `${via.protocol}/${via.transport} ${via.host}${port}${formatParams(params)}`;
}

