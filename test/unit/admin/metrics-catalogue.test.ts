import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CarriedCounters } from "../../../src/admin/metrics/carry.ts";
import { CATALOGUE } from "../../../src/admin/metrics/catalogue.ts";
import type { Family } from "../../../src/admin/metrics/family.ts";
import { metricsRegistry, register } from "../../../src/admin/metrics/register.ts";
import type { Snapshot } from "../../../src/admin/metrics/snapshot.ts";
import { BackendState, HealthTable } from "../../../src/health/state.ts";
import { buildInfo } from "../../../src/runtime/build-info.ts";
import type { Supervisor } from "../../../src/runtime/supervisor.ts";
import { promtoolCheck } from "../../helpers/metrics.ts";
import { sampleWorkerStats } from "../../helpers/worker-stats.ts";

/** A scrape's snapshot in which every family has at least one series. */
const SAMPLE: Snapshot = {
  workers: [sampleWorkerStats(0), sampleWorkerStats(1)],
  backends: [
    {
      pool: "main",
      name: "b0",
      state: BackendState.Up,
      rttMicros: 1500,
      rtt: { buckets: [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0], count: 2, sumSeconds: 0.0315 },
      transitions: 0,
      calls: { active: 5, started: 90 },
    },
    {
      pool: "spare",
      name: "b1",
      state: BackendState.Draining,
      rttMicros: undefined,
      rtt: undefined,
      transitions: 2,
      calls: { active: 0, started: 0 },
    },
  ],
  trunks: [
    {
      name: "carrier",
      requests: 60,
      keepalives: 12,
      calls: 15,
      activeCalls: 3,
      connections: 2,
      lastSeen: 1_700_000_000_500,
    },
  ],
  listenQueues: [{ port: 5061, queued: 4 }],
  kernelTcp: new Map([
    ["ListenOverflows", 7],
    ["RetransSegs", 1234],
  ]),
  restarts: 1,
  respawnFailures: 1,
  channelTimeouts: { stats: 2, reload: 1 },
  ioWorkers: 2,
  build: { version: "1.2.3", node: "v24.0.0", openssl: "3.5.0" },
  tlsDates: {
    certificates: [
      { listener: "127.0.0.1:5061", name: "edge.example.com", keyType: "ec", expires: 1_800_000_000 },
      { listener: "backend", name: "edge.example.com", keyType: "ec", expires: 1_800_000_000 },
    ],
    crls: [{ listener: "127.0.0.1:5061", nextUpdate: 1_790_000_000 }],
  },
};

async function render(families: readonly Family[], snapshot: Snapshot = SAMPLE): Promise<string> {
  const registry = new Registry();
  register(registry, families, () => snapshot, new CarriedCounters(families));
  return registry.metrics();
}

/** The series lines of the text: name, label names, value. */
function seriesOf(text: string): { name: string; labels: string[]; value: number }[] {
  return [...text.matchAll(/^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/gm)].map((m) => ({
    name: m[1] as string,
    labels: [...(m[2] ?? "").matchAll(/([a-z_]+)="/g)].map((l) => l[1] as string),
    value: Number(m[3]),
  }));
}

/** Which of `lines` the text lacks (whole lines). */
function missing(text: string, lines: readonly string[]): string[] {
  const have = new Set(text.split("\n"));
  return lines.filter((l) => !have.has(l));
}

/** Name parts of units that are not Prometheus' base units (seconds, bytes, ratios). */
const NOT_BASE_UNITS =
  /_(milli|micro|nano)(seconds?|secs?)(_|$)|_(ms|us|ns|millis|percent|minutes|hours|days|kb|kib|mb|mib|kilobytes|megabytes|bits)(_|$)/;

/** The names a family's series go by: a histogram's three. */
function seriesNames(f: Family): string[] {
  return f.type === "histogram" ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name];
}

describe("the metric catalogue", () => {
  it("renders every row from a snapshot, with HELP, TYPE and at least one series", async () => {
    const text = await render(CATALOGUE);
    const series = seriesOf(text);
    for (const f of CATALOGUE) {
      expect(text).toContain(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`);
      expect(
        series.some((s) => s.name === seriesNames(f)[0]),
        f.name,
      ).toBe(true);
    }
  });

  it("gives every series exactly its family's label names", async () => {
    const series = seriesOf(await render(CATALOGUE));
    for (const f of CATALOGUE) {
      for (const name of seriesNames(f)) {
        const want = name.endsWith("_bucket") ? ["le", ...f.labels] : [...f.labels];
        for (const s of series.filter((x) => x.name === name)) expect(s.labels.sort(), name).toEqual(want.sort());
      }
    }
  });

  it("has unique names, a histogram's _bucket, _sum and _count included", () => {
    const names = CATALOGUE.flatMap(seriesNames);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it("follows Prometheus naming: sipedge_ prefix, snake case, counters and only counters in _total, base units", () => {
    for (const f of CATALOGUE) {
      expect(f.name, f.name).toMatch(/^sipedge_[a-z][a-z0-9_]*[a-z0-9]$/);
      expect(f.name.endsWith("_total"), f.name).toBe(f.type === "counter");
      expect(f.name, f.name).not.toMatch(NOT_BASE_UNITS);
      for (const label of f.labels) expect(label, f.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(f.labels, f.name).not.toContain("le");
      expect(f.help, f.name).not.toBe("");
    }
  });

  it.skipIf(promtoolCheck("") === undefined)("is clean by promtool check metrics", async () => {
    expect(promtoolCheck(await render(CATALOGUE))).toEqual([]);
  });

  it("sums the workers' figures and reads the snapshot's own", async () => {
    const text = await render(CATALOGUE);
    expect(
      missing(text, [
        "sipedge_sip_messages_received_total 300",
        'sipedge_sip_requests_total{method="INVITE",transport="udp"} 30',
        'sipedge_connections_refused_total{reason="per_ip"} 6',
        'sipedge_tls_handshakes_total{key_type="ec",result="ok"} 15',
        'sipedge_tls_handshakes_by_version_total{key_type="ec",version="TLSv1.3"} 10',
        'sipedge_tls_handshake_seconds_count{key_type="ec"} 15',
        'sipedge_tls_handshakes_by_session_total{listener="127.0.0.1:5061",key_type="ec",session="full"} 10',
        'sipedge_tls_handshakes_by_session_total{listener="127.0.0.1:5061",key_type="ec",session="resumed"} 5',
        'sipedge_tls_handshake_failures_total{listener="127.0.0.1:5061",key_type="ec",reason="unknown_ca"} 5',
        'sipedge_tls_handshakes_total{key_type="ec",result="failed"} 5',
        'sipedge_backend_state{pool="spare",backend="b1",state="draining"} 1',
        'sipedge_backend_probe_duration_seconds_bucket{le="+Inf",pool="main",backend="b0"} 2',
        'sipedge_trunk_last_seen_timestamp_seconds{trunk="carrier"} 1700000000.5',
        'sipedge_kernel_tcp_total{counter="RetransSegs"} 1234',
        'sipedge_tls_certificate_expiry_timestamp_seconds{listener="127.0.0.1:5061",name="edge.example.com",key_type="ec"} 1800000000',
        'sipedge_tls_crl_next_update_timestamp_seconds{listener="127.0.0.1:5061"} 1790000000',
      ]),
    ).toEqual([]);
    // No ration on worker 0, no last round trip for b1: no series, rather than a 0 that means something else.
    expect(text).not.toContain('sipedge_cpu_ration_per_second{worker="0"}');
    expect(text).not.toContain('sipedge_backend_probe_rtt_seconds{pool="spare"');
  });
});

describe("a scrape", () => {
  it("reads the workers, the health table, the config's backends and trunks, and TCP/TLS listeners only", async () => {
    const table = new HealthTable(["b0", "b1"]);
    table.setState("b1", BackendState.Down);
    table.setRtt("b0", 2000);
    const supervisor = {
      listeners: [
        { transport: "tls", port: 1 },
        { transport: "udp", port: 2 },
      ],
      workers: [{}, undefined, {}],
      restarts: 3,
      respawnFailures: 1,
      timeouts: { stats: 2, reload: 0 },
      tlsDates: {
        certificates: [{ listener: "127.0.0.1:1", name: "edge.test", keyType: "ec", expires: 1_800_000_000 }],
        crls: [{ listener: "127.0.0.1:1", nextUpdate: 1_790_000_000 }],
      },
      table,
      config: {
        backends: [{ name: "main", members: [{ name: "b0" }, { name: "b1" }] }],
        trunks: [{ name: "carrier" }, { name: "quiet" }],
      },
      stats: async () => [sampleWorkerStats(0), sampleWorkerStats(1)],
      onRetired: () => {},
    } as unknown as Supervisor;
    const { registry, scrape } = metricsRegistry(supervisor);
    const text = await scrape();
    expect(
      missing(text, [
        'sipedge_backend_up{pool="main",backend="b1"} 0',
        'sipedge_backend_state_transitions_total{pool="main",backend="b1"} 1',
        'sipedge_backend_probe_rtt_seconds{pool="main",backend="b0"} 0.002',
        'sipedge_backend_calls_total{pool="main",backend="b0"} 90',
        'sipedge_trunk_calls_total{trunk="carrier"} 15',
        'sipedge_trunk_calls_total{trunk="quiet"} 0',
        'sipedge_listen_queue{port="1"} 0',
        "sipedge_worker_restarts_total 3",
        "sipedge_worker_respawn_failures_total 1",
        'sipedge_channel_timeouts_total{request="stats"} 2',
        "sipedge_io_workers 2",
        'sipedge_tls_certificate_expiry_timestamp_seconds{listener="127.0.0.1:1",name="edge.test",key_type="ec"} 1800000000',
        'sipedge_tls_crl_next_update_timestamp_seconds{listener="127.0.0.1:1"} 1790000000',
        `sipedge_build_info{version="${buildInfo().version}",node="${process.version}",openssl="${process.versions.openssl}"} 1`,
      ]),
    ).toEqual([]);
    expect(text).not.toContain('sipedge_listen_queue{port="2"}');
    // prom-client's default metrics beside the catalogue's, and no name of one among the other's.
    for (const name of [
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "process_open_fds",
      "process_start_time_seconds",
    ]) {
      expect(text).toMatch(new RegExp(`^${name} [0-9.e+]+$`, "m"));
    }
    const names = registry.getMetricsAsArray().map((m) => m.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(names.filter((n) => !/^(sipedge|process|nodejs)_/.test(n))).toEqual([]);
    // Gauges named like counters (promtool flags them) are left out; the same figures by type stay.
    expect(names.filter((n) => n.startsWith("nodejs_active_")).sort()).toEqual([
      "nodejs_active_handles",
      "nodejs_active_requests",
      "nodejs_active_resources",
    ]);
  });
});
