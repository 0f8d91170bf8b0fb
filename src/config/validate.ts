import { BlockList, isIP, isIPv6 } from "node:net";
import { DEFAULT_LOG, LOG_FORMATS, LOG_LEVELS } from "../log/log.ts";
import { bareHost, findParam, isSipUri, parseUri } from "../sip/index.ts";
import { connectionBudgetProblem, connectionRoom } from "./budget.ts";
import { type Obj, Reader } from "./reader.ts";
import {
  type Algorithm,
  type BackendTransport,
  type Config,
  type ConfigError,
  type Listener,
  type ListenTransport,
  MAX_BACKENDS,
  type Member,
  type Pool,
  type Trunk,
} from "./schema.ts";
import {
  onlyOnWss,
  requireCertListener,
  requireClientCa,
  SECURE_LISTENER_KEYS,
  secureListener,
  WSS_LISTENER_KEYS,
} from "./tls-listener.ts";

const TOP = ["io", "listen", "backends", "trunks", "health", "limits", "admin", "sip", "tls", "log"] as const;
const TRANSPORTS: readonly ListenTransport[] = ["udp", "tcp", "tls", "wss"];
const ALGORITHMS: readonly Algorithm[] = ["hash-callid", "round-robin", "weighted", "least-calls"];
const MAX_MEMBER_NAME = 64;
const FOREIGN_ROUTE: readonly ("reject" | "strip")[] = ["reject", "strip"];

/** Validates a parsed YAML document; on failure, every problem with its key path. */
export function validateConfig(raw: unknown): { ok: true; value: Config } | { ok: false; errors: ConfigError[] } {
  const r = new Reader();
  const root = r.object(raw ?? {}, "", TOP) ?? {};
  const io = r.object(root.io ?? {}, "io", ["threads", "pin", "grace", "backendPort", "backendAddress"]) ?? {};
  const listen = (r.list(root.listen, "listen") ?? []).map((l, i) => listener(r, l, `listen[${i}]`));
  if (Array.isArray(root.listen) && root.listen.length === 0) r.fail("listen", "needs at least one listener");
  const config = {
    io: {
      threads: r.int(io, "threads", "io", 0, 1024, 0),
      pin: r.bool(io, "pin", "io", true),
      grace: r.duration(io, "grace", "io", "10s"),
      backendPort: r.int(io, "backendPort", "io", 0, 65535 - 1024, 0),
      backendAddress: backendAddress(r, io),
    },
    listen,
    backends: backendPools(r, root),
    trunks: trunkList(r, root),
    health: healthSection(r, root),
    limits: limitsSection(r, root),
    admin: adminSection(r, root),
    sip: sipSection(r, root),
    tls: tlsSection(r, root),
    log: logSection(r, root),
  };
  requireClientCa(r, config.listen, config.trunks);
  requireCertListener(r, config.listen, config.trunks);
  return r.errors.length > 0 ? { ok: false, errors: r.errors } : { ok: true, value: config as Config };
}

/**
 * The admin section alone, the rest of the file unread: what the operator
 * commands need to reach the API, even when the file has since been
 * broken (`sipedge reload` is how the running sipedge says what is wrong).
 */
export function validateAdmin(
  raw: unknown,
): { ok: true; value: Config["admin"] } | { ok: false; errors: ConfigError[] } {
  const r = new Reader();
  const root = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Obj) : {};
  const admin = adminSection(r, root);
  return r.errors.length > 0 ? { ok: false, errors: r.errors } : { ok: true, value: admin as Config["admin"] };
}

function backendPools(r: Reader, root: Obj) {
  const pools = (r.list(root.backends, "backends") ?? []).map((p, i) => pool(r, p, `backends[${i}]`));
  if (Array.isArray(root.backends) && root.backends.length === 0) r.fail("backends", "needs at least one pool");
  unique(
    r,
    "backends",
    pools.map((p) => p?.name),
  );
  unique(
    r,
    "backends[*].members",
    pools.flatMap((p) => p?.members.map((m) => m.name) ?? []),
  );
  if (pools.reduce((n, p) => n + (p?.members.length ?? 0), 0) > MAX_BACKENDS) {
    r.fail("backends", `at most ${MAX_BACKENDS} members in all`);
  }
  return pools;
}

function trunkList(r: Reader, root: Obj): Trunk[] {
  const trunks = (r.list(root.trunks ?? [], "trunks") ?? []).map((t, i) => trunk(r, t, `trunks[${i}]`));
  unique(
    r,
    "trunks",
    trunks.map((t) => t?.name),
  );
  return trunks.filter((t): t is Trunk => t !== undefined);
}

function healthSection(r: Reader, root: Obj) {
  const health =
    r.object(root.health ?? {}, "health", ["interval", "timeout", "downAfter", "upAfter", "aliveCodes"]) ?? {};
  const aliveCodes = r.list(health.aliveCodes ?? [], "health.aliveCodes") ?? [];
  aliveCodes.forEach((code, i) => {
    if (!(typeof code === "number" && Number.isInteger(code) && code >= 100 && code <= 699)) {
      r.fail(`health.aliveCodes[${i}]`, "must be a response code from 100 to 699");
    }
  });
  return {
    interval: r.duration(health, "interval", "health", "1s"),
    timeout: r.duration(health, "timeout", "health", "500ms"),
    downAfter: r.int(health, "downAfter", "health", 1, 100, 2),
    upAfter: r.int(health, "upAfter", "health", 1, 100, 2),
    aliveCodes,
  };
}

function limitsSection(r: Reader, root: Obj) {
  const limits =
    r.object(root.limits ?? {}, "limits", [
      "memory",
      "maxConnections",
      "maxConnectionsPerIp",
      "maxHandshakes",
      "handshakeTimeout",
      "messageTimeout",
      "udpReceiveBuffer",
      "maxTransactions",
      "maxEndpoints",
      "answersPerSource",
      "idleTimeout",
    ]) ?? {};
  const memory = r.size(limits, "memory", "limits", "256MiB");
  // Connections cost memory outside the pools and heaps (TLS state): the budget bounds them too.
  const room = connectionRoom(memory ?? 0);
  const maxConnections = r.int(limits, "maxConnections", "limits", 1, 10_000_000, Math.max(1, room));
  if (memory !== undefined && maxConnections !== undefined) {
    const problem = connectionBudgetProblem(maxConnections, memory);
    if (problem !== undefined) r.fail("limits.maxConnections", problem);
  }
  return {
    memory,
    maxConnections,
    // A few dozen phones behind one office NAT; a bigger site is a trunk (exempt when trusted) or raises it.
    // 1 000 let one address take most of the appliance's 1 260 connections.
    maxConnectionsPerIp: r.int(limits, "maxConnectionsPerIp", "limits", 1, 10_000_000, 50),
    maxHandshakes: r.int(limits, "maxHandshakes", "limits", 1, 100_000, 256),
    handshakeTimeout: r.duration(limits, "handshakeTimeout", "limits", "10s"),
    messageTimeout: r.duration(limits, "messageTimeout", "limits", "10s"),
    udpReceiveBuffer: udpReceiveBuffer(r, limits),
    maxTransactions: r.int(limits, "maxTransactions", "limits", 1, 10_000_000, 20_000),
    maxEndpoints: r.int(limits, "maxEndpoints", "limits", 1, 10_000_000, 200_000),
    // A UDP carrier refused under overload gets this many 503s a second; a forged flood reflects no more.
    answersPerSource: r.int(limits, "answersPerSource", "limits", 1, 1_000_000, 500),
    idleTimeout: r.duration(limits, "idleTimeout", "limits", "15m"),
  };
}

function adminSection(r: Reader, root: Obj) {
  const admin = r.object(root.admin ?? {}, "admin", ["listen", "tokenFile", "stateFile"]) ?? {};
  const listen = r.string(admin, "listen", "admin", "127.0.0.1:9091");
  const at = listen === undefined ? undefined : hostPort(listen);
  if (listen !== undefined && at === undefined) r.fail("admin.listen", 'must be "address:port"');
  const tokenMissing = at === undefined || admin.tokenFile !== undefined ? undefined : tokenRequired(at.host);
  if (tokenMissing !== undefined) r.fail("admin.tokenFile", tokenMissing);
  const file = (key: "tokenFile" | "stateFile") =>
    admin[key] === undefined ? undefined : r.string(admin, key, "admin");
  return { listen, tokenFile: file("tokenFile"), stateFile: file("stateFile") };
}

function sipSection(r: Reader, root: Obj) {
  const sip =
    r.object(root.sip ?? {}, "sip", [
      "timers",
      "firstResponseTimeout",
      "failoverOn",
      "retryAfter",
      "maxMessageSize",
      "flowTimer",
      "flowSecretFile",
      "backendTls",
      "foreignRoute",
    ]) ?? {};
  const backendTls = r.object(sip.backendTls ?? {}, "sip.backendTls", ["verify", "ca"]) ?? {};
  const timers = r.object(sip.timers ?? {}, "sip.timers", ["t1", "t2", "t4", "timerC"]) ?? {};
  const failoverOn = r.list(sip.failoverOn ?? [503], "sip.failoverOn") ?? [];
  failoverOn.forEach((code, i) => {
    if (!(typeof code === "number" && Number.isInteger(code) && code >= 300 && code <= 699)) {
      r.fail(`sip.failoverOn[${i}]`, "must be a final response code from 300 to 699");
    }
  });
  return {
    timers: {
      t1: r.duration(timers, "t1", "sip.timers", "500ms"),
      t2: r.duration(timers, "t2", "sip.timers", "4s"),
      t4: r.duration(timers, "t4", "sip.timers", "5s"),
      timerC: r.duration(timers, "timerC", "sip.timers", "181s"),
    },
    firstResponseTimeout: r.duration(sip, "firstResponseTimeout", "sip", "2s"),
    failoverOn,
    retryAfter: r.int(sip, "retryAfter", "sip", 0, 86_400, 30),
    maxMessageSize: r.size(sip, "maxMessageSize", "sip", "64KiB"),
    flowTimer: r.duration(sip, "flowTimer", "sip", "120s"),
    flowSecretFile: sip.flowSecretFile === undefined ? undefined : r.string(sip, "flowSecretFile", "sip"),
    foreignRoute: r.oneOf(sip, "foreignRoute", "sip", FOREIGN_ROUTE, "reject"),
    backendTls: {
      verify: r.bool(backendTls, "verify", "sip.backendTls", true),
      ca: backendTls.ca === undefined ? undefined : r.string(backendTls, "ca", "sip.backendTls"),
    },
  };
}

/** RFC 8446 §4.6.1: a ticket lives 7 days at most; under a minute, rotation would be churn for no gain. */
const TICKET_KEY_ROTATION = { min: 60_000, max: 7 * 24 * 3_600_000 } as const;

function tlsSection(r: Reader, root: Obj) {
  const tls = r.object(root.tls ?? {}, "tls", ["ticketKeyRotation"]) ?? {};
  const rotation = r.duration(tls, "ticketKeyRotation", "tls", "1h");
  const { min, max } = TICKET_KEY_ROTATION;
  if (rotation !== undefined && (rotation < min || rotation > max))
    r.fail("tls.ticketKeyRotation", "must be from 1m to 168h (a session ticket lives this long)");
  return { ticketKeyRotation: rotation };
}

function logSection(r: Reader, root: Obj) {
  const log = r.object(root.log ?? {}, "log", ["level", "format"]) ?? {};
  return {
    level: r.oneOf(log, "level", "log", LOG_LEVELS, DEFAULT_LOG.level),
    format: r.oneOf(log, "format", "log", LOG_FORMATS, DEFAULT_LOG.format),
  };
}

function listener(r: Reader, raw: unknown, path: string): Listener | undefined {
  const o = r.object(raw, path, ["transport", "address", "port", ...SECURE_LISTENER_KEYS, ...WSS_LISTENER_KEYS]);
  if (o === undefined) return undefined;
  const transport = r.oneOf(o, "transport", path, TRANSPORTS);
  const address = r.string(o, "address", path);
  if (address !== undefined && address !== "auto" && isIP(address) === 0) {
    r.fail(`${path}.address`, 'must be an IP address or "auto"');
  }
  // sipedge names its listeners in Via and Record-Route: a wildcard cannot be advertised.
  if (address !== undefined && isWildcard(address)) {
    r.fail(`${path}.address`, "must be a concrete address, not a wildcard");
  }
  const port = r.int(o, "port", path, 0, 65535);
  if (transport === "tls" || transport === "wss")
    return { transport, address, port, ...secureListener(r, o, path, transport) } as Listener;
  for (const key of SECURE_LISTENER_KEYS) {
    if (o[key] !== undefined) r.fail(`${path}.${key}`, `only applies to tls and wss listeners`);
  }
  onlyOnWss(r, o, path);
  return { transport, address, port } as Listener;
}

function trunk(r: Reader, raw: unknown, path: string): Trunk | undefined {
  const o = r.object(raw, path, ["name", "sources", "certNames", "trusted", "requireCert"]);
  if (o === undefined) return undefined;
  const sources = (r.list(o.sources ?? [], `${path}.sources`) ?? []).map((s, i) => {
    const cidr = typeof s === "string" ? parseCidr(s) : undefined;
    return cidr ?? r.fail(`${path}.sources[${i}]`, 'must be a CIDR like "198.51.100.0/24" or an address');
  });
  const certNames = (r.list(o.certNames ?? [], `${path}.certNames`) ?? []).map((n, i) =>
    typeof n === "string" && n.length > 0 ? n.toLowerCase() : r.fail(`${path}.certNames[${i}]`, "must be a name"),
  );
  if (sources.length === 0 && certNames.length === 0) {
    r.fail(path, "needs sources or certNames to recognise the trunk by");
  }
  const requireCert = r.bool(o, "requireCert", path, false);
  if (requireCert && certNames.length === 0) r.fail(`${path}.requireCert`, "needs certNames to know the trunk by");
  return {
    name: r.string(o, "name", path),
    sources: sources.filter((s) => s !== undefined),
    certNames: certNames.filter((n) => n !== undefined),
    trusted: r.bool(o, "trusted", path, false),
    requireCert,
  } as Trunk;
}

/** "198.51.100.0/24", "2001:db8::/32" or a bare address (a /32 or /128). */
function parseCidr(s: string): Trunk["sources"][number] | undefined {
  const [address = "", bits, extra] = s.split("/");
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

function pool(r: Reader, raw: unknown, path: string): Pool | undefined {
  const o = r.object(raw, path, ["name", "algorithm", "members"]);
  if (o === undefined) return undefined;
  const members = (r.list(o.members, `${path}.members`) ?? []).map((m, i) => member(r, m, `${path}.members[${i}]`));
  if (members.length === 0 && Array.isArray(o.members)) r.fail(`${path}.members`, "needs at least one member");
  return {
    name: r.string(o, "name", path),
    algorithm: r.oneOf(o, "algorithm", path, ALGORITHMS, "hash-callid"),
    members: members.filter((m): m is Member => m !== undefined),
  } as Pool;
}

function member(r: Reader, raw: unknown, path: string): Member | undefined {
  const o = r.object(raw, path, ["name", "uri", "weight"]);
  if (o === undefined) return undefined;
  const name = r.string(o, "name", path);
  // Our Record-Route carries the name, signed (proxy/routing.ts): a short word keeps it in budget.
  if (name !== undefined && Buffer.byteLength(name) > MAX_MEMBER_NAME) {
    r.fail(`${path}.name`, `at most ${MAX_MEMBER_NAME} bytes (it is carried in every dialog's Record-Route)`);
  }
  const weight = r.int(o, "weight", path, 0, 1000, 1);
  const text = r.string(o, "uri", path);
  if (text === undefined) return undefined;
  const uri = parseUri(text);
  if (!uri.ok || !isSipUri(uri.value)) return r.fail(`${path}.uri`, "not a SIP URI");
  const t =
    findParam(uri.value.params, "transport")?.value?.toLowerCase() ?? (uri.value.scheme === "sips" ? "tls" : "udp");
  if (t !== "udp" && t !== "tcp" && t !== "tls") return r.fail(`${path}.uri`, "transport must be udp, tcp or tls");
  const written = bareHost(uri.value.host);
  if (isIP(written) === 0) return r.fail(`${path}.uri`, "host must be an IP address (no DNS on the data path)");
  // One spelling, the kernel's (RFC 5952): the backend side knows members by the address a packet comes from.
  const host = isIPv6(written) ? new URL(`sip://[${written}]`).hostname.slice(1, -1) : written;
  return {
    name,
    uri: text,
    host,
    port: uri.value.port ?? (t === "tls" ? 5061 : 5060),
    transport: t as BackendTransport,
    weight,
  } as Member;
}

function unique(r: Reader, path: string, names: readonly (string | undefined)[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (n === undefined) continue;
    if (seen.has(n)) r.fail(path, `name "${n}" is used twice`);
    seen.add(n);
  }
}

/**
 * 1 MiB by default: Linux counts about 1.2 KiB for a small datagram, so
 * some 1 700 requests, a quarter second of a worker's reading under a
 * flood, below T1 (src/transport/udp.ts says why that matters). The kernel
 * grants at most net.core.rmem_max (the appliance sets 16 MiB).
 */
function udpReceiveBuffer(r: Reader, limits: Obj): number | undefined {
  const bytes = r.size(limits, "udpReceiveBuffer", "limits", "1MiB");
  if (bytes === undefined || (bytes >= 64 * 1024 && bytes <= 64 * 1024 * 1024)) return bytes;
  return r.fail("limits.udpReceiveBuffer", "must be from 64KiB to 64MiB");
}

/** io.backendAddress: a concrete IP of this host (it is named in Via and Record-Route, like a listener's). */
function backendAddress(r: Reader, io: Obj): string | undefined {
  if (io.backendAddress === undefined) return undefined;
  const a = r.string(io, "backendAddress", "io");
  if (a === undefined) return undefined;
  if (isIP(a) === 0 || isWildcard(a))
    return r.fail("io.backendAddress", "must be a concrete IP address, not a wildcard");
  return a;
}

export function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || (isIPv6(address) && /^[0:]+$/.test(address));
}

/** "127.0.0.1:9091" or "[::1]:9091" → parts, or undefined. */
export function hostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  return host !== undefined && isIP(host) !== 0 && port <= 65535 ? { host, port } : undefined;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8 or ::1 (in any spelling, or IPv4-mapped): reachable from this host only. */
export function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? "ipv4" : "ipv6");
}

/**
 * Why an admin API on `listenHost` without a token cannot be: beyond
 * loopback anyone who reaches the port could drain or disable every backend
 * (a wildcard listens on loopback and every other address alike).
 */
export function tokenRequired(listenHost: string): string | undefined {
  if (isLoopback(listenHost)) return undefined;
  return `is required when admin.listen (${listenHost}) is not a loopback address (127.0.0.0/8, ::1): anyone who can reach it could drain or disable backends`;
}
