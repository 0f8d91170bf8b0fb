/** Reading sipedge's Prometheus text (its admin API's /metrics). */
import { spawnSync } from "node:child_process";

/** The /metrics text of the sipedge whose admin API is on `admin`. */
export async function scrape(admin: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
}

/** Every value of metric `name` in the text, one per label set. */
export function metricValues(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].map((m) => Number(m[1]));
}

/** The sum of metric `name` over its label sets. */
export function metricSum(text: string, name: string): number {
  return metricValues(text, name).reduce((a, b) => a + b, 0);
}

/** Metric `name` summed by the value of its label `label` (e.g. refusals by reason). */
export function metricByLabel(text: string, name: string, label: string): Map<string, number> {
  const by = new Map<string, number>();
  const labelValue = new RegExp(`(?:^|,)${label}="([^"]*)"`);
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm"))) {
    const key = labelValue.exec(m[1] ?? "")?.[1] ?? "";
    by.set(key, (by.get(key) ?? 0) + Number(m[2]));
  }
  return by;
}

/** promtool's complaints about `text`, or undefined without promtool. */
export function promtoolCheck(text: string): string[] | undefined {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (run.error !== undefined) return undefined;
  return `${run.stdout}${run.stderr}`.split("\n").filter((l) => l.trim() !== "");
}
