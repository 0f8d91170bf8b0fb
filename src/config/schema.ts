/** The validated configuration: every field present, every unit resolved. */

import type { LogSettings } from "../log/log.ts";

export type ListenTransport = "udp" | "tcp" | "tls" | "wss";
export type ClientAuth = "none" | "request" | "require";
/**
 * A client whose certificate verified but names no trunk: `anonymous`
 * stays, as no trunk's; `refuse` is closed after the handshake.
 */
export type UnknownClient = "refuse" | "anonymous";
export type Algorithm = "hash-callid" | "round-robin" | "weighted" | "least-calls";
export type BackendTransport = "udp" | "tcp" | "tls";

export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/**
 * A TLS or WSS listener's protocol settings, for those who must differ
 * from sipedge's hardened defaults (transport/tls-policy.ts).
 */
export interface TlsSettings {
  /** OpenSSL cipher list; undefined: the defaults (TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305). */
  readonly ciphers: string | undefined;
  /** Key-exchange groups, colon-separated, most preferred first (node:tls `ecdhCurve`); undefined: Node's. */
  readonly groups: string | undefined;
  readonly minVersion: TlsVersion;
}

/**
 * A further certificate of a TLS or WSS listener, shown to a client that
 * asks for one of its names by SNI (RFC 6066 §3).
 */
export interface SniCertificate {
  /** PEM: the certificate, then the chain that vouches for it, if any. */
  readonly cert: string;
  readonly key: string;
  /**
   * Server names, lower case: exact (`a.example.com`) or a wildcard of one
   * leftmost label (`*.example.com`); undefined: the certificate's own
   * subjectAltName DNS names (config/sni-certificates.ts reads them).
   */
  readonly names: readonly string[] | undefined;
  /** A second certificate of another key type for the same names, as a listener's `alternative`. */
  readonly alternative: CertificatePair | undefined;
  /**
   * Which client certificates these names ask for and trust; undefined:
   * the listener's. A name's own rules have a TLS server of their own
   * (transport/server-names.ts), so a session made under another name
   * never resumes here.
   */
  readonly clients: ClientRules | undefined;
}

/** A certificate (PEM, then its chain) and its private key. */
export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
}

/** Which client certificates a TLS server asks for, and what it checks them against. */
export interface ClientRules {
  readonly clientAuth: ClientAuth;
  /** The CA bundle client certificates must chain to; undefined: the public roots. */
  readonly ca: string | undefined;
  /**
   * PEM CRLs, one from each CA in a client certificate's chain (node checks
   * the whole chain): a revoked certificate fails the handshake. Needs `ca`.
   */
  readonly crl: string | undefined;
}

/** What a TLS and a WSS listener both have: certificates, client authentication and TLS settings. */
export interface SecureListener extends ClientRules {
  readonly transport: "tls" | "wss";
  readonly address: string;
  readonly port: number;
  /** The default certificate: for a client that names no server, or one no `certificates` entry names. */
  readonly cert: string;
  readonly key: string;
  /**
   * A second default certificate of another key type (ECDSA beside RSA):
   * OpenSSL shows each client the one its signature algorithms take. One
   * object, not a list: OpenSSL keeps one certificate per key type, so a
   * third could only replace one of these (config/files.ts refuses two of a type).
   */
  readonly alternative: CertificatePair | undefined;
  /** Chosen by the name the client asks for (SNI); empty: `cert` for every client. */
  readonly certificates: readonly SniCertificate[];
  readonly unknownClient: UnknownClient;
  readonly tls: TlsSettings;
}

export type Listener =
  | { readonly transport: "udp" | "tcp"; readonly address: string; readonly port: number }
  | (SecureListener & { readonly transport: "tls" })
  | (SecureListener & {
      readonly transport: "wss";
      /**
       * Origins (RFC 6454, `https://host[:port]`) whose pages may open a
       * WebSocket here; any other Origin gets 403. Undefined: any.
       */
      readonly allowedOrigins: readonly string[] | undefined;
    });

export interface Member {
  readonly name: string;
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  readonly transport: BackendTransport;
  readonly weight: number;
}

export interface Pool {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly members: readonly Member[];
}

/**
 * A named inbound peer (a carrier, an SBC, a PBX): recognised by the names
 * in a TLS client certificate that verified, else by its source address
 * (proxy/trunks.ts), so its traffic gets its own metric labels.
 */
export interface Trunk {
  readonly name: string;
  /** CIDRs (IPv4 or IPv6) its traffic comes from. */
  readonly sources: readonly { readonly address: string; readonly prefix: number; readonly family: "ipv4" | "ipv6" }[];
  /** Subject CN or SAN DNS names of its (verified) TLS client certificate. */
  readonly certNames: readonly string[];
  /** Never refused under overload (a carrier's calls are the ones the appliance is for). */
  readonly trusted: boolean;
  /**
   * Known only by a verified certificate naming one of `certNames`, never
   * by source address: a connection from its `sources` without that
   * certificate is refused.
   */
  readonly requireCert: boolean;
}

export interface SipTimers {
  /** RFC 3261 §17.1.1.1: RTT estimate, 500 ms by default. */
  readonly t1: number;
  /** Cap on non-INVITE and INVITE-response retransmit intervals, 4 s. */
  readonly t2: number;
  /** How long the network may hold a message, 5 s. */
  readonly t4: number;
  /** RFC 3261 §16.6 step 11: INVITE proxy timer, more than 3 minutes. */
  readonly timerC: number;
}

export interface SipSettings {
  readonly timers: SipTimers;
  /** Try the next backend when the current one has sent nothing at all by then. */
  readonly firstResponseTimeout: number;
  /** Final responses from a backend that make sipedge try the next one. */
  readonly failoverOn: readonly number[];
  /** Retry-After (seconds) on the 503 sent when no backend can take a request. */
  readonly retryAfter: number;
  readonly maxMessageSize: number;
  /** RFC 5626 §4.4.1: the keep-alive interval (Flow-Timer) told to UAs that register with outbound. */
  readonly flowTimer: number;
  /**
   * Where the flow-token secret is kept (made on first start), so the Path
   * and Record-Route tokens registrars hold survive a restart: an old flow
   * then gets 430 (gone) rather than 403 (forged). None: a new secret per start.
   */
  readonly flowSecretFile: string | undefined;
  /**
   * A client's out-of-dialog request with a Route naming anyone but sipedge:
   * `reject` answers 403, `strip` removes every Route value and dispatches
   * it to the pool as usual (proxy/routing.ts). Either way it goes nowhere else.
   */
  readonly foreignRoute: "reject" | "strip";
  /** How sipedge checks TLS backends' certificates. */
  readonly backendTls: { readonly verify: boolean; readonly ca: string | undefined };
}

/**
 * Members in all pools at most: the health thread's shared table
 * (health/state.ts) has room for this many, so a reload can change the list
 * in place.
 */
export const MAX_BACKENDS = 1024;

export interface Config {
  readonly io: {
    readonly threads: number;
    readonly pin: boolean;
    /** SIGTERM: how long transactions may finish before flows are closed. */
    readonly grace: number;
    /**
     * Backend-side port of IO worker 0 (worker i: this + i), named in Via,
     * Record-Route and Path: fixed, so what registrars and dialogs hold still
     * reaches sipedge after a restart, and a firewall can open it. 0: any free port.
     */
    readonly backendPort: number;
    /**
     * Where the backend side listens, when not on the first listener's
     * address: a separate interface towards the backends keeps their ports
     * off the public one. Undefined: the first listener's address.
     */
    readonly backendAddress: string | undefined;
  };
  readonly listen: readonly Listener[];
  readonly backends: readonly Pool[];
  readonly trunks: readonly Trunk[];
  readonly health: {
    readonly interval: number;
    readonly timeout: number;
    readonly downAfter: number;
    readonly upAfter: number;
    /** Probe answers that count as alive; empty: any answer (Kamailio's view: even 404 or 483 proves it runs). */
    readonly aliveCodes: readonly number[];
  };
  readonly limits: {
    readonly memory: number;
    readonly maxConnections: number;
    /** Client connections from one source address (trusted trunks' sources exempt). */
    readonly maxConnectionsPerIp: number;
    /** TLS handshakes under way at once per IO worker listener; more are refused at once. */
    readonly maxHandshakes: number;
    /** ms a TLS handshake may take. */
    readonly handshakeTimeout: number;
    /** ms a stream message may take to arrive whole once begun (slowloris). */
    readonly messageTimeout: number;
    /** SO_RCVBUF of each client UDP socket (per IO worker): about a quarter second of reading. */
    readonly udpReceiveBuffer: number;
    /** Server transactions awaiting their final response per IO worker; beyond it new work gets 503. */
    readonly maxTransactions: number;
    /** Endpoints every IO worker keeps track of (RFC 5626 bindings); the least recently bound go first. */
    readonly maxEndpoints: number;
    /**
     * sipedge's own stateless answers (refusals, OPTIONS, 400s) to one UDP
     * source address per second: a datagram's source may be forged, and
     * the answers then go to whoever it names. Connections are not limited.
     */
    readonly answersPerSource: number;
    /** A client TCP/TLS flow with no traffic either way (not even a keep-alive) this long is closed; 0: never. */
    readonly idleTimeout: number;
  };
  readonly admin: {
    readonly listen: string;
    /**
     * A file holding the bearer token every admin request must carry (at
     * least 16 characters); none: open, allowed only on a loopback `listen`.
     */
    readonly tokenFile: string | undefined;
    /**
     * Where the operator's drain and disable of backend members are kept
     * (runtime/operator-states.ts), so a restart or a reload that changes the
     * member list does not put a drained member back into service. None: they
     * last as long as the process.
     */
    readonly stateFile: string | undefined;
  };
  readonly sip: SipSettings;
  /** What every TLS and WSS listener of every IO worker shares. */
  readonly tls: {
    /**
     * ms between session ticket key rotations (runtime/ticket-key-rotation.ts):
     * a ticket is good for this long, and its key is kept for twice as long.
     */
    readonly ticketKeyRotation: number;
  };
  /** How much sipedge logs and how (log/log.ts); the command line's --log-level and --log-format win over it. */
  readonly log: LogSettings;
}

export interface ConfigError {
  /** Where in the file: `backends[0].members[1].uri`. */
  readonly path: string;
  readonly problem: string;
  /** The line and column (1-based) of the key's value in the file, where it has one (config/yaml-source.ts). */
  readonly at?: { readonly file: string; readonly line: number; readonly col: number };
}

/** The client rules of the clients asking for one of `entry`'s names: its own, or its listener's. */
export function clientRulesOf(l: SecureListener, entry: SniCertificate): ClientRules {
  return entry.clients ?? l;
}
