import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const ID_BYTES = 8;
const MAC_BYTES = 12;

/**
 * Flow tokens (RFC 5626 §5.2): what sipedge writes into its Record-Route
 * and Path values to find a client flow again. The flow id (which also
 * names the owning worker) and an HMAC-SHA256 over it with a per-process
 * secret, base64url: a backend can hand back a token it was given, but
 * cannot make one for a flow it was not given.
 */
export class FlowTokens {
  readonly #secret: Buffer;

  constructor(secret: Uint8Array = randomBytes(32)) {
    this.#secret = Buffer.from(secret);
  }

  issue(flowId: number): string {
    const id = Buffer.alloc(ID_BYTES);
    id.writeBigUInt64BE(BigInt(flowId));
    return Buffer.concat([id, this.#mac(id)]).toString("base64url");
  }

  /** The flow id a token names, or undefined for a forged, tampered or malformed one. */
  verify(token: string): number | undefined {
    const raw = Buffer.from(token, "base64url");
    if (raw.length !== ID_BYTES + MAC_BYTES || raw.toString("base64url") !== token) return undefined;
    const id = raw.subarray(0, ID_BYTES);
    if (!timingSafeEqual(raw.subarray(ID_BYTES), this.#mac(id))) return undefined;
    return Number(id.readBigUInt64BE());
  }

  #mac(id: Buffer): Buffer {
    return createHmac("sha256", this.#secret).update(id).digest().subarray(0, MAC_BYTES);
  }
}
