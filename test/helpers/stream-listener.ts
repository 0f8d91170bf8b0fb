import { readFileSync } from "node:fs";
import type { TlsOptions } from "node:tls";
import { demoCertificate } from "../../src/runtime/demo.ts";
import type { ServerTls } from "../../src/transport/listener.ts";
import { BufferPool } from "../../src/transport/pool.ts";
import { StreamListener, type StreamListenerOptions } from "../../src/transport/stream.ts";
import { firstTicketKeys, SessionTickets } from "../../src/transport/ticket-keys.ts";
import { WsListener } from "../../src/transport/websocket.ts";
import type { CertificateFiles } from "./certificates.ts";
import { CERT_DIR } from "./sipedge.ts";

/** A TCP listener's options on 127.0.0.1, a kernel-chosen port, small bounds, over `pool`. */
export function loopbackListener(pool: BufferPool): StreamListenerOptions {
  return {
    address: "127.0.0.1",
    port: 0,
    backlog: 16,
    maxMessageSize: 4096,
    maxQueuedBytes: 1 << 16,
    maxQueuedMessages: 64,
    pool,
    counters: { slowReaders: 0, slowSenders: 0 },
  };
}

/** A certificate and its key as a TLS listener's options take them; the demo certificate by default. */
export function tlsOptions(files: CertificateFiles = demoCertificate(CERT_DIR)): TlsOptions {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

/** The demo certificate, no names and ticket keys of its own, unless `tls` says otherwise. */
function servedTls(tls: Partial<ServerTls>): ServerTls {
  return { options: tlsOptions(), named: [], tickets: new SessionTickets(firstTicketKeys()), ...tls };
}

/** A listener's options for loopback with loopbackListener's bounds and a pool of its own. */
function ownPool(): StreamListenerOptions {
  return loopbackListener(new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 }));
}

/** A TLS listener on loopback, dropping what it receives (servedTls). */
export function loopbackTlsListener(tls: Partial<ServerTls> = {}): Promise<StreamListener> {
  return StreamListener.listen({ ...ownPool(), tls: servedTls(tls) }, () => {});
}

/** A secure WebSocket listener on loopback, dropping what it receives (servedTls). */
export function loopbackWssListener(tls: Partial<ServerTls> = {}): Promise<WsListener> {
  return WsListener.listen({ ...ownPool(), tls: servedTls(tls) }, () => {});
}
