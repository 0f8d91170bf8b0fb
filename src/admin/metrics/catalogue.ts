import { BackendState, RTT_BUCKETS, STATE_NAMES } from "../../health/state.ts";
import type { TrunkTotals } from "../totals.ts";
import { byKey, merge, perThread, perWorker, sum, total } from "./aggregate.ts";
import { counter, type Family, gauge, histogram, type Sample } from "./family.ts";
import type { Snapshot } from "./snapshot.ts";
import { TLS_FAMILIES } from "./tls-families.ts";

/** One series per configured backend. */
const perBackend =
  (pick: (b: Snapshot["backends"][number]) => number) =>
  (s: Snapshot): Sample<"pool" | "backend">[] =>
    s.backends.map((b) => [{ pool: b.pool, backend: b.name }, pick(b)]);

/** One series per configured trunk. */
const perTrunk =
  (pick: (t: TrunkTotals) => number) =>
  (s: Snapshot): Sample<"trunk">[] =>
    s.trunks.map((t) => [{ trunk: t.name }, pick(t)]);

/**
 * Every Prometheus metric sipedge exports, one row each, in the order
 * /metrics lists them. Adding a figure: the component puts it in its own
 * stats() (whose type runtime/channel.ts's WorkerStats is composed of), and
 * one row here reads it.
 */
export const CATALOGUE: readonly Family[] = [
  counter({
    name: "sipedge_sip_messages_received_total",
    help: "SIP messages received by the IO workers",
    labels: [],
    read: total((w) => w.proxy.counters.received),
  }),
  counter({
    name: "sipedge_sip_malformed_total",
    help: "Messages refused as malformed (400/505 or dropped)",
    labels: [],
    read: total((w) => w.proxy.counters.malformed),
  }),
  counter({
    name: "sipedge_failovers_total",
    help: "Requests moved to another backend (silence, timeout, 503, closed connection)",
    labels: [],
    read: total((w) => w.proxy.counters.failovers),
  }),
  counter({
    name: "sipedge_no_backend_total",
    help: "Requests answered 503 because no backend was left",
    labels: [],
    read: total((w) => w.proxy.counters.exhausted),
  }),
  counter({
    name: "sipedge_local_responses_total",
    help: "Responses sipedge generated itself",
    labels: [],
    read: total((w) => w.proxy.counters.localResponses),
  }),
  counter({
    name: "sipedge_stray_responses_total",
    help: "Responses that matched no transaction",
    labels: [],
    read: total((w) => w.proxy.counters.strayResponses),
  }),
  counter({
    name: "sipedge_flow_failed_total",
    help: "Requests from backends answered 430 Flow Failed: the endpoint has no live flow (RFC 5626 §5.3)",
    labels: [],
    read: total((w) => w.proxy.counters.flowFailed),
  }),
  counter({
    name: "sipedge_forged_flow_tokens_total",
    help: "Requests refused 403 because a flow token (from a backend) or backend token (from a client) did not verify, and clients' dialog-making answers dropped because the Record-Route sipedge wrote was altered",
    labels: [],
    read: total((w) => w.proxy.counters.forgedTokens),
  }),
  counter({
    name: "sipedge_endpoint_rebinds_total",
    help: "Endpoints that re-registered over a new flow",
    labels: [],
    read: total((w) => w.endpoints.rebinds),
  }),
  counter({
    name: "sipedge_slow_readers_closed_total",
    help: "Connections closed because the peer did not read what was queued for it (too much, or nothing of it for 64×T1)",
    labels: [],
    read: total((w) => w.streams.slowReaders),
  }),
  counter({
    name: "sipedge_slow_senders_closed_total",
    help: "Connections closed because a message, once begun, did not arrive whole within limits.messageTimeout",
    labels: [],
    read: total((w) => w.streams.slowSenders),
  }),
  counter({
    name: "sipedge_connections_refused_total",
    help: "New connections closed at once: limit (maxConnections), per_ip (maxConnectionsPerIp; on the backend side 64 per member address), stranger (to the backend side from an address that is no member), handshakes (maxHandshakes under way), pool (buffers critically low), load (TLS handshakes beyond the ration of a saturated worker), unknown_client (a verified client certificate naming no trunk, on a listener with unknownClient: refuse), certificate_required (from a requireCert trunk's sources without its certificate)",
    labels: ["reason"],
    read: byKey("reason", (w) => w.admission.refused),
  }),
  counter({
    name: "sipedge_unroutable_total",
    help: "Requests the routing policy refused: foreign_route (a client's Route to anyone but sipedge, 403), no_dialog_route (in dialog through our Record-Route without a backend in it, 403), unknown_backend (the dialog's backend is no longer configured, 404), no_flow_token (a backend's request naming no client flow, 404)",
    labels: ["reason"],
    read: byKey("reason", (w) => w.proxy.counters.unroutable),
  }),
  counter({
    name: "sipedge_internal_errors_total",
    help: "Bugs caught at an exception boundary (that message or transaction was dropped, the worker went on), by where: client, backend, handoff (a message), timer, closed (a closed connection's attempts)",
    labels: ["where"],
    read: byKey("where", (w) => w.proxy.counters.internalErrors),
  }),
  counter({
    name: "sipedge_backend_side_strangers_total",
    help: "Messages to the backend-side ports from an address that is no configured member: dropped unread",
    labels: [],
    read: total((w) => w.proxy.counters.strangers),
  }),
  counter({
    name: "sipedge_answers_limited_total",
    help: "Stateless answers sipedge did not send: their UDP source had had limits.answersPerSource this second (a forged source is not a reflector)",
    labels: [],
    read: total((w) => w.proxy.counters.answersLimited),
  }),
  counter({
    name: "sipedge_misdirected_responses_total",
    help: "Responses carrying a transaction's branch that came from another peer than the one the request went to: dropped",
    labels: [],
    read: total((w) => w.proxy.counters.misdirectedResponses),
  }),
  gauge({
    name: "sipedge_cpu_ration_per_second",
    help: "New dialogs and out-of-dialog requests per second an IO worker lets in while its thread is saturated (absent: no ration)",
    labels: ["worker"],
    read: (s) =>
      s.workers.flatMap((w) => (w.load.ration === null ? [] : [[{ worker: String(w.index) }, w.load.ration] as const])),
  }),
  gauge({
    name: "sipedge_tls_handshakes_in_progress",
    help: "TLS handshakes under way per IO worker (the handshake queue; bounded by limits.maxHandshakes per listener)",
    labels: ["worker"],
    read: perWorker((w) => w.clients.handshaking),
  }),
  gauge({
    name: "sipedge_connections_paused",
    help: "Client connections an IO worker does not read while its buffer pool is critically low (new ones, not a trusted trunk's or a registered endpoint's)",
    labels: ["worker"],
    read: perWorker((w) => w.clients.paused),
  }),
  counter({
    name: "sipedge_transactions_reclaimed_total",
    help: "Finished transactions ended before their linger timer: the pool ran low, or more lingered than the heap budget holds",
    labels: [],
    read: total((w) => w.proxy.counters.reclaimed),
  }),
  counter({
    name: "sipedge_buffer_pool_exhausted_total",
    help: "Buffer requests that found no free slot (the message was refused or read in place)",
    labels: [],
    read: total((w) => w.pool.exhausted),
  }),
  counter({
    name: "sipedge_overload_rejected_total",
    help: "New dialogs and out-of-dialog requests answered 503 under overload: pool low, transaction table full, or CPU ration spent (load)",
    labels: ["reason"],
    read: byKey("reason", (w) => w.proxy.counters.overload),
  }),
  gauge({
    name: "sipedge_buffer_pool_free_ratio",
    help: "Free fraction of each IO worker's buffer pool: below 0.25 new work gets 503, below 0.10 it is critical",
    labels: ["worker"],
    read: perWorker((w) => w.pool.freeFraction),
  }),
  gauge({
    name: "sipedge_buffer_pool_slots",
    help: "Buffer pool slots per IO worker and size class (bytes, or reserve for error responses), total and free",
    labels: ["worker", "class", "state"],
    read: (s) =>
      s.workers.flatMap((w) =>
        [...w.pool.classes.map((c) => [String(c.size), c] as const), ["reserve", w.pool.reserve] as const].flatMap(
          ([name, c]) => [
            [{ worker: String(w.index), class: name, state: "total" }, c.total] as const,
            [{ worker: String(w.index), class: name, state: "free" }, c.free] as const,
          ],
        ),
      ),
  }),
  gauge({
    name: "sipedge_endpoints",
    help: "Endpoints registered through sipedge (each worker knows them all)",
    labels: [],
    read: (s) => [[{}, Math.max(0, ...s.workers.map((w) => w.endpoints.registered))]],
  }),
  counter({
    name: "sipedge_handoffs_total",
    help: "Requests from backends passed to the IO worker owning their client flow; refused: that queue was full (503)",
    labels: ["result"],
    read: (s) => [
      [{ result: "delivered" }, sum(s.workers, (w) => w.proxy.counters.handedOff)],
      [{ result: "refused" }, sum(s.workers, (w) => w.proxy.counters.handOffRefused)],
    ],
  }),
  counter({
    name: "sipedge_sip_requests_total",
    help: "Valid SIP requests received, by method and transport",
    labels: ["method", "transport"],
    read: (s) =>
      [...merge(s.workers, (w) => w.proxy.counters.requests)].map(([key, n]) => {
        const [method = "", transport = ""] = key.split(" ");
        return [{ method, transport }, n] as const;
      }),
  }),
  counter({
    name: "sipedge_sip_responses_total",
    help: "Valid SIP responses received from next hops, by class",
    labels: ["class"],
    read: byKey("class", (w) => w.proxy.counters.responses),
  }),
  gauge({
    name: "sipedge_transactions",
    help: "Transactions under way, server and client side",
    labels: ["side"],
    read: (s) => [
      [{ side: "server" }, sum(s.workers, (w) => w.proxy.transactions.server)],
      [{ side: "client" }, sum(s.workers, (w) => w.proxy.transactions.client)],
    ],
  }),
  gauge({
    name: "sipedge_connections",
    help: "Open TCP/TLS connections (client and backend side) per IO worker: the kernel's reusePort spread",
    labels: ["worker"],
    read: perWorker((w) => w.clients.connections + w.backend.connections),
  }),
  gauge({
    name: "sipedge_flows",
    help: "Open client flows (connections) by transport, summed over IO workers; UDP peers are not connections",
    labels: ["transport"],
    read: byKey("transport", (w) => w.clients.flows),
  }),
  gauge({
    name: "sipedge_event_loop_lag_seconds",
    help: "How late each IO thread's event loop ran since the previous scrape",
    labels: ["thread", "stat"],
    read: perThread((w) => w.load.loopLag),
  }),
  gauge({
    name: "sipedge_heap_bytes",
    help: "Each IO thread's V8 heap: bytes in use, and the limit its share of limits.memory sets",
    labels: ["thread", "stat"],
    read: perThread((w) => w.heap),
  }),
  ...TLS_FAMILIES,
  counter({
    name: "sipedge_kernel_tcp_total",
    help: "Kernel TCP counters from /proc/net/netstat and /proc/net/snmp",
    labels: ["counter"],
    read: (s) => [...s.kernelTcp].map(([name, n]) => [{ counter: name }, n] as const),
  }),
  gauge({
    name: "sipedge_listen_queue",
    help: "Connections waiting in the accept queue of sipedge's TCP/TLS listeners",
    labels: ["port"],
    read: (s) => s.listenQueues.map((q) => [{ port: String(q.port) }, q.queued] as const),
  }),
  gauge({
    name: "sipedge_backend_up",
    help: "1 when the backend is up by its health probes and takes new calls",
    labels: ["pool", "backend"],
    read: perBackend((b) => (b.state === BackendState.Up ? 1 : 0)),
  }),
  gauge({
    name: "sipedge_backend_state",
    help: "1 for the backend's current state: up, down, draining or disabled",
    labels: ["pool", "backend", "state"],
    read: (s) =>
      s.backends.flatMap((b) =>
        Object.entries(STATE_NAMES).map(
          ([value, state]) => [{ pool: b.pool, backend: b.name, state }, Number(value) === b.state ? 1 : 0] as const,
        ),
      ),
  }),
  gauge({
    name: "sipedge_backend_probe_rtt_seconds",
    help: "Round trip of the last successful OPTIONS probe",
    labels: ["pool", "backend"],
    read: (s) =>
      s.backends.flatMap((b) =>
        b.rttMicros === undefined ? [] : [[{ pool: b.pool, backend: b.name }, b.rttMicros / 1e6] as const],
      ),
  }),
  histogram({
    // Was sipedge_backend_probe_rtt_histogram_seconds (promtool: a type in the name). Not
    // _rtt_seconds: that is the last round trip's gauge above; _duration_seconds is the convention.
    name: "sipedge_backend_probe_duration_seconds",
    help: "Round trips of answered OPTIONS probes",
    labels: ["pool", "backend"],
    bounds: RTT_BUCKETS,
    read: (s) =>
      s.backends.flatMap(({ pool, name, rtt }) =>
        rtt === undefined
          ? []
          : [{ labels: { pool, backend: name }, buckets: rtt.buckets, sum: rtt.sumSeconds, count: rtt.count }],
      ),
  }),
  counter({
    name: "sipedge_backend_state_transitions_total",
    help: "State changes of the backend since start",
    labels: ["pool", "backend"],
    read: perBackend((b) => b.transitions),
  }),
  // Calls per backend and per trunk: CPS is rate() of the _calls_total series.
  gauge({
    name: "sipedge_backend_active_calls",
    help: "Dialogs up on the backend (INVITE answered 2xx, no BYE yet)",
    labels: ["pool", "backend"],
    read: perBackend((b) => b.calls.active),
  }),
  counter({
    name: "sipedge_backend_calls_total",
    help: "Dialogs set up on the backend since start (rate() is its calls per second)",
    labels: ["pool", "backend"],
    read: perBackend((b) => b.calls.started),
  }),
  counter({
    name: "sipedge_trunk_requests_total",
    help: "Requests the trunk sent",
    labels: ["trunk"],
    read: perTrunk((t) => t.requests),
  }),
  counter({
    name: "sipedge_trunk_keepalives_total",
    help: "OPTIONS keep-alives the trunk sent to sipedge",
    labels: ["trunk"],
    read: perTrunk((t) => t.keepalives),
  }),
  counter({
    name: "sipedge_trunk_calls_total",
    help: "Initial INVITEs from the trunk (rate() is its calls per second)",
    labels: ["trunk"],
    read: perTrunk((t) => t.calls),
  }),
  gauge({
    name: "sipedge_trunk_active_calls",
    help: "Dialogs up from the trunk",
    labels: ["trunk"],
    read: perTrunk((t) => t.activeCalls),
  }),
  gauge({
    name: "sipedge_trunk_connections",
    help: "Open TCP/TLS connections from the trunk (0 for a trunk on UDP, or one that is down)",
    labels: ["trunk"],
    read: perTrunk((t) => t.connections),
  }),
  gauge({
    name: "sipedge_trunk_last_seen_timestamp_seconds",
    help: "When the trunk last sent anything (0: never); time() minus this is its silence",
    labels: ["trunk"],
    read: perTrunk((t) => t.lastSeen / 1000),
  }),
  counter({
    name: "sipedge_worker_restarts_total",
    help: "IO and health threads restarted after an exit, a crash or a stall",
    labels: [],
    read: (s) => [[{}, s.restarts]],
  }),
  counter({
    name: "sipedge_worker_respawn_failures_total",
    help: "IO workers that exited and whose replacement could not start (that worker stays gone until a restart)",
    labels: [],
    read: (s) => [[{}, s.respawnFailures]],
  }),
  counter({
    name: "sipedge_channel_timeouts_total",
    help: "Requests from the supervisor to an IO worker unanswered in time, by request: stats (that worker was left out of a scrape), reload (named in the reload's answer)",
    labels: ["request"],
    read: (s) => Object.entries(s.channelTimeouts).map(([request, n]) => [{ request }, n]),
  }),
  gauge({
    name: "sipedge_io_workers",
    help: "IO worker threads running",
    labels: [],
    read: (s) => [[{}, s.ioWorkers]],
  }),
  gauge({
    // The info-metric convention: the value is always 1, the labels are the data (joined onto other series with `* on(instance) group_left`).
    name: "sipedge_build_info",
    help: "Always 1: the versions of sipedge, and of the Node.js and OpenSSL it runs on, as labels",
    labels: ["version", "node", "openssl"],
    read: (s) => [[s.build, 1]],
  }),
];
