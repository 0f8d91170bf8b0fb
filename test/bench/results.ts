/** Where a benchmark's result goes: bench-results/NAME-<time>.json, the latest also as docs/perf/NAME.json. */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");

/** Writes `result` as JSON for a run started at `started`; returns the bench-results file. */
export function saveResult(name: string, started: Date, result: unknown): string {
  const dir = join(ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  // The results directory ignores itself: runs stay local, docs/perf/ has the latest.
  if (!existsSync(join(dir, ".gitignore"))) writeFileSync(join(dir, ".gitignore"), "*\n");
  const file = join(dir, `${name}-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  mkdirSync(join(ROOT, "docs", "perf"), { recursive: true });
  copyFileSync(file, join(ROOT, "docs", "perf", `${name}.json`));
  return file;
}
