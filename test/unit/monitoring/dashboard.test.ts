import { describe, expect, it } from "vitest";
import { CATALOGUE } from "../../../src/admin/metrics/catalogue.ts";
import {
  alertRules,
  dashboard,
  dashboardExprs,
  metricNames,
  NOT_FROM_SIPEDGE,
  type Panel,
  PROCESS_METRICS,
  queryPanels,
  seriesNames,
} from "../../helpers/monitoring.ts";

const DASH = dashboard();
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DATASOURCE = "${datasource}";

/** The panel titled `title` and the metrics its queries name. */
function panelMetrics(title: string): Set<string> {
  const panel = queryPanels(DASH).find((p) => p.title === title);
  expect(panel, `no panel "${title}"`).toBeDefined();
  return new Set((panel?.targets ?? []).flatMap((t) => metricNames(t.expr)));
}

/** Whether two panels' grid rectangles share a cell. */
function overlap(a: Panel["gridPos"], b: Panel["gridPos"]): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

describe("Grafana dashboard (appliance/monitoring/grafana-dashboard.json)", () => {
  it("has a Prometheus datasource variable, and every panel and query uses it", () => {
    expect(DASH.templating.list).toContainEqual(
      expect.objectContaining({ name: "datasource", type: "datasource", query: "prometheus" }),
    );
    const panels = queryPanels(DASH);
    expect(panels.length).toBeGreaterThan(30);
    const elsewhere = panels.flatMap((p) =>
      [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]
        .filter((d) => d?.uid !== DATASOURCE)
        .map(() => p.title),
    );
    expect(elsewhere).toEqual([]);
  });

  it("takes every rate() and increase() over $__rate_interval: no window written in", () => {
    const windows = dashboardExprs(DASH).flatMap((e) => [...e.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]));
    expect(windows.length).toBeGreaterThan(20);
    expect(windows.filter((w) => w !== "$__rate_interval")).toEqual([]);
  });

  it("names only metrics the catalogue declares, process metrics ", () => {
    const known = new Set<string>([...CATALOGUE.flatMap(seriesNames), ...NOT_FROM_SIPEDGE, ...PROCESS_METRICS]);
    expect(dashboardExprs(DASH).flatMap((e) => metricNames(e).filter((n) => !known.has(n)))).toEqual([]);
  });

  it("shows every metric family sipedge exports on some panel", () => {
    const shown = new Set(dashboardExprs(DASH).flatMap(metricNames));
    expect(CATALOGUE.filter((f) => !seriesNames(f).some((n) => shown.has(n))).map((f) => f.name)).toEqual([]);
  });

  it("has panels for TLS, registrations, overload and each worker", () => {
    expect(panelMetrics("TLS handshakes by result")).toContain("sipedge_tls_handshakes_total");
    expect(panelMetrics("TLS handshake failures (share of handshakes)")).toContain("sipedge_tls_handshakes_total");
    expect(panelMetrics("TLS handshake duration (p50, p99)")).toContain("sipedge_tls_handshake_seconds_bucket");
    expect(panelMetrics("TLS handshakes in progress per worker")).toContain("sipedge_tls_handshakes_in_progress");
    expect([...panelMetrics("Certificate expiry and client CRL renewal (days left)")]).toEqual([
      "sipedge_tls_certificate_expiry_timestamp_seconds",
      "sipedge_tls_crl_next_update_timestamp_seconds",
    ]);
    expect([...panelMetrics("Endpoints registered, and client flows by transport")]).toEqual([
      "sipedge_endpoints",
      "sipedge_flows",
    ]);
    expect(panelMetrics("Re-binds, 430 Flow Failed, hand-offs")).toContain("sipedge_endpoint_rebinds_total");
    expect(panelMetrics("Refused under overload (503), slow peers closed")).toContain(
      "sipedge_overload_rejected_total",
    );
    expect(panelMetrics("Connections refused by reason")).toContain("sipedge_connections_refused_total");
    expect(panelMetrics("CPU ration per worker (present while its thread is saturated)")).toContain(
      "sipedge_cpu_ration_per_second",
    );
    expect(panelMetrics("Event-loop lag per IO thread (p99, max)")).toContain("sipedge_event_loop_lag_seconds");
    expect(panelMetrics("Heap per IO thread (used, limit)")).toContain("sipedge_heap_bytes");
    expect(panelMetrics("Connections per worker")).toContain("sipedge_connections");
  });

  it("every alert's metric is on the dashboard too, to look at when it fires", () => {
    const shown = new Set(dashboardExprs(DASH).flatMap(metricNames));
    const unseen = alertRules()
      .flatMap((r) => metricNames(r.expr))
      .filter((n) => !shown.has(n) && !(NOT_FROM_SIPEDGE as readonly string[]).includes(n));
    expect(unseen).toEqual([]);
  });

  it("lays its panels out without overlap, each with an id of its own", () => {
    const ids = DASH.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const clashes = DASH.panels.flatMap((a, i) =>
      DASH.panels.slice(i + 1).flatMap((b) => (overlap(a.gridPos, b.gridPos) ? [`${a.title} / ${b.title}`] : [])),
    );
    expect(clashes).toEqual([]);
  });
});
