import { Counter, Gauge, type Metric, Registry } from "prom-client";
import { BackendState, RTT_BUCKETS, STATE_NAMES } from "../health/state.ts";
import type { WorkerStats } from "../runtime/channel.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import { HANDSHAKE_BUCKETS } from "../transport/handshakes.ts";
import { listenQueues, tcpCounters } from "./kernel.ts";
import { backendCalls, type TrunkTotals, trunkTotals } from "./totals.ts";

/** One labelled series of a histogram: counts per bucket (not cumulative; the last is above every bound). */
interface HistogramSeries {
  readonly labels: Record<string, string>;
  readonly buckets: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/**
 * A Prometheus histogram built at scrape time from bucket counts kept
 * elsewhere (the workers' handshake counts, the health table's round trips):
 * prom-client's own Histogram can only observe.
 */
function histogramOf(name: string, help: string, bounds: readonly number[], series: () => HistogramSeries[]) {
  return {
    name,
    help,
    async get() {
      const values: { value: number; metricName: string; labels: Record<string, string | number> }[] = [];
      for (const s of series()) {
        let cumulative = 0;
        bounds.forEach((le, i) => {
          cumulative += s.buckets[i] ?? 0;
          values.push({ value: cumulative, metricName: `${name}_bucket`, labels: { le, ...s.labels } });
        });
        values.push({ value: s.count, metricName: `${name}_bucket`, labels: { le: "+Inf", ...s.labels } });
        values.push({ value: s.sum, metricName: `${name}_sum`, labels: s.labels });
        values.push({ value: s.count, metricName: `${name}_count`, labels: s.labels });
      }
      return { name, help, type: "histogram", values, aggregator: "sum" };
    },
  };
}

/** TLS handshake durations by key type, summed over the workers. */
function handshakeSeries(stats: readonly WorkerStats[]): HistogramSeries[] {
  const byKey = new Map<string, { buckets: number[]; sum: number; count: number }>();
  for (const h of stats.flatMap((s) => s.handshakes)) {
    const acc = byKey.get(h.keyType) ?? { buckets: new Array(h.buckets.length).fill(0), sum: 0, count: 0 };
    h.buckets.forEach((n, i) => {
      acc.buckets[i] = (acc.buckets[i] ?? 0) + n;
    });
    acc.sum += h.sumSeconds;
    acc.count += h.ok;
    byKey.set(h.keyType, acc);
  }
  return [...byKey].map(([keyType, acc]) => ({ labels: { key_type: keyType }, ...acc }));
}

/** A scrape's values for a labelled gauge (set) or counter (added once after its reset). */
function fill(metric: Gauge | Counter, rows: readonly (readonly [Record<string, string>, number])[]): void {
  metric.reset();
  for (const [labels, n] of rows) {
    if (metric instanceof Gauge) metric.set(labels, n);
    else metric.inc(labels, n);
  }
}

/** Sums one counter over every worker's snapshot. */
function sum(stats: readonly WorkerStats[], pick: (s: WorkerStats) => number): number {
  return stats.reduce((n, s) => n + pick(s), 0);
}

/** Merges per-worker keyed counters ("INVITE udp" → n). */
function merge(stats: readonly WorkerStats[], pick: (s: WorkerStats) => Record<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of stats) for (const [k, v] of Object.entries(pick(s))) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/**
 * The Prometheus metrics (`sipedge_` names). Each scrape takes one snapshot
 * of every worker's counters over the channel and reads the shared health
 * table and the kernel's counters; the data path does no metrics work.
 */
export function metricsRegistry(supervisor: Supervisor): { registry: Registry; scrape: () => Promise<string> } {
  const registry = new Registry();
  let stats: WorkerStats[] = [];
  const counter = (name: string, help: string, pick: (s: WorkerStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sum(stats, pick));
      },
    });
  /** A counter with one label, summed over the workers' records of it. */
  const labelled = (name: string, help: string, label: string, pick: (s: WorkerStats) => Record<string, number>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        fill(
          this,
          [...merge(stats, pick)].map(([value, n]) => [{ [label]: value }, n]),
        );
      },
    });
  counter("sipedge_sip_messages_received_total", "SIP messages received by the IO workers", (s) => s.counters.received);
  counter(
    "sipedge_sip_malformed_total",
    "Messages refused as malformed (400/505 or dropped)",
    (s) => s.counters.malformed,
  );
  counter(
    "sipedge_failovers_total",
    "Requests moved to another backend (silence, timeout, 503, closed connection)",
    (s) => s.counters.failovers,
  );
  counter("sipedge_no_backend_total", "Requests answered 503 because no backend was left", (s) => s.counters.exhausted);
  counter("sipedge_local_responses_total", "Responses sipedge generated itself", (s) => s.counters.localResponses);
  counter("sipedge_stray_responses_total", "Responses that matched no transaction", (s) => s.counters.strayResponses);
  counter(
    "sipedge_flow_failed_total",
    "Requests from backends answered 430 Flow Failed: the endpoint has no live flow (RFC 5626 §5.3)",
    (s) => s.counters.flowFailed,
  );
  counter(
    "sipedge_forged_flow_tokens_total",
    "Requests refused 403 because a flow token (from a backend) or backend token (from a client) did not verify, and clients' dialog-making answers dropped because the Record-Route sipedge wrote was altered",
    (s) => s.counters.forgedTokens,
  );
  counter("sipedge_endpoint_rebinds_total", "Endpoints that re-registered over a new flow", (s) => s.rebinds);
  counter(
    "sipedge_slow_readers_closed_total",
    "Connections closed because the peer did not read what was queued for it (too much, or nothing of it for 64×T1)",
    (s) => s.slowReaders,
  );
  counter(
    "sipedge_slow_senders_closed_total",
    "Connections closed because a message, once begun, did not arrive whole within limits.messageTimeout",
    (s) => s.slowSenders,
  );
  labelled(
    "sipedge_connections_refused_total",
    "New connections closed at once: limit (maxConnections), per_ip (maxConnectionsPerIp; on the backend side 64 per member address), stranger (to the backend side from an address that is no member), handshakes (maxHandshakes under way), pool (buffers critically low), load (TLS handshakes beyond the ration of a saturated worker)",
    "reason",
    (s) => s.refused,
  );
  labelled(
    "sipedge_unroutable_total",
    "Requests the routing policy refused: foreign_route (a client's Route to anyone but sipedge, 403), no_dialog_route (in dialog through our Record-Route without a backend in it, 403), unknown_backend (the dialog's backend is no longer configured, 404), no_flow_token (a backend's request naming no client flow, 404)",
    "reason",
    (s) => s.counters.unroutable,
  );
  labelled(
    "sipedge_internal_errors_total",
    "Bugs caught at an exception boundary (that message or transaction was dropped, the worker went on), by where: client, backend, handoff (a message), timer, closed (a closed connection's attempts)",
    "where",
    (s) => s.counters.internalErrors,
  );
  counter(
    "sipedge_backend_side_strangers_total",
    "Messages to the backend-side ports from an address that is no configured member: dropped unread",
    (s) => s.counters.strangers,
  );
  counter(
    "sipedge_answers_limited_total",
    "Stateless answers sipedge did not send: their UDP source had had limits.answersPerSource this second (a forged source is not a reflector)",
    (s) => s.counters.answersLimited,
  );
  counter(
    "sipedge_misdirected_responses_total",
    "Responses carrying a transaction's branch that came from another peer than the one the request went to: dropped",
    (s) => s.counters.misdirectedResponses,
  );
  new Gauge({
    name: "sipedge_cpu_ration_per_second",
    help: "New dialogs and out-of-dialog requests per second an IO worker lets in while its event loop is saturated (absent: no ration)",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.flatMap((s) => (s.ration === null ? [] : [[{ worker: String(s.index) }, s.ration] as const])),
      );
    },
  });
  new Gauge({
    name: "sipedge_tls_handshakes_in_progress",
    help: "TLS handshakes under way per IO worker (the handshake queue; bounded by limits.maxHandshakes per listener)",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.map((s) => [{ worker: String(s.index) }, s.handshaking]),
      );
    },
  });
  new Gauge({
    name: "sipedge_connections_paused",
    help: "Client connections an IO worker does not read while its buffer pool is critically low (new ones, not a trusted trunk's or a registered endpoint's)",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.map((s) => [{ worker: String(s.index) }, s.paused]),
      );
    },
  });
  counter(
    "sipedge_transactions_reclaimed_total",
    "Finished transactions ended before their linger timer: the pool ran low, or more lingered than the heap budget holds",
    (s) => s.counters.reclaimed,
  );
  counter(
    "sipedge_buffer_pool_exhausted_total",
    "Buffer requests that found no free slot (the message was refused or read in place)",
    (s) => s.pool.exhausted,
  );
  labelled(
    "sipedge_overload_rejected_total",
    "New dialogs and out-of-dialog requests answered 503 under overload: pool low, transaction table full, or CPU ration spent (load)",
    "reason",
    (s) => s.counters.overload,
  );
  new Gauge({
    name: "sipedge_buffer_pool_free_ratio",
    help: "Free fraction of each IO worker's buffer pool: below 0.25 new work gets 503, below 0.10 it is critical",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.map((s) => [{ worker: String(s.index) }, s.pool.freeFraction]),
      );
    },
  });
  new Gauge({
    name: "sipedge_buffer_pool_slots",
    help: "Buffer pool slots per IO worker and size class (bytes, or reserve for error responses), total and free",
    labelNames: ["worker", "class", "state"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.flatMap((s) =>
          [...s.pool.classes.map((c) => [String(c.size), c] as const), ["reserve", s.pool.reserve] as const].flatMap(
            ([name, c]) => [
              [{ worker: String(s.index), class: name, state: "total" }, c.total],
              [{ worker: String(s.index), class: name, state: "free" }, c.free],
            ],
          ),
        ),
      );
    },
  });
  new Gauge({
    name: "sipedge_endpoints",
    help: "Endpoints registered through sipedge (each worker knows them all)",
    registers: [registry],
    collect() {
      this.set(Math.max(0, ...stats.map((s) => s.endpoints)));
    },
  });
  new Counter({
    name: "sipedge_handoffs_total",
    help: "Requests from backends passed to the IO worker owning their client flow; refused: that queue was full (503)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      fill(this, [
        [{ result: "delivered" }, sum(stats, (s) => s.counters.handedOff)],
        [{ result: "refused" }, sum(stats, (s) => s.counters.handOffRefused)],
      ]);
    },
  });
  new Counter({
    name: "sipedge_sip_requests_total",
    help: "Valid SIP requests received, by method and transport",
    labelNames: ["method", "transport"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [k, v] of merge(stats, (s) => s.counters.requests)) {
        const [method = "", transport = ""] = k.split(" ");
        this.inc({ method, transport }, v);
      }
    },
  });
  new Counter({
    name: "sipedge_sip_responses_total",
    help: "Valid SIP responses received from next hops, by class",
    labelNames: ["class"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [k, v] of merge(stats, (s) => s.counters.responses)) this.inc({ class: k }, v);
    },
  });
  new Gauge({
    name: "sipedge_transactions",
    help: "Transactions under way, server and client side",
    labelNames: ["side"],
    registers: [registry],
    collect() {
      this.set(
        { side: "server" },
        sum(stats, (s) => s.serverTransactions),
      );
      this.set(
        { side: "client" },
        sum(stats, (s) => s.clientTransactions),
      );
    },
  });
  new Gauge({
    name: "sipedge_connections",
    help: "Open TCP/TLS connections (client and backend side) per IO worker: the kernel's reusePort spread",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      fill(
        this,
        stats.map((s) => [{ worker: String(s.index) }, s.connections]),
      );
    },
  });
  new Gauge({
    name: "sipedge_flows",
    help: "Open client flows (connections) by transport, summed over IO workers; UDP peers are not connections",
    labelNames: ["transport"],
    registers: [registry],
    collect() {
      fill(
        this,
        [...merge(stats, (s) => s.flows)].map(([transport, n]) => [{ transport }, n]),
      );
    },
  });
  /** A gauge with one series per IO thread and figure (`stat`). */
  const perThread = (name: string, help: string, pick: (s: WorkerStats) => Readonly<Record<string, number>>) =>
    new Gauge({
      name,
      help,
      labelNames: ["thread", "stat"],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of stats) {
          const thread = `sipedge-io-${s.index}`;
          for (const [stat, value] of Object.entries(pick(s))) this.set({ thread, stat }, value);
        }
      },
    });
  perThread(
    "sipedge_event_loop_lag_seconds",
    "How late each IO thread's event loop ran since the previous scrape",
    (s) => s.loopLag,
  );
  perThread(
    "sipedge_heap_bytes",
    "Each IO thread's V8 heap: bytes in use, and the limit its share of limits.memory sets",
    (s) => s.heap,
  );
  new Counter({
    name: "sipedge_tls_handshakes_total",
    help: "TLS handshakes on the client-facing listeners, by key type and result",
    labelNames: ["key_type", "result"],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of stats.flatMap((s) => s.handshakes)) {
        this.inc({ key_type: h.keyType, result: "ok" }, h.ok);
        this.inc({ key_type: h.keyType, result: "failed" }, h.failed);
      }
    },
  });
  registry.registerMetric(
    histogramOf(
      "sipedge_tls_handshake_seconds",
      "TLS handshake duration on the client-facing listeners, by key type",
      HANDSHAKE_BUCKETS,
      () => handshakeSeries(stats),
    ) as unknown as Metric,
  );
  new Counter({
    name: "sipedge_kernel_tcp_total",
    help: "Kernel TCP counters from /proc/net/netstat and /proc/net/snmp",
    labelNames: ["counter"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [k, v] of tcpCounters()) this.inc({ counter: k }, v);
    },
  });
  new Gauge({
    name: "sipedge_listen_queue",
    help: "Connections waiting in the accept queue of sipedge's TCP/TLS listeners",
    labelNames: ["port"],
    registers: [registry],
    collect() {
      this.reset();
      const ports = supervisor.listeners.filter((l) => l.transport !== "udp").map((l) => l.port);
      const queues = listenQueues(ports);
      for (const p of ports) this.set({ port: String(p) }, queues.get(p) ?? 0);
    },
  });
  const backends = () =>
    supervisor.config.backends.flatMap((p) => p.members.map((m) => ({ pool: p.name, name: m.name })));
  new Gauge({
    name: "sipedge_backend_up",
    help: "1 when the backend is up by its health probes and takes new calls",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        this.set({ pool: b.pool, backend: b.name }, supervisor.table.state(b.name) === BackendState.Up ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: "sipedge_backend_state",
    help: "1 for the backend's current state: up, down, draining or disabled",
    labelNames: ["pool", "backend", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        const now = supervisor.table.state(b.name);
        for (const [value, state] of Object.entries(STATE_NAMES)) {
          this.set({ pool: b.pool, backend: b.name, state }, Number(value) === now ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: "sipedge_backend_probe_rtt_seconds",
    help: "Round trip of the last successful OPTIONS probe",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        const us = supervisor.table.rttMicros(b.name);
        if (us !== undefined) this.set({ pool: b.pool, backend: b.name }, us / 1e6);
      }
    },
  });
  registry.registerMetric(
    histogramOf(
      "sipedge_backend_probe_rtt_histogram_seconds",
      "Round trips of answered OPTIONS probes",
      RTT_BUCKETS,
      () =>
        backends().flatMap((b) => {
          const h = supervisor.table.rttHistogram(b.name);
          return h === undefined
            ? []
            : [{ labels: { pool: b.pool, backend: b.name }, buckets: h.buckets, sum: h.sumSeconds, count: h.count }];
        }),
    ) as unknown as Metric,
  );
  new Counter({
    name: "sipedge_backend_state_transitions_total",
    help: "State changes of the backend since start",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) this.inc({ pool: b.pool, backend: b.name }, supervisor.table.transitions(b.name));
    },
  });
  // Calls per backend and per trunk: CPS is rate() of the _calls_total series.
  const perBackend = (pick: (c: { active: number; started: number }) => number) =>
    function (this: Gauge | Counter) {
      fill(
        this,
        backends().map((b) => [{ pool: b.pool, backend: b.name }, pick(backendCalls(stats, b.name))]),
      );
    };
  new Gauge({
    name: "sipedge_backend_active_calls",
    help: "Dialogs up on the backend (INVITE answered 2xx, no BYE yet)",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect: perBackend((c) => c.active),
  });
  new Counter({
    name: "sipedge_backend_calls_total",
    help: "Dialogs set up on the backend since start (rate() is its calls per second)",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect: perBackend((c) => c.started),
  });
  const perTrunk = (pick: (t: TrunkTotals) => number) =>
    function (this: Gauge | Counter) {
      fill(
        this,
        supervisor.config.trunks.map((t) => [{ trunk: t.name }, pick(trunkTotals(stats, t.name))]),
      );
    };
  const trunkMetric = (
    kind: typeof Gauge | typeof Counter,
    name: string,
    help: string,
    pick: (t: TrunkTotals) => number,
  ) => new kind({ name, help, labelNames: ["trunk"], registers: [registry], collect: perTrunk(pick) });
  trunkMetric(Counter, "sipedge_trunk_requests_total", "Requests the trunk sent", (t) => t.requests);
  trunkMetric(
    Counter,
    "sipedge_trunk_keepalives_total",
    "OPTIONS keep-alives the trunk sent to sipedge",
    (t) => t.keepalives,
  );
  trunkMetric(
    Counter,
    "sipedge_trunk_calls_total",
    "Initial INVITEs from the trunk (rate() is its calls per second)",
    (t) => t.calls,
  );
  trunkMetric(Gauge, "sipedge_trunk_active_calls", "Dialogs up from the trunk", (t) => t.activeCalls);
  trunkMetric(
    Gauge,
    "sipedge_trunk_connections",
    "Open TCP/TLS connections from the trunk (0 for a trunk on UDP, or one that is down)",
    (t) => t.connections,
  );
  trunkMetric(
    Gauge,
    "sipedge_trunk_last_seen_timestamp_seconds",
    "When the trunk last sent anything (0: never); time() minus this is its silence",
    (t) => t.lastSeen / 1000,
  );
  new Counter({
    name: "sipedge_worker_restarts_total",
    help: "IO and health threads restarted after an exit, a crash or a stall",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(supervisor.restarts);
    },
  });
  new Gauge({
    name: "sipedge_io_workers",
    help: "IO worker threads running",
    registers: [registry],
    collect() {
      this.set(supervisor.workers.filter((w) => w !== undefined).length);
    },
  });
  return {
    registry,
    async scrape() {
      stats = await supervisor.stats();
      return registry.metrics();
    },
  };
}
