/** The shipped alert rules and Grafana dashboard (appliance/monitoring/), read as their tests need them. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { Family } from "../../src/admin/metrics/family.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const RULES = join(ROOT, "appliance", "monitoring", "sipedge-alerts.yml");
export const DASHBOARD = join(ROOT, "appliance", "monitoring", "grafana-dashboard.json");
export const RUNBOOK = join(ROOT, "docs", "runbook.md");
/** `promtool test rules` input: kept under test/, not appliance/, which is what the image and the role install. */
export const RULE_TESTS = join(ROOT, "test", "fixtures", "monitoring", "alerts.test.yml");

/** Metrics the rules and the dashboard may name though sipedge does not export them: Prometheus' own `up`. */
export const NOT_FROM_SIPEDGE = ["up"] as const;
/** prom-client's default process metrics that the dashboard shows: sipedge exports them beside its catalogue (admin/metrics/register.ts). */
export const PROCESS_METRICS = [
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_open_fds",
  "process_max_fds",
] as const;

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Target {
  readonly expr: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
}

export interface Dashboard {
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { name: string; type: string; query?: string }[] };
}

export function alertRules(): AlertRule[] {
  const rules = parse(readFileSync(RULES, "utf8")) as { groups: { rules: AlertRule[] }[] };
  return rules.groups.flatMap((g) => g.rules);
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
}

/** Panels that query (rows only group them). */
export function queryPanels(d: Dashboard): Panel[] {
  return d.panels.filter((p) => p.type !== "row");
}

/** Every PromQL expression of the dashboard: its panels' and its template variables' queries. */
export function dashboardExprs(d: Dashboard): string[] {
  return [
    ...queryPanels(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...d.templating.list.flatMap((t) => (t.type === "query" && t.query !== undefined ? [t.query] : [])),
  ];
}

/**
 * The metric names an expression selects: every sipedge_ name, and any other
 * name written as a selector with matchers (`up{job="…"}`). Function names
 * are followed by "(" and label names by "=", so neither is taken.
 */
export function metricNames(expr: string): string[] {
  const sipedge = [...expr.matchAll(/\bsipedge_[a-z0-9_]+/g)].map((m) => m[0]);
  const selectors = [...expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1] as string);
  return [...new Set([...sipedge, ...selectors])];
}

/** The series names a family exports: its name, and a histogram's _bucket, _sum and _count. */
export function seriesNames(f: Family): string[] {
  return f.type === "histogram" ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name];
}
