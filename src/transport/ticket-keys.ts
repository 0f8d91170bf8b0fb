import { randomBytes } from "node:crypto";
import type { SecureContext } from "node:tls";

/** One session ticket key as server.setTicketKeys() takes it: name, HMAC key and AES key, 16 bytes each. */
export const TICKET_KEY_BYTES = 48;

/**
 * The ticket keys every IO worker holds alike (the supervisor makes and
 * rotates them, runtime/ticket-key-rotation.ts): new tickets are sealed
 * with `current`; a ticket sealed with `previous` is still opened, so a
 * rotation does not cost every client with a fresh ticket a full handshake.
 */
export interface TicketKeys {
  readonly current: Uint8Array;
  readonly previous: Uint8Array | undefined;
}

/** A key split as OpenSSL's ticket callback wants it (RFC 5077 §4: key_name, then the MAC and cipher keys). */
interface SplitKey {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

/** What Node's native SecureContext offers for a ticket key callback (node:tls has no public API for more than one key). */
interface NativeContext {
  enableTicketKeyCallback(): void;
  onticketkeycallback: (name: Buffer, iv: Buffer, encrypt: boolean) => readonly unknown[];
}

/**
 * OpenSSL's answers to a ticket key lookup (SSL_CTX_set_tlsext_ticket_key_cb):
 * not ours (a full handshake), opened, opened with a key about to go (send
 * a ticket under the current one).
 */
const NOT_FOUND = 0;
const OPENED = 1;
const OPENED_RENEW = 2;

/** Keys for the lookup of a ticket under no key of ours: node inits HMAC and cipher before OpenSSL sees NOT_FOUND. */
const UNUSED = Buffer.alloc(16);

/**
 * The session ticket keys of one worker's TLS contexts. node:tls's
 * setTicketKeys() holds one key, so a rotation would void every ticket
 * issued under the last one; instead each context asks this object through
 * node's ticket key callback, which opens tickets under the current or the
 * previous key and seals new ones under the current. A rotation only
 * swaps the keys held here: the contexts already hold the callback.
 */
export class SessionTickets {
  #current: SplitKey;
  #previous: SplitKey | undefined;

  constructor(keys: TicketKeys) {
    [this.#current, this.#previous] = splitKeys(keys);
  }

  /** A rotation: new tickets under `keys.current` from the next handshake on. */
  rotate(keys: TicketKeys): void {
    [this.#current, this.#previous] = splitKeys(keys);
  }

  /** `context` seals and opens its tickets with these keys; a context made later (a reload's) needs it again. */
  install(context: SecureContext): void {
    const native = (context as unknown as { context: NativeContext }).context;
    native.onticketkeycallback = (name, _iv, encrypt) => this.#lookup(name, encrypt);
    native.enableTicketKeyCallback();
  }

  #lookup(name: Buffer, encrypt: boolean): readonly unknown[] {
    const current = this.#current;
    if (encrypt) return [OPENED, current.hmac, current.aes, current.name, randomBytes(16)];
    if (name.equals(current.name)) return [OPENED, current.hmac, current.aes];
    const previous = this.#previous;
    if (previous !== undefined && name.equals(previous.name)) return [OPENED_RENEW, previous.hmac, previous.aes];
    return [NOT_FOUND, UNUSED, UNUSED];
  }
}

function splitKeys(keys: TicketKeys): [SplitKey, SplitKey | undefined] {
  return [split(keys.current), keys.previous === undefined ? undefined : split(keys.previous)];
}

function split(key: Uint8Array): SplitKey {
  if (key.byteLength !== TICKET_KEY_BYTES) throw new Error(`a ticket key has ${TICKET_KEY_BYTES} bytes`);
  const b = Buffer.from(key);
  return { name: b.subarray(0, 16), hmac: b.subarray(16, 32), aes: b.subarray(32, 48) };
}

/** Fresh key material (a start, a rotation). */
export function newTicketKey(): Uint8Array {
  return randomBytes(TICKET_KEY_BYTES);
}

/** The keys of a start: a new key, none before it. */
export function firstTicketKeys(): TicketKeys {
  return { current: newTicketKey(), previous: undefined };
}
