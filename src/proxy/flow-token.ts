import { createHmac, createSecretKey, type KeyObject, randomBytes, randomFillSync, timingSafeEqual } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { FLOW_SECRET_BYTES as SECRET_BYTES } from "../config/files.ts";
import { ipBytes, ipText } from "../transport/address.ts";
import { flowOwner } from "../transport/flow.ts";

const ID_BYTES = 8;
const EPOCH_BYTES = 4;
/** A UDP flow: the peer's address (IPv4 mapped into IPv6), its port, and which UDP listener it talks to. */
const ADDRESS_BYTES = 16;
const UDP_BYTES = ADDRESS_BYTES + 2 + 1;

/**
 * A new epoch: flow ids start again whenever a worker starts (the process,
 * or a worker the supervisor replaced), so tokens from before must not
 * match them. One epoch serves every worker; a shared array of one per
 * worker (`epochs`, the supervisor renews a worker's at each start) keeps a
 * replaced worker's old tokens from naming its new flows.
 */
export function newEpoch(): Uint8Array {
  return randomBytes(EPOCH_BYTES);
}

/** Epochs for `workers` IO workers in shared memory, each filled as its worker starts (renewEpoch). */
export function workerEpochs(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(EPOCH_BYTES * workers);
}

/** Worker `index` starts (again): its flow ids begin anew, so its tokens get a new epoch. */
export function renewEpoch(epochs: SharedArrayBuffer, index: number): void {
  randomFillSync(new Uint8Array(epochs, index * EPOCH_BYTES, EPOCH_BYTES));
}

/**
 * A token that verified. A connection: its flow id, and whether this process
 * issued it (else a restart ended that flow). A UDP flow: the peer's address
 * and port and the index of the UDP listener it talks to; it is the address
 * pair itself (RFC 5626 §5.2), so it outlives a restart.
 */
export type VerifiedToken =
  | { readonly kind: "stream"; readonly flowId: number; readonly current: boolean }
  | { readonly kind: "udp"; readonly address: string; readonly port: number; readonly listener: number };

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
/** Mixed into a backend token's MAC only (see issueBackend). */
const BACKEND_DOMAIN = Buffer.from([0x62]);
/** A member name longer than this is no name of ours: config names are short words. */
const MAX_MEMBER_NAME_BYTES = 128;

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
  /**
   * A KeyObject, not the bytes: createHmac re-imports a Buffer key at every
   * call, 12 µs against 2.2 µs for a KeyObject (Node 24, this machine;
   * two MACs a call for the backend token made it a fifth of a call's cost).
   */
  readonly #secret: KeyObject;
  /** One epoch for all workers, or one per worker (a view of shared memory: read at each use). */
  readonly #epochs: Uint8Array;

  constructor(secret: Uint8Array = randomBytes(SECRET_BYTES), epochs: Uint8Array = newEpoch()) {
    this.#secret = createSecretKey(secret);
    this.#epochs = epochs;
  }

  /** The current epoch of the worker that owns `flowId`. */
  #epochOf(flowId: number): Uint8Array {
    const at = flowOwner(flowId) * EPOCH_BYTES;
    return at + EPOCH_BYTES <= this.#epochs.length
      ? this.#epochs.subarray(at, at + EPOCH_BYTES)
      : this.#epochs.subarray(0, EPOCH_BYTES);
  }

  /**
   * Recent tokens both ways: a flow's every dialog carries the same token, and
   * an HMAC per message costs more than the rest of its routing. Bounded:
   * emptied when full. Only tokens that verified are remembered.
   */
  readonly #issued = new Map<string, string>();
  readonly #verified = new Map<string, Decoded>();
  readonly #backends = new Map<string, string>();

  issue(flowId: number): string {
    return this.#memo(`s${flowId}`, () => this.#issueStream(flowId));
  }

  #issueStream(flowId: number): string {
    const body = Buffer.alloc(ID_BYTES + EPOCH_BYTES);
    body.writeBigUInt64BE(BigInt(flowId));
    body.set(this.#epochOf(flowId), ID_BYTES);
    return Buffer.concat([body, this.#mac(body)]).toString("base64url");
  }

  /** For a UDP peer (a listener index below 256, an IP address): 42 characters, unlike a connection's 32. */
  issueUdp(address: string, port: number, listener: number): string {
    return this.#memo(`u${address}|${port}|${listener}`, () => this.#issueUdp(address, port, listener));
  }

  #issueUdp(address: string, port: number, listener: number): string {
    const body = Buffer.alloc(UDP_BYTES);
    // Anything else than an IP address (none reaches here: sockets report IPs) stays zero.
    ipBytes(address)?.copy(body);
    body.writeUInt16BE(port, ADDRESS_BYTES);
    body.writeUInt8(listener, ADDRESS_BYTES + 2);
    return Buffer.concat([body, this.#mac(body)]).toString("base64url");
  }

  /**
   * For a backend member, by name: what sipedge writes into the
   * backend-side entry of its Record-Route so the dialog's later requests
   * go to that member and nowhere else (proxy/routing.ts). Its MAC covers a
   * domain byte the token does not carry, so no backend token verifies as a
   * flow token, nor the other way round.
   */
  issueBackend(name: string, callId: string): string {
    const body = Buffer.from(name, "utf8");
    const token = Buffer.concat([body, this.#backendMac(body, callId)]).toString("base64url");
    // Known good for its own dialog: the ACK and BYE that bring it back are answered from the memo, not by a
    // second MAC (one of the two a call cost). The name as verifyBackend would read it back from the bytes.
    if (body.length > 0 && body.length <= MAX_MEMBER_NAME_BYTES) {
      remember(this.#backends, `${token} ${callId}`, body.length === name.length ? name : body.toString("utf8"));
    }
    return token;
  }

  /**
   * The member name a backend token carries for the dialog with this
   * Call-ID, or undefined for a forged, tampered or malformed one, or one
   * issued for another dialog: a token is good for its own dialog only.
   */
  verifyBackend(token: string, callId: string): string | undefined {
    const key = `${token} ${callId}`;
    const known = this.#backends.get(key);
    if (known !== undefined) return known;
    const raw = Buffer.from(token, "base64url");
    const size = raw.length - MAC_BYTES;
    if (size <= 0 || size > MAX_MEMBER_NAME_BYTES || raw.toString("base64url") !== token) return undefined;
    const body = raw.subarray(0, size);
    if (!timingSafeEqual(raw.subarray(size), this.#backendMac(body, callId))) return undefined;
    const name = body.toString("utf8");
    remember(this.#backends, key, name);
    return name;
  }

  /**
   * The name's length first: the Call-ID follows it, so no name and Call-ID
   * pair spells another. Fed to the MAC piece by piece (the length as a
   * one-char latin1 string, which V8 keeps made): no buffer is built per call.
   */
  #backendMac(name: Buffer, callId: string): Buffer {
    return createHmac("sha256", this.#secret)
      .update(BACKEND_DOMAIN)
      .update(String.fromCharCode(name.length), "latin1")
      .update(name)
      .update(callId, "latin1")
      .digest()
      .subarray(0, MAC_BYTES);
  }

  /** What a token names, or undefined for a forged, tampered or malformed one. */
  verify(token: string): VerifiedToken | undefined {
    let decoded = this.#verified.get(token);
    if (decoded === undefined) {
      decoded = this.#check(token);
      if (decoded === undefined) return undefined;
      remember(this.#verified, token, decoded);
    }
    if (decoded.kind === "udp") return decoded;
    // Judged at each use: the owner may have been replaced since (a new epoch), its flow ids begun again.
    const { flowId, epoch } = decoded;
    return { kind: "stream", flowId, current: epoch.equals(this.#epochOf(flowId)) };
  }

  #memo(key: string, make: () => string): string {
    let token = this.#issued.get(key);
    if (token === undefined) {
      token = make();
      remember(this.#issued, key, token);
    }
    return token;
  }

  #check(token: string): Decoded | undefined {
    const raw = Buffer.from(token, "base64url");
    const size = raw.length - MAC_BYTES;
    if ((size !== ID_BYTES + EPOCH_BYTES && size !== UDP_BYTES) || raw.toString("base64url") !== token) {
      return undefined;
    }
    const body = raw.subarray(0, size);
    if (!timingSafeEqual(raw.subarray(size), this.#mac(body))) return undefined;
    if (size === UDP_BYTES) {
      return {
        kind: "udp",
        address: ipText(body),
        port: body.readUInt16BE(ADDRESS_BYTES),
        listener: body.readUInt8(ADDRESS_BYTES + 2),
      };
    }
    return { kind: "stream", flowId: Number(body.readBigUInt64BE()), epoch: Buffer.from(body.subarray(ID_BYTES)) };
  }

  #mac(body: Buffer, domain?: Buffer): Buffer {
    const hmac = createHmac("sha256", this.#secret);
    if (domain !== undefined) hmac.update(domain);
    return hmac.update(body).digest().subarray(0, MAC_BYTES);
  }
}

/** A token that verified, as it reads: a stream token's epoch is compared with the owner's at each use. */
type Decoded =
  | Extract<VerifiedToken, { kind: "udp" }>
  | { readonly kind: "stream"; readonly flowId: number; readonly epoch: Buffer };

const MEMO_ENTRIES = 4096;

function remember<V>(memo: Map<string, V>, key: string, value: V): void {
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(key, value);
}
