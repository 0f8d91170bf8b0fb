import type { Socket } from "node:net";
import type { TlsOptions, Server as TlsServer } from "node:tls";
import { MAX_CLIENT_HELLO_BYTES, readClientHello } from "./client-hello.ts";

/** The server options for the clients that ask for some names (SNI, RFC 6066 §3). */
export interface NamedServerTls {
  /** Exact names and `*.` wildcards, lower case; no name in two entries. */
  readonly names: readonly string[];
  /** Its certificates, client-certificate rules and session context, as a listener's own options are. */
  readonly options: TlsOptions;
}

/**
 * Per server name, the TLS server that runs the whole handshake of a
 * client asking for it: its certificates (ECDSA and RSA side by side, as a
 * listener's default), which client certificates it asks for and trusts,
 * and a session context of its own. Node's SNICallback could not do this:
 * it swaps in only the chosen context's last certificate, keeps the
 * listener's client-certificate rules, and resumes a session made under
 * one name when it is offered under another, so a name that requires a
 * certificate could be entered on a ticket from a name that does not.
 * These servers never listen: the listener hands them the connections
 * (server-names.ts readServerName), made once per config (start, reload).
 */
export class ServerNames {
  readonly #byName = new Map<string, TlsServer>();

  constructor(named: readonly NamedServerTls[], serverFor: (options: TlsOptions) => TlsServer) {
    for (const { names, options } of named) {
      const server = serverFor(options);
      for (const name of names) this.#byName.set(name, server);
    }
  }

  /** The server for the name a client asked for; undefined: no name, or none configured (the listener's default). */
  lookup(servername: string | undefined): TlsServer | undefined {
    return servername === undefined ? undefined : matchServerName(this.#byName, servername);
  }
}

/**
 * An exact name first, then the wildcard of its parent: `*.example.com`
 * stands for one leftmost label (RFC 6125 §6.4.3), so it matches
 * `a.example.com` and neither `example.com` nor `a.b.example.com`.
 */
export function matchServerName<T>(byName: ReadonlyMap<string, T>, servername: string): T | undefined {
  const name = servername.toLowerCase().replace(/\.$/, "");
  const exact = byName.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf(".");
  return dot > 0 ? byName.get(`*${name.slice(dot)}`) : undefined;
}

/**
 * Reads a new connection's first bytes until its ClientHello tells which
 * name it asks for (client-hello.ts), then puts them back, for the TLS
 * server `then` hands the socket to. Bounded: at most one TLS record is
 * waited for, and for `timeout` ms (limits.handshakeTimeout, which the
 * handshake proper has again); a client that says nothing in that time
 * is closed, and one that hangs up before its hello is whole is gone:
 * either is a failed handshake, told to `failed`, as node:tls tells its
 * server ('tlsClientError') of a client gone mid-handshake.
 */
export function readServerName(
  socket: Socket,
  timeout: number,
  then: (servername: string | undefined) => void,
  failed: () => void,
): void {
  /** What came so far (its first `length` bytes), grown by doubling: each byte is copied a bounded number of times. */
  let held: Buffer | undefined;
  let length = 0;
  /** Bytes it takes to decide anything: the record header, then the whole record. */
  let need = 0;
  const timer = setTimeout(() => {
    done();
    failed();
    socket.destroy();
  }, timeout);
  const onData = (chunk: Buffer) => {
    // Not joined anew per segment: a peer sending a byte a segment would have all held copied for each (2^27 bytes for 2^14).
    held = held === undefined ? chunk : appended(held, length, chunk);
    length += chunk.length;
    if (length < need) return;
    const bytes = held.subarray(0, length);
    const hello = readClientHello(bytes);
    // A ClientHello's first record is whole at MAX_CLIENT_HELLO_BYTES (client-hello.ts): only bytes short of it read on.
    if (!hello.complete && length < MAX_CLIENT_HELLO_BYTES) {
      need = hello.need;
      return;
    }
    done();
    socket.pause();
    socket.unshift(bytes);
    then(hello.complete ? hello.serverName : undefined);
  };
  const closed = () => {
    done();
    failed();
  };
  const done = () => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("close", closed);
  };
  socket.on("data", onData);
  socket.on("close", closed);
  // A reset before the hello must not be an unhandled 'error' (Node throws those); the socket closes on its own.
  // Kept after the hand-off too: the TLS socket takes the handle, and the raw socket may still report its end.
  socket.on("error", ignore);
}

function ignore(): void {}

/** `chunk` after the first `length` bytes of `held`: in place if it fits, else in a buffer twice as big (up to a record's worth). */
function appended(held: Buffer, length: number, chunk: Buffer): Buffer {
  let into = held;
  if (length + chunk.length > held.length) {
    into = Buffer.allocUnsafe(Math.max(length + chunk.length, Math.min(2 * held.length, MAX_CLIENT_HELLO_BYTES)));
    held.copy(into, 0, 0, length);
  }
  chunk.copy(into, length);
  return into;
}
