/**
 * The server name a TLS client asks for, read from its ClientHello before
 * any TLS library sees it, so that a listener can choose the server (the
 * certificates, client-certificate rules and session context) that will
 * run the whole handshake for that name. The bytes come from anyone on the
 * internet: every length is checked against what is there, nothing throws,
 * and what is not a well-formed ClientHello is no name (the listener's
 * default server then takes it, and fails it or not as OpenSSL decides).
 */

/** What the bytes read so far tell. */
export type ClientHelloRead =
  /**
   * Not yet a whole ClientHello: read on until there are `need` bytes (the
   * record header, then the whole record; never more than
   * MAX_CLIENT_HELLO_BYTES); fewer could decide nothing.
   */
  | { readonly complete: false; readonly need: number }
  /** Decided: the name asked for (lower case), or undefined for none, or bytes that are no ClientHello. */
  | { readonly complete: true; readonly serverName: string | undefined };

/**
 * How many bytes a listener reads before it gives up looking for a name:
 * one full TLS record (RFC 8446 §5.1: 2^14 bytes of fragment) and its
 * header. A ClientHello with a post-quantum key share (X25519MLKEM768,
 * Node 24's first group) is ~1.3 KB; one that does not fit a record is
 * handed on without a name.
 */
export const MAX_CLIENT_HELLO_BYTES = 16_384 + 5;

const NO_NAME: ClientHelloRead = { complete: true, serverName: undefined };

/** RFC 8446 §5.1 ContentType handshake; §4 HandshakeType client_hello. */
const HANDSHAKE_RECORD = 22;
const CLIENT_HELLO = 1;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const MORE: ClientHelloRead = { complete: false, need: RECORD_HEADER };
/** RFC 6066 §3: extension server_name (0), NameType host_name (0). */
const SERVER_NAME_EXTENSION = 0;
const HOST_NAME = 0;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 as text. */
const MAX_NAME = 253;

/**
 * Reads the ClientHello at the start of `bytes` (the first bytes of a
 * connection). The handshake message may span records (RFC 8446 §5.1
 * lets a sender fragment it); only the first record's worth is waited for.
 */
export function readClientHello(bytes: Uint8Array): ClientHelloRead {
  if (bytes.length < RECORD_HEADER) return MORE;
  // Not a TLS handshake record of TLS 1.x (an SSLv2 hello, plain SIP, noise): no name to find.
  if (bytes[0] !== HANDSHAKE_RECORD || bytes[1] !== 3) return NO_NAME;
  const length = u16(bytes, 3);
  if (length === 0 || length > MAX_CLIENT_HELLO_BYTES - RECORD_HEADER) return NO_NAME;
  if (bytes.length < RECORD_HEADER + length) return { complete: false, need: RECORD_HEADER + length };
  const record = bytes.subarray(RECORD_HEADER, RECORD_HEADER + length);
  if (record[0] !== CLIENT_HELLO) return NO_NAME;
  if (record.length < HANDSHAKE_HEADER) return NO_NAME;
  const messageLength = ((record[1] as number) << 16) | u16(record, 2);
  // Only a ClientHello whole in its first record is read; one spread over more has its name unread.
  if (HANDSHAKE_HEADER + messageLength > record.length) return NO_NAME;
  return {
    complete: true,
    serverName: serverName(record.subarray(HANDSHAKE_HEADER, HANDSHAKE_HEADER + messageLength)),
  };
}

/** RFC 8446 §4.1.2 ClientHello: version, random, session id, suites, compression, then the extensions. */
function serverName(hello: Uint8Array): string | undefined {
  let at = 2 + 32;
  at = skipVector(hello, at, 1);
  at = skipVector(hello, at, 2);
  at = skipVector(hello, at, 1);
  // TLS 1.2 lets a ClientHello end here, with no extensions at all.
  if (at < 0 || at + 2 > hello.length) return undefined;
  const end = at + 2 + u16(hello, at);
  if (end > hello.length) return undefined;
  for (at += 2; at + 4 <= end; ) {
    const type = u16(hello, at);
    const size = u16(hello, at + 2);
    at += 4;
    if (at + size > end) return undefined;
    if (type === SERVER_NAME_EXTENSION) return hostName(hello.subarray(at, at + size));
    at += size;
  }
  return undefined;
}

/** RFC 6066 §3 ServerNameList: the host_name entry, if it is a DNS name in ASCII. */
function hostName(list: Uint8Array): string | undefined {
  if (list.length < 2 || 2 + u16(list, 0) !== list.length) return undefined;
  for (let at = 2; at + 3 <= list.length; ) {
    const type = list[at] as number;
    const size = u16(list, at + 1);
    at += 3;
    if (at + size > list.length) return undefined;
    if (type === HOST_NAME) return dnsName(list.subarray(at, at + size));
    at += size;
  }
  return undefined;
}

/** Letters, digits, '-', '_' and '.' only, lower-cased; anything else is no name we could have configured. */
function dnsName(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0 || bytes.length > MAX_NAME) return undefined;
  let name = "";
  for (const b of bytes) {
    const c = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e;
    if (!ok) return undefined;
    name += String.fromCharCode(c);
  }
  return name;
}

/** The offset after a vector whose length takes `lengthBytes` bytes at `at`; -1 if it runs past the end. */
function skipVector(bytes: Uint8Array, at: number, lengthBytes: 1 | 2): number {
  if (at < 0 || at + lengthBytes > bytes.length) return -1;
  const next = at + lengthBytes + (lengthBytes === 1 ? (bytes[at] as number) : u16(bytes, at));
  return next > bytes.length ? -1 : next;
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
}
