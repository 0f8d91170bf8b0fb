import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConnectionOptions, SecureContextOptions, TlsOptions } from "node:tls";
import { pemCrlBlocks } from "../../config/crl-file.ts";
import { formatErrors } from "../../config/load.ts";
import {
  type CertificatePair,
  type ClientRules,
  type Config,
  clientRulesOf,
  type SecureListener,
  type SniCertificate,
  type TlsSettings,
} from "../../config/schema.ts";
import { readSniCertificates } from "../../config/sni-certificates.ts";
import { contextOptions } from "../../config/tls-listener.ts";
import { backendClientTls } from "../../health/backend-tls.ts";
import { errorText, type LogLevel, log } from "../../log/log.ts";
import type { ConnectionListener, ServerTls } from "../../transport/listener.ts";
import type { NamedServerTls } from "../../transport/server-names.ts";
import { SessionTickets, type TicketKeys } from "../../transport/ticket-keys.ts";

/** A client-facing TLS or WSS listener's server options, and those of its servers by name. */
interface ClientListenerTls {
  readonly options: TlsOptions;
  /** One per `certificates` entry; empty: the default certificate for every client. */
  readonly named: readonly NamedServerTls[];
}

/** The TLS options one config's files make, read once for all who use them. */
interface TlsFiles {
  /** Per client-facing TLS or WSS listener, by index in config.listen. */
  readonly clientListeners: ReadonlyMap<number, ClientListenerTls>;
  /** The first TLS listener's options: the certificate sipedge shows backends; undefined without a TLS listener. */
  readonly identity: TlsOptions | undefined;
  /** How sipedge connects to TLS backends. */
  readonly backendClient: ConnectionOptions;
}

/**
 * How a worker's TLS sessions resume: the ticket keys, and how long a
 * ticket is good (node:tls sessionTimeout, seconds): one rotation period,
 * while its key is kept for two (runtime/ticket-key-rotation.ts), so no
 * ticket outlives its key.
 */
interface Sessions {
  readonly tickets: SessionTickets;
  readonly timeout: number;
}

/** The listeners a reload gives new certificates to. */
export interface TlsListeners {
  readonly clients: ReadonlyMap<number, ConnectionListener>;
  readonly backend: ConnectionListener | undefined;
}

/**
 * Every certificate a worker presents or trusts, from one place, so that
 * start and SIGHUP build them alike: the client-facing listeners', the
 * backend-side TLS listener's and the one sipedge shows when it connects
 * to a TLS backend (the last two are the first TLS listener's certificate:
 * backends know sipedge by one identity). A reload reads every file
 * before it changes anything, then swaps all three: a renewed certificate
 * reaches the backend side as it does the clients.
 */
export class TlsIdentity {
  #files: TlsFiles;
  /** The session ticket keys every worker shares (kept across reloads, swapped by a rotation), and a ticket's life. */
  readonly #sessions: Sessions;
  /** Whether this worker says which certificates it loaded (one worker does: every worker reads the same files). */
  readonly #reports: boolean;

  /**
   * BackendLinks (transport/links.ts) keeps the options it was given and
   * spreads them into each tls.connect: a view of the current files lets
   * links opened after a reload show the new certificate, with no reload
   * for the transport to know of. Links already up keep theirs, as client
   * connections keep theirs.
   */
  readonly backendClient: ConnectionOptions = currentView(() => this.#files.backendClient);

  constructor(config: Config, ticketKeys: TicketKeys, reports = false) {
    // The period as started: a reload does not change the rotation, so neither may it a ticket's life.
    const timeout = Math.floor(config.tls.ticketKeyRotation / 1000);
    this.#sessions = { tickets: new SessionTickets(ticketKeys), timeout };
    this.#files = readTlsFiles(config, this.#sessions);
    this.#reports = reports;
    if (reports) logCertificates(config, this.#files);
  }

  /** The server options of the TLS or WSS listener at `index` in config.listen, and its names'. */
  clientListener(index: number): ServerTls {
    const listener = this.#files.clientListeners.get(index);
    if (listener === undefined) throw new Error(`listen[${index}] is no TLS listener`);
    return { ...listener, tickets: this.#sessions.tickets };
  }

  /** The backend-side TLS listener's options; undefined when no listener is TLS. */
  get backendListener(): ServerTls | undefined {
    const options = this.#files.identity;
    return options === undefined ? undefined : { options, named: [], tickets: this.#sessions.tickets };
  }

  /** The supervisor rotated the ticket keys: every context of this worker has them from its next handshake. */
  rotateTicketKeys(keys: TicketKeys): void {
    this.#sessions.tickets.rotate(keys);
  }

  /** SIGHUP: new certificates for new handshakes, on both sides; a file that cannot be read changes nothing. */
  reload(config: Config, listeners: TlsListeners): void {
    const next = readTlsFiles(config, this.#sessions);
    for (const [index, listener] of listeners.clients) {
      const tls = next.clientListeners.get(index);
      if (tls !== undefined) listener.setSecureContext(tls.options, tls.named);
    }
    if (listeners.backend !== undefined && next.identity !== undefined)
      listeners.backend.setSecureContext(next.identity);
    this.#files = next;
    if (this.#reports) logCertificates(config, next);
  }
}

function readTlsFiles(config: Config, sessions: Sessions): TlsFiles {
  const clientListeners = new Map<number, ClientListenerTls>();
  for (const [index, l] of config.listen.entries()) {
    if (l.transport !== "tls" && l.transport !== "wss") continue;
    const path = `listen[${index}]`;
    const named = namedServers(l, path, sessions.timeout);
    clientListeners.set(index, { options: { ...serverTls(l, path), sessionTimeout: sessions.timeout }, named });
  }
  const first = config.listen.findIndex((l) => l.transport === "tls");
  return {
    clientListeners,
    identity: clientListeners.get(first)?.options,
    // The health thread meets TLS backends the same way: one builder for both.
    backendClient: backendClientTls(config),
  };
}

/** A certificate this close to its end is logged as a warning (the certificate expiry alert's 14 days). */
const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** `tls.certificate`: each TLS and WSS listener's default certificates as loaded (`cert`, `alternative`), with their expiry. */
function logCertificates(config: Config, files: TlsFiles): void {
  for (const [index, { options }] of files.clientListeners) {
    const listener = `listen[${index}]`;
    const loaded = options.cert as Buffer[];
    for (const [i, pair] of defaultPairs(config.listen[index] as SecureListener).entries())
      logCertificate(listener, pair.cert, loaded[i] as Buffer);
  }
}

function logCertificate(listener: string, file: string, pem: Buffer): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (e) {
    log.warn(
      "tls.certificate",
      "certificate loaded but not readable",
      { listener, file, error: errorText(e) },
      listener,
    );
    return;
  }
  const expires = new Date(cert.validTo);
  const daysLeft = Math.floor((expires.getTime() - Date.now()) / DAY_MS);
  const level: LogLevel = daysLeft < 0 ? "error" : daysLeft < EXPIRY_WARNING_DAYS ? "warn" : "info";
  const subject = cert.subject.replaceAll("\n", ", ");
  const keyType = cert.publicKey.asymmetricKeyType;
  const fields = { listener, file, subject, keyType, expires: expires.toISOString(), daysLeft };
  log[level]("tls.certificate", daysLeft < 0 ? "certificate loaded: expired" : "certificate loaded", fields, listener);
}

/**
 * node:tls server options for a TLS listener (RFC 3261 §26.2.1: sips needs
 * TLS): its certificate, client authentication and `tls` settings; the
 * transport puts the hardened defaults under them (transport/tls-policy.ts).
 */
function serverTls(l: SecureListener, path: string): TlsOptions {
  const pairs = defaultPairs(l);
  return serverOptions(
    pairs.map((p) => readFileSync(p.cert)),
    pairs.map((p) => readFileSync(p.key)),
    l,
    l.tls,
    path,
  );
}

/**
 * The options of a server that runs handshakes with its certificates and
 * client rules: the listener's own, or a `certificates` entry's. Several
 * pairs in one context: OpenSSL shows each client the one its signature
 * algorithms take (ECDSA or RSA).
 */
function serverOptions(
  cert: readonly Buffer[],
  key: readonly Buffer[],
  clients: ClientRules,
  tls: TlsSettings,
  path: string,
): TlsOptions {
  return {
    ...contextTls(clients, tls, path),
    cert: [...cert],
    key: [...key],
    requestCert: clients.clientAuth !== "none",
    rejectUnauthorized: clients.clientAuth === "require",
  };
}

/** The listener's default certificates: its `cert`, then its `alternative` if any. */
function defaultPairs(l: SecureListener): readonly CertificatePair[] {
  return l.alternative === undefined ? [l] : [l, l.alternative];
}

/**
 * What a server's context has besides its certificates: the listener's
 * `tls` settings, the CA its clients' certificates chain to and the CRLs
 * that revoke some of them (node then checks every certificate of the chain:
 * X509_V_FLAG_CRL_CHECK_ALL), given one by one (config/crl-file.ts).
 */
function contextTls(clients: ClientRules, tls: TlsSettings, path: string): SecureContextOptions {
  const ca = clients.ca === undefined ? undefined : readFileSync(clients.ca);
  const crl = clients.crl === undefined ? undefined : readFileSync(clients.crl);
  return {
    ...contextOptions(tls),
    ...(ca === undefined ? {} : { ca }),
    ...(crl === undefined ? {} : { crl: pemCrlBlocks(crl) }),
    sessionIdContext: sessionIdContext(path, clients.clientAuth, ca, crl),
  };
}

/**
 * What a session (a ticket, which every IO worker and every reload opens
 * alike) is good for: this listener, as its client certificates are
 * judged now. OpenSSL resumes a session only where its context matches,
 * and a resumed session keeps the client certificate and verdict of its
 * first handshake: a certificate revoked (a new `crl`) or no longer trusted
 * (a new `ca`) since, or one a listener with other rules judged, would come
 * back in on its ticket for as long as its key lives. A new CA or CRL, or
 * another listener, is a new context: a full handshake, checked again.
 * OpenSSL takes at most 32 bytes.
 */
function sessionIdContext(path: string, clientAuth: string, ca: Buffer | undefined, crl: Buffer | undefined): string {
  const h = createHash("sha256").update(path).update("\0").update(clientAuth).update("\0");
  h.update(ca ?? "")
    .update("\0")
    .update(crl ?? "");
  return h.digest("hex").slice(0, 32);
}

/**
 * A server per `certificates` entry, each with its names' certificates,
 * their client rules (their own, or the listener's) and a session context
 * of its own (`path` is the entry's): a session made under one name is not
 * resumed under another. A file loadConfig would refuse throws, naming its key.
 */
function namedServers(l: SecureListener, path: string, sessionTimeout: number): readonly NamedServerTls[] {
  if (l.certificates.length === 0) return [];
  const { files, errors } = readSniCertificates(l.certificates, path);
  if (errors.length > 0) throw new Error(formatErrors(errors));
  return files.map(({ cert, key, names }, j) => {
    const clients = clientRulesOf(l, l.certificates[j] as SniCertificate);
    const options = serverOptions(cert, key, clients, l.tls, `${path}.certificates[${j}]`);
    return { names, options: { ...options, sessionTimeout } };
  });
}

/** An object that reads, and spreads, as whatever `current` returns at that moment. */
function currentView<T extends object>(current: () => T): T {
  return new Proxy({} as T, {
    get: (_, key) => Reflect.get(current(), key),
    has: (_, key) => Reflect.has(current(), key),
    ownKeys: () => Reflect.ownKeys(current()),
    getOwnPropertyDescriptor: (_, key) => Reflect.getOwnPropertyDescriptor(current(), key),
  });
}
