import { describe, expect, it } from "vitest";
import { CATALOGUE } from "../../../src/admin/metrics/catalogue.ts";
import { metricsRegistry } from "../../../src/admin/metrics/register.ts";
import { HealthTable } from "../../../src/health/state.ts";
import type { WorkerStats } from "../../../src/runtime/channel.ts";
import type { RetiredListener, Supervisor } from "../../../src/runtime/supervisor.ts";
import { NO_TLS_DATES } from "../../../src/runtime/tls-dates.ts";
import { sampleWorkerStats } from "../../helpers/worker-stats.ts";

const COUNTERS = new Set<string>(CATALOGUE.filter((f) => f.type === "counter").map((f) => f.name));
const GAUGES = new Set<string>(CATALOGUE.filter((f) => f.type === "gauge").map((f) => f.name));

/** Every series of the text by its name and labels, as written. */
function series(text: string, keep: (name: string) => boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^([a-z_]+)(\{[^}]*\})? (\S+)$/gm))
    if (keep(m[1] as string)) out.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  return out;
}

/** A registry over a supervisor whose workers report `live` at each scrape and which tells it of deaths. */
function scraping() {
  let live: WorkerStats[] = [];
  let retired: RetiredListener = () => {};
  const table = new HealthTable(["b0"]);
  const supervisor = {
    listeners: [],
    workers: [{}, {}],
    restarts: 0,
    respawnFailures: 0,
    timeouts: { stats: 0, reload: 0 },
    tlsDates: NO_TLS_DATES,
    table,
    config: { backends: [{ name: "main", members: [{ name: "b0" }] }], trunks: [{ name: "carrier" }] },
    stats: async () => live,
    onRetired: (listener: RetiredListener) => {
      retired = listener;
    },
  };
  const { scrape } = metricsRegistry(supervisor as unknown as Supervisor);
  return {
    scrape,
    report: (stats: WorkerStats[]) => {
      live = stats;
    },
    die: (last: WorkerStats) => retired(last),
    restarted: () => {
      supervisor.restarts++;
    },
  };
}

/** Worker `index` as a replacement reports it soon after its start: worker 0's small figures, under its own index. */
function replacement(index: number): WorkerStats {
  return { ...sampleWorkerStats(0), index };
}

describe("counters carried across a worker restart", () => {
  it("add the dead worker's last figures to its replacement's, series by series", async () => {
    const sipedge = scraping();
    const [w0, w1] = [sampleWorkerStats(0), sampleWorkerStats(1)];
    sipedge.report([w0, w1]);
    const before = series(await sipedge.scrape(), (n) => COUNTERS.has(n));
    sipedge.die(w1);
    sipedge.restarted();
    sipedge.report([w0, replacement(1)]);
    const text = await sipedge.scrape();
    const after = series(text, (n) => COUNTERS.has(n));

    // Worker 0 100, worker 1 200 before; then 100 + the replacement's 100 + the dead worker's 200.
    expect(before.get("sipedge_sip_messages_received_total")).toBe(300);
    expect(after.get("sipedge_sip_messages_received_total")).toBe(400);
    // Only the dead worker had counted internal errors "backend": the series stays.
    expect(after.get('sipedge_internal_errors_total{where="backend"}')).toBe(1);
    expect(after.get('sipedge_internal_errors_total{where="client"}')).toBe(2);
    // Per backend and per trunk, from the workers' dialogs and trunk figures.
    expect(after.get('sipedge_trunk_requests_total{trunk="carrier"}')).toBe(20 + 20 + 40);
    // What is not the workers' is not carried: the kernel's, the supervisor's own.
    expect(after.get("sipedge_worker_restarts_total")).toBe(1);
    // Every counter series of the first scrape is there, and not lower.
    const fell = [...before].filter(([key, value]) => (after.get(key) ?? -1) < value);
    expect(fell).toEqual([]);
    // A gauge is what the live workers hold now: as a sipedge that never lost a worker shows them.
    const unbroken = scraping();
    unbroken.report([w0, replacement(1)]);
    const gauges = (t: string) => series(t, (n) => GAUGES.has(n));
    expect(gauges(text)).toEqual(gauges(await unbroken.scrape()));
  });

  it("add up over several deaths of the same worker, each folded once", async () => {
    const sipedge = scraping();
    const w0 = sampleWorkerStats(0);
    sipedge.report([w0, sampleWorkerStats(1)]);
    await sipedge.scrape();
    sipedge.die(sampleWorkerStats(1));
    sipedge.report([w0, replacement(1)]);
    await sipedge.scrape();
    sipedge.die(replacement(1));
    sipedge.report([w0, replacement(1)]);
    const received = () => sipedge.scrape().then((t) => series(t, (n) => n === "sipedge_sip_messages_received_total"));
    // 100 live + 100 replacement + 200 first death + 100 second.
    expect((await received()).get("sipedge_sip_messages_received_total")).toBe(500);
    expect((await received()).get("sipedge_sip_messages_received_total")).toBe(500);
  });
});
