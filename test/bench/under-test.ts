/** sipedge as the benchmarks run it: a UDP listener in front of sipp UAS backends, its admin API for its own counters. */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metricByLabel, metricSum, metricValues, scrape } from "../helpers/metrics.ts";
import { freePort, type Processes, sleep } from "../helpers/net.ts";

export interface UnderTest {
  readonly child: ChildProcess;
  readonly port: number;
  readonly admin: number;
}

/** `more`: extra top-level YAML lines (limits, …). */
export async function startSipedge(
  processes: Processes,
  backends: readonly number[],
  threads: number,
  more: readonly string[] = [],
): Promise<UnderTest> {
  const port = await freePort();
  const admin = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "sipedge-bench-"));
  const config = join(dir, "sipedge.yaml");
  writeFileSync(
    config,
    [
      `io: { threads: ${threads} }`,
      "listen:",
      `  - { transport: udp, address: 127.0.0.1, port: ${port} }`,
      "backends:",
      "  - name: bench",
      "    algorithm: hash-callid",
      "    members:",
      ...backends.map((p, i) => `      - { name: uas${i}, uri: "sip:127.0.0.1:${p}" }`),
      `admin: { listen: "127.0.0.1:${admin}" }`,
      ...more,
    ].join("\n"),
  );
  const child = processes.spawn(process.execPath, [
    join(import.meta.dirname, "..", "..", "src", "cli.ts"),
    "--config",
    config,
  ]);
  await sleep(1500);
  return { child, port, admin };
}

export interface Metrics {
  /** A metric summed over all its label sets. */
  sum(name: string): number;
  /** The lowest value of a metric. */
  min(name: string): number;
  /** A metric summed by the value of one label. */
  by(name: string, label: string): Map<string, number>;
}

/** sipedge's /metrics, read once. */
export async function metrics(admin: number): Promise<Metrics> {
  const text = await scrape(admin);
  return {
    sum: (name) => metricSum(text, name),
    min: (name) => Math.min(...metricValues(text, name)),
    by: (name, label) => metricByLabel(text, name, label),
  };
}
