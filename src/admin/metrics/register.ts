import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { Supervisor } from "../../runtime/supervisor.ts";
import { CarriedCounters } from "./carry.ts";
import { CATALOGUE } from "./catalogue.ts";
import type { Family, HistogramFamily, Sample } from "./family.ts";
import { type Snapshot, takeSnapshot } from "./snapshot.ts";

/** A scrape's values for a counter (added once after its reset) or gauge (set). */
function fill(metric: Gauge | Counter, samples: Iterable<Sample<string>>): void {
  metric.reset();
  for (const [labels, n] of samples) {
    if (metric instanceof Gauge) metric.set(labels, n);
    else metric.inc(labels, n);
  }
}

/**
 * A Prometheus histogram built at scrape time from bucket counts kept
 * elsewhere (the workers' handshake counts, the health table's round trips):
 * prom-client's own Histogram can only observe.
 */
function histogramOf(family: HistogramFamily<string>, snapshot: () => Snapshot): Metric {
  const { name, help, bounds } = family;
  const collector = {
    name,
    help,
    async get() {
      const values: { value: number; metricName: string; labels: Record<string, string | number> }[] = [];
      for (const s of family.read(snapshot())) {
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
  return collector as unknown as Metric;
}

/**
 * The one loop from catalogue rows to collectors: each reads the scrape's
 * snapshot when the registry renders, a counter with what dead workers had
 * counted (`carried`) added.
 */
export function register(
  registry: Registry,
  families: readonly Family[],
  snapshot: () => Snapshot,
  carried: CarriedCounters,
): void {
  for (const family of families) {
    const { name, help, labels } = family;
    const common = { name, help, labelNames: labels, registers: [registry] };
    switch (family.type) {
      case "counter":
        new Counter({ ...common, collect: fillWith(() => carried.with(family, family.read(snapshot()))) });
        break;
      case "gauge":
        new Gauge({ ...common, collect: fillWith(() => family.read(snapshot())) });
        break;
      case "histogram":
        registry.registerMetric(histogramOf(family, snapshot));
        break;
    }
  }
}

/** A collector's callback: the scrape's series, filled in. */
function fillWith(read: () => Iterable<Sample<string>>) {
  return function (this: Gauge | Counter) {
    fill(this, read());
  };
}

/**
 * The Prometheus metrics (`sipedge_` names, declared in ./catalogue.ts).
 * Each scrape takes one snapshot of every worker's counters over the
 * channel, the shared health table and the kernel's counters; the data path
 * does no metrics work.
 *
 * And prom-client's default metrics (defaultMetrics below). No `sipedge_`
 * name can clash with theirs, and the registry refuses a name registered twice.
 */
export function metricsRegistry(supervisor: Supervisor): { registry: Registry; scrape: () => Promise<string> } {
  const registry = new Registry();
  defaultMetrics(registry);
  let snapshot: Snapshot | undefined;
  const carried = new CarriedCounters(CATALOGUE);
  supervisor.onRetired((last) => carried.retire(last));
  register(
    registry,
    CATALOGUE,
    () => {
      if (snapshot === undefined) throw new Error("metrics rendered outside a scrape");
      return snapshot;
    },
    carried,
  );
  return {
    registry,
    async scrape() {
      snapshot = await takeSnapshot(supervisor);
      carried.settle(snapshot);
      return registry.metrics();
    },
  };
}

/**
 * prom-client's gauges named like counters, which `promtool check metrics`
 * flags: nodejs_active_{handles,requests,resources}_total. Their figures
 * stay, by type, under the names without the suffix.
 */
const NAMED_LIKE_COUNTERS = /^nodejs_active_[a-z]+_total$/;

/**
 * prom-client's figures from the main thread's loop-delay histogram, which
 * count its sampling interval in (see defaultMetrics). The main thread's lag
 * stays as nodejs_eventloop_lag_seconds (timed at each scrape), the IO
 * threads' as sipedge_event_loop_lag_seconds.
 */
const LOOP_DELAY_GAUGES = /^nodejs_eventloop_lag_(min|max|mean|stddev|p50|p90|p99)_seconds$/;

/**
 * prom-client's default metrics, for the process as a whole:
 * `process_resident_memory_bytes` (the figure limits.memory is a promise
 * about), CPU, file descriptors against their limit, the start time. Their
 * `nodejs_*` ones (heap, event loop, GC) describe the main thread only: the
 * IO threads' own are sipedge_heap_bytes and sipedge_event_loop_lag_seconds.
 * Made in a registry of their own, then moved over, to leave out the misnamed.
 */
function defaultMetrics(registry: Registry): void {
  const defaults = new Registry();
  // The main thread's loop-delay histogram samples every 100 ms, not prom-client's 10: each sample
  // wakes the thread, 100 times a second, for a loop that serves the admin API
  // (test/integration/idle.test.ts). Its gauges would then read 0.1 s on an idle thread: left out.
  collectDefaultMetrics({ register: defaults, eventLoopMonitoringPrecision: 100 });
  for (const { name } of defaults.getMetricsAsArray()) {
    const metric = defaults.getSingleMetric(name);
    if (metric !== undefined && !NAMED_LIKE_COUNTERS.test(name) && !LOOP_DELAY_GAUGES.test(name)) {
      registry.registerMetric(metric);
    }
  }
}
