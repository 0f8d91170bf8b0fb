import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const ID_BYTES = 8;
const EPOCH_BYTES = 4;
const SECRET_BYTES = 32;

/** A new process's epoch: flow ids start again at every start, tokens from before must not match them. */
export function newEpoch(): Uint8Array {
  return randomBytes(EPOCH_BYTES);
}

/** A token that verified: the flow it names, and whether this process issued it (else a restart ended that flow). */
export interface VerifiedToken {
  readonly flowId: number;
  readonly current: boolean;
}

/**
 * The flow-token secret kept in `file`, made there (mode 0600) when it is
 * missing; a fresh one when there is no file. Start-up only.
 */
export function flowSecret(file: string | undefined): Uint8Array {
  if (file === undefined) return randomBytes(SECRET_BYTES);
  try {
    const kept = readFileSync(file);
    if (kept.length === SECRET_BYTES) return kept;
  } catch {
    // Missing: made below.
  }
  const made = randomBytes(SECRET_BYTES);
  writeFileSync(file, made, { mode: 0o600 });
  return made;
}
const MAC_BYTES = 12;

/**
 * Flow tokens (RFC 5626 §5.2): what sipedge writes into its Record-Route
 * and Path values to find a client flow again. The flow id (which also
 * names the owning worker), the process's epoch, and an HMAC-SHA256 over
 * both with the secret, base64url: a backend can hand back a token it was
 * given, but cannot make one for a flow it was not given; and with a secret
 * kept across restarts, a token from before a restart is known for what it
 * is (a flow that ended) and never matches a new flow with the same id.
 */
export class FlowTokens {
  readonly #secret: Buffer;
  readonly #epoch: Buffer;

  constructor(secret: Uint8Array = randomBytes(SECRET_BYTES), epoch: Uint8Array = newEpoch()) {
    this.#secret = Buffer.from(secret);
    this.#epoch = Buffer.from(epoch);
  }

  issue(flowId: number): string {
    const body = Buffer.alloc(ID_BYTES + EPOCH_BYTES);
    body.writeBigUInt64BE(BigInt(flowId));
    this.#epoch.copy(body, ID_BYTES);
    return Buffer.concat([body, this.#mac(body)]).toString("base64url");
  }

  /** What a token names, or undefined for a forged, tampered or malformed one. */
  verify(token: string): VerifiedToken | undefined {
    const raw = Buffer.from(token, "base64url");
    const size = ID_BYTES + EPOCH_BYTES;
    if (raw.length !== size + MAC_BYTES || raw.toString("base64url") !== token) return undefined;
    const body = raw.subarray(0, size);
    if (!timingSafeEqual(raw.subarray(size), this.#mac(body))) return undefined;
    return { flowId: Number(body.readBigUInt64BE()), current: body.subarray(ID_BYTES).equals(this.#epoch) };
  }

  #mac(body: Buffer): Buffer {
    return createHmac("sha256", this.#secret).update(body).digest().subarray(0, MAC_BYTES);
  }
}
