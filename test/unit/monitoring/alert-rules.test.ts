import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CATALOGUE } from "../../../src/admin/metrics/catalogue.ts";
import {
  alertRules,
  metricNames,
  NOT_FROM_SIPEDGE,
  RULE_TESTS,
  RULES,
  RUNBOOK,
  seriesNames,
} from "../../helpers/monitoring.ts";

/** promtool's exit status and what it printed. */
function promtool(...args: string[]): { status: number | null; out: string } {
  const run = spawnSync("promtool", args, { encoding: "utf8" });
  if (run.error !== undefined) throw run.error;
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

const RUNBOOK_ANCHORS = new Set(
  [...readFileSync(RUNBOOK, "utf8").matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] as string)),
);

describe("alert rules (appliance/monitoring/sipedge-alerts.yml)", () => {
  it("pass promtool check rules", () => {
    const { status, out } = promtool("check", "rules", RULES);
    expect(out).toContain("SUCCESS");
    expect(status).toBe(0);
  });

  it("pass their promtool unit tests: each fires on its series and stays silent on healthy ones", () => {
    const { status, out } = promtool("test", "rules", RULE_TESTS);
    expect(out).toContain("SUCCESS");
    expect(status).toBe(0);
  });

  it("each have a unit test that sees them fire", () => {
    const tests = parse(readFileSync(RULE_TESTS, "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    const fired = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname),
      ),
    );
    expect(
      alertRules()
        .filter((r) => !fired.has(r.alert))
        .map((r) => r.alert),
    ).toEqual([]);
  });

  it("each carry a severity, a summary, a description and a runbook_url to a section of docs/runbook.md", () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThanOrEqual(16);
    for (const r of rules) {
      expect(["critical", "warning", "info"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      const url = /^docs\/runbook\.md#(.+)$/.exec(r.annotations?.runbook_url ?? "");
      expect(url, `${r.alert}: runbook_url ${r.annotations?.runbook_url}`).not.toBeNull();
      expect(RUNBOOK_ANCHORS.has(url?.[1] ?? ""), `${r.alert}: no section #${url?.[1]} in docs/runbook.md`).toBe(true);
    }
  });

  it("cover a scrape target down, certificate expiry, a client CRL due, TLS failures, loop lag, restarts, respawn failures, the channels between threads, backends, trunks and overload", () => {
    const named = new Set(alertRules().flatMap((r) => metricNames(r.expr)));
    for (const metric of [
      "up",
      "sipedge_tls_certificate_expiry_timestamp_seconds",
      "sipedge_tls_crl_next_update_timestamp_seconds",
      "sipedge_tls_handshakes_total",
      "sipedge_event_loop_lag_seconds",
      "sipedge_worker_restarts_total",
      "sipedge_worker_respawn_failures_total",
      "sipedge_channel_timeouts_total",
      "sipedge_handoffs_total",
      "sipedge_backend_state",
      "sipedge_trunk_last_seen_timestamp_seconds",
      "sipedge_overload_rejected_total",
      "sipedge_connections_refused_total",
    ]) {
      expect(named, metric).toContain(metric);
    }
  });

  it("name only metrics the catalogue declares (or up)", () => {
    const known = new Set<string>([...CATALOGUE.flatMap(seriesNames), ...NOT_FROM_SIPEDGE]);
    const unknown = alertRules().flatMap((r) => metricNames(r.expr).filter((n) => !known.has(n)));
    expect(unknown).toEqual([]);
  });
});
