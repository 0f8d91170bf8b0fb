import { randomBytes } from "node:crypto";
import { HeaderId, type SipRequest } from "../sip/index.ts";

/**
 * To tags for the final answers sipedge gives itself (503, 483, 400, 200 to
 * OPTIONS …). RFC 3261 §8.2.7: an answer given without a transaction must
 * carry the same tag when the request is retransmitted, so the tag is this
 * worker's random prefix (the randomness §19.3 asks for) and a hash of the
 * bytes that make the request what it is. The prefix also makes the ACK for
 * such an answer recognisable from its To tag alone, so it is absorbed
 * before anything else of it is decoded (the way Kamailio's sl module
 * filters ACKs to its own stateless replies): under overload every refused
 * INVITE brings one.
 */
export class LocalTags {
  readonly #prefix = `se${randomBytes(4).toString("hex")}-`;

  /** The tag for an answer to `req`: the same for each retransmission of it. */
  tagFor(req: SipRequest): string {
    let hash = FNV_OFFSET;
    for (const id of IDENTITY) {
      const i = req.indexOf(id); // the top Via: its branch, or the RFC 2543 fields below
      if (i >= 0) hash = fnv1a(req.buf, req.headerValueStart(i), req.headerValueEnd(i), hash);
    }
    return this.#prefix + hash.toString(36);
  }

  /** Whether a To tag is one this worker gave. */
  isOurs(tag: string | undefined): boolean {
    return tag?.startsWith(this.#prefix) === true;
  }
}

/** What identifies a request across retransmissions (RFC 3261 §17.2.3, and §8.2.7's list for RFC 2543 peers). */
const IDENTITY = [HeaderId.Via, HeaderId.CallId, HeaderId.CSeq, HeaderId.From] as const;

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over bytes [start, end): cheap and well spread; no secret is needed here. */
function fnv1a(buf: Uint8Array, start: number, end: number, seed: number): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193) >>> 0;
  return h;
}
