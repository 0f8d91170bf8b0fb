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
  threads: int(0, 1024).prefault(0).describe("IO workers; 0: one per CPU core"),
  pin: bool().prefault(true).describe("Pin each IO worker to its own core"),
  grace: duration().prefault("10s").describe("SIGTERM: how long transactions may finish before flows are closed"),
  backendPort: int(0, 65535 - 1024)
    .prefault(0)
    .describe(
      "Backend-side port of IO worker 0 (worker i: this + i), named in Via, Record-Route and Path; 0: any free port",
    ),
  backendAddress: text()
    .refine((a) => isIP(a) !== 0 && !isWildcard(a), "must be a concrete IP address, not a wildcard")
    .optional()
    .describe(
      "Where the backend side listens, a concrete IP of this host (named in Via and Record-Route); left out: the first listener's address",
    ),
}).describe("The IO workers");

const health = section({
  interval: duration().prefault("1s").describe("Time between OPTIONS probes of each member"),
  timeout: duration().prefault("500ms").describe("A probe unanswered this long failed"),
  downAfter: int(1, 100).prefault(2).describe("Failed probes in a row that take a member out"),
  upAfter: int(1, 100).prefault(2).describe("Answered probes in a row that put it back"),
  aliveCodes: list(code(100, "must be a response code from 100 to 699"))
    .prefault([])
    .describe("Probe answers that count as alive; empty: any answer"),
}).describe("Backend health probes");

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
  memory: size()
    .prefault("256MiB")
    .describe("The memory budget: half the IO workers' buffer pools, a quarter their heaps, a quarter connections"),
  maxConnections: int(1, 10_000_000)
    .optional()
    .describe("Client connections in all; default and most: what a quarter of memory holds at about 52 KiB each"),
  // A few dozen phones behind one office NAT; a bigger site is a trunk (exempt when trusted) or raises it.
  // 1 000 let one address take most of the appliance's 1 260 connections.
  maxConnectionsPerIp: int(1, 10_000_000)
    .prefault(50)
    .describe("Client connections from one source address (trusted trunks' sources exempt)"),
  maxHandshakes: int(1, 100_000)
    .prefault(256)
    .describe("TLS handshakes under way at once per listener and IO worker; more are refused at once"),
  handshakeTimeout: duration().prefault("10s").describe("How long a TLS handshake may take"),
  messageTimeout: duration().prefault("10s").describe("How long a stream message may take to arrive whole once begun"),
  udpReceiveBuffer: udpReceiveBuffer
    .prefault("1MiB")
    .describe("SO_RCVBUF of each client UDP socket (per IO worker), 64KiB to 64MiB"),
  maxTransactions: int(1, 10_000_000)
    .prefault(20_000)
    .describe("Server transactions awaiting their final response per IO worker; beyond it new work gets 503"),
  maxEndpoints: int(1, 10_000_000).prefault(200_000).describe("RFC 5626 bindings each IO worker keeps"),
  // A UDP carrier refused under overload gets this many 503s a second; a forged flood reflects no more.
  answersPerSource: int(1, 1_000_000)
    .prefault(500)
    .describe("sipedge's own stateless answers to one UDP source address a second"),
  idleTimeout: duration()
    .prefault("15m")
    .describe("A client TCP/TLS flow silent both ways this long is closed; 0: never"),
})
  .describe("What sipedge may hold")
  // Connections cost memory outside the pools and heaps (TLS state): the budget bounds them too.
  .transform((l) => ({ ...l, maxConnections: l.maxConnections ?? Math.max(1, connectionRoom(l.memory)) }))
  .superRefine((l, ctx) => {
    const problem = connectionBudgetProblem(l.maxConnections, l.memory);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: ["maxConnections"] });
  });

const admin = section({
  listen: text()
    .refine((s) => hostPort(s) !== undefined, 'must be "address:port"')
    .prefault("127.0.0.1:9091")
    .describe('Where the admin API listens, "address:port"'),
  tokenFile: text()
    .optional()
    .describe("File holding the bearer token (16+ characters) every request must carry; required beyond loopback"),
  stateFile: text().optional().describe("File keeping the operator's drain and disable across restarts and reloads"),
})
  .describe("The admin API (status, drain, reload, metrics)")
  .superRefine((a, ctx) => {
    const host = hostPort(a.listen)?.host;
    const missing = host === undefined || a.tokenFile !== undefined ? undefined : tokenRequired(host);
    if (missing !== undefined) ctx.addIssue({ code: "custom", message: missing, path: ["tokenFile"] });
  })
  .transform((a): Config["admin"] => ({ listen: a.listen, tokenFile: a.tokenFile, stateFile: a.stateFile }));

const sip = section({
  timers: section({
    t1: duration().prefault("500ms").describe("RFC 3261 §17.1.1.1: the RTT estimate"),
    t2: duration().prefault("4s").describe("Cap on non-INVITE and INVITE-response retransmit intervals"),
    t4: duration().prefault("5s").describe("How long the network may hold a message"),
    timerC: duration().prefault("181s").describe("RFC 3261 §16.6 step 11: the INVITE proxy timer, over 3 minutes"),
  })
    .prefault({})
    .describe("SIP timers"),
  firstResponseTimeout: duration()
    .prefault("2s")
    .describe("Try the next backend when the current one has sent nothing at all by then"),
  failoverOn: list(code(300, "must be a final response code from 300 to 699"))
    .prefault([503])
    .describe("Final responses from a backend that make sipedge try the next one"),
  retryAfter: int(0, 86_400)
    .prefault(30)
    .describe("Retry-After (seconds) on the 503 sent when no backend can take a request"),
  maxMessageSize: size().prefault("64KiB").describe("The largest SIP message taken"),
  flowTimer: duration()
    .prefault("120s")
    .describe("RFC 5626: the keep-alive interval (Flow-Timer) told to UAs that register with outbound"),
  flowSecretFile: text()
    .optional()
    .describe("Where the flow-token secret is kept (made on first start); left out: a new secret per start"),
  backendTls: section({
    verify: bool().prefault(true).describe("Check TLS backends' certificates: chain and the URI's address"),
    ca: text().optional().describe("CA bundle TLS backends' certificates chain to; left out: the public roots"),
  })
    .prefault({})
    .describe("How sipedge checks TLS backends' certificates"),
  foreignRoute: oneOf(["reject", "strip"])
    .prefault("reject")
    .describe("An out-of-dialog request routed to anyone but sipedge: reject (403) or strip the Route"),
}).describe("SIP behaviour");

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
    .prefault("1h")
    .describe("How often the session ticket key every IO worker shares is replaced, 1m to 168h"),
}).describe("What every TLS and WSS listener shares");

const log = section({
  level: oneOf(LOG_LEVELS).prefault(DEFAULT_LOG.level).describe("The least severe events logged"),
  format: oneOf(LOG_FORMATS).prefault(DEFAULT_LOG.format).describe("journal: one line each; json: one object each"),
}).describe("Logging; --log-level and --log-format win over it");

/** The admin section alone: what operator commands read (config/validate.ts's validateAdmin). */
export const adminSchema = admin.prefault({});

export const configSchema = section({
  io: io.prefault({}),
  listen: list(listener).min(1, "needs at least one listener").describe("Where clients reach sipedge: at least one"),
  backends: backendPools.describe("Pools of SIP servers; the first takes the traffic"),
  trunks: trunkList.describe("Named inbound peers, with their own metric labels"),
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
