/**
 * The config file's one schema (zod 4): what check-config validates, the
 * defaults it fills in, and what `npm run schema` writes to
 * sipedge.schema.json for editors. Each section is a strict mapping, so a
 * misspelt key is an error naming it.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { DEFAULT_LOG, LOG_FORMATS, LOG_LEVELS } from "../log/log.ts";
import { hostPort, isWildcard, tokenRequired } from "./addresses.ts";
import { backendPools } from "./backend-pools.ts";
import { connectionBudgetProblem, connectionRoom } from "./budget.ts";
import type { Config } from "./schema.ts";
import { bool, code, despiteInnerErrors, duration, int, list, oneOf, section, size, text } from "./schema-fields.ts";
import { listener, requireCertListener, requireClientCa } from "./tls-listener.ts";
import { trunkList } from "./trunk-list.ts";

const io = section({
  threads: int(0, 1024).prefault(0),
  pin: bool().prefault(true),
  grace: duration().prefault("10s"),
  backendPort: int(0, 65535 - 1024).prefault(0),
  /** A concrete IP of this host: it is named in Via and Record-Route, like a listener's. */
  backendAddress: text()
    .refine((a) => isIP(a) !== 0 && !isWildcard(a), "must be a concrete IP address, not a wildcard")
    .optional(),
});

const health = section({
  interval: duration().prefault("1s"),
  timeout: duration().prefault("500ms"),
  downAfter: int(1, 100).prefault(2),
  upAfter: int(1, 100).prefault(2),
  aliveCodes: list(code(100, "must be a response code from 100 to 699")).prefault([]),
});

/**
 * udpReceiveBuffer, 1 MiB by default: Linux counts about 1.2 KiB for a
 * small datagram, so some 1 700 requests, a quarter second of a worker's
 * reading under a flood, below T1 (src/transport/udp.ts says why that
 * matters). The kernel grants at most net.core.rmem_max (the appliance sets 16 MiB).
 */
const udpReceiveBuffer = size().pipe(
  z
    .number()
    .min(64 * 1024, "must be from 64KiB to 64MiB")
    .max(64 * 1024 * 1024, "must be from 64KiB to 64MiB"),
);

const limits = section({
  memory: size().prefault("256MiB"),
  /** Default: what the budget holds (below). */
  maxConnections: int(1, 10_000_000).optional(),
  // A few dozen phones behind one office NAT; a bigger site is a trunk (exempt when trusted) or raises it.
  // 1 000 let one address take most of the appliance's 1 260 connections.
  maxConnectionsPerIp: int(1, 10_000_000).prefault(50),
  maxHandshakes: int(1, 100_000).prefault(256),
  handshakeTimeout: duration().prefault("10s"),
  messageTimeout: duration().prefault("10s"),
  udpReceiveBuffer: udpReceiveBuffer.prefault("1MiB"),
  maxTransactions: int(1, 10_000_000).prefault(20_000),
  maxEndpoints: int(1, 10_000_000).prefault(200_000),
  // A UDP carrier refused under overload gets this many 503s a second; a forged flood reflects no more.
  answersPerSource: int(1, 1_000_000).prefault(500),
  idleTimeout: duration().prefault("15m"),
})
  // Connections cost memory outside the pools and heaps (TLS state): the budget bounds them too.
  .transform((l) => ({ ...l, maxConnections: l.maxConnections ?? Math.max(1, connectionRoom(l.memory)) }))
  .superRefine((l, ctx) => {
    const problem = connectionBudgetProblem(l.maxConnections, l.memory);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: ["maxConnections"] });
  });

const admin = section({
  listen: text()
    .refine((s) => hostPort(s) !== undefined, 'must be "address:port"')
    .prefault("127.0.0.1:9091"),
  tokenFile: text().optional(),
  stateFile: text().optional(),
})
  .superRefine((a, ctx) => {
    const host = hostPort(a.listen)?.host;
    const missing = host === undefined || a.tokenFile !== undefined ? undefined : tokenRequired(host);
    if (missing !== undefined) ctx.addIssue({ code: "custom", message: missing, path: ["tokenFile"] });
  })
  .transform((a): Config["admin"] => ({ listen: a.listen, tokenFile: a.tokenFile, stateFile: a.stateFile }));

const sip = section({
  timers: section({
    t1: duration().prefault("500ms"),
    t2: duration().prefault("4s"),
    t4: duration().prefault("5s"),
    timerC: duration().prefault("181s"),
  }).prefault({}),
  firstResponseTimeout: duration().prefault("2s"),
  failoverOn: list(code(300, "must be a final response code from 300 to 699")).prefault([503]),
  retryAfter: int(0, 86_400).prefault(30),
  maxMessageSize: size().prefault("64KiB"),
  flowTimer: duration().prefault("120s"),
  flowSecretFile: text().optional(),
  backendTls: section({ verify: bool().prefault(true), ca: text().optional() }).prefault({}),
  foreignRoute: oneOf(["reject", "strip"]).prefault("reject"),
});

/** RFC 8446 §4.6.1: a ticket lives 7 days at most; under a minute, rotation would be churn for no gain. */
const TICKET_KEY_ROTATION_PROBLEM = "must be from 1m to 168h (a session ticket lives this long)";

const tls = section({
  ticketKeyRotation: duration()
    .pipe(
      z
        .number()
        .min(60_000, TICKET_KEY_ROTATION_PROBLEM)
        .max(7 * 24 * 3_600_000, TICKET_KEY_ROTATION_PROBLEM),
    )
    .prefault("1h"),
});

const log = section({
  level: oneOf(LOG_LEVELS).prefault(DEFAULT_LOG.level),
  format: oneOf(LOG_FORMATS).prefault(DEFAULT_LOG.format),
});

/** The admin section alone: what operator commands read (config/validate.ts's validateAdmin). */
export const adminSchema = admin.prefault({});

export const configSchema = section({
  io: io.prefault({}),
  listen: list(listener).min(1, "needs at least one listener"),
  backends: backendPools,
  trunks: trunkList,
  health: health.prefault({}),
  limits: limits.prefault({}),
  admin: adminSchema,
  sip: sip.prefault({}),
  tls: tls.prefault({}),
  log: log.prefault({}),
}).superRefine((c, ctx) => {
  // Across listeners and trunks: run on whatever parsed, as each part of the check reads only a few keys.
  const fail = (path: readonly (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", message, path: [...path] });
  requireClientCa(c.listen, c.trunks, fail);
  requireCertListener(c.listen, c.trunks, fail);
}, despiteInnerErrors);
