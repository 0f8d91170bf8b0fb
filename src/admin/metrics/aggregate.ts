import type { WorkerStats } from "../../runtime/channel.ts";
import type { HandshakeStats } from "../../transport/handshakes.ts";
import type { HistogramSeries, Labels, Sample } from "./family.ts";
import type { Snapshot } from "./snapshot.ts";

/** Sums one counter over every worker's snapshot. */
export function sum(workers: readonly WorkerStats[], pick: (w: WorkerStats) => number): number {
  return workers.reduce((n, w) => n + pick(w), 0);
}

/** Merges per-worker keyed counters ("INVITE udp" → n). */
export function merge(
  workers: readonly WorkerStats[],
  pick: (w: WorkerStats) => Readonly<Record<string, number>>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const w of workers) for (const [k, v] of Object.entries(pick(w))) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/** The one series of an unlabelled family: `pick` summed over the workers. */
export function total(pick: (w: WorkerStats) => number): (s: Snapshot) => Sample<never>[] {
  return (s) => [[{}, sum(s.workers, pick)]];
}

/** One series per key of the workers' keyed counters, summed over the workers; the key is label `label`. */
export function byKey<const L extends string>(
  label: L,
  pick: (w: WorkerStats) => Readonly<Record<string, number>>,
): (s: Snapshot) => Sample<L>[] {
  return (s) => [...merge(s.workers, pick)].map(([key, n]) => [{ [label]: key } as Labels<L>, n]);
}

/** One series per IO worker. */
export function perWorker(pick: (w: WorkerStats) => number): (s: Snapshot) => Sample<"worker">[] {
  return (s) => s.workers.map((w) => [{ worker: String(w.index) }, pick(w)]);
}

/** One series per IO thread and figure (`stat`). */
export function perThread(
  pick: (w: WorkerStats) => Readonly<Record<string, number>>,
): (s: Snapshot) => Sample<"thread" | "stat">[] {
  return (s) =>
    s.workers.flatMap((w) =>
      Object.entries(pick(w)).map(([stat, value]) => [{ thread: `sipedge-io-${w.index}`, stat }, value] as const),
    );
}

/** Every client-facing TLS listener's handshake figures, over all workers. */
export function handshakes(workers: readonly WorkerStats[]): WorkerStats["clients"]["handshakes"] {
  return workers.flatMap((w) => w.clients.handshakes);
}

/** One listener's failed handshakes, whatever the reason. */
export function failedHandshakes(h: HandshakeStats): number {
  return Object.values(h.failures).reduce((n, f) => n + f, 0);
}

/** TLS handshake durations by key type, summed over the workers. */
export function handshakeSeries(workers: readonly WorkerStats[]): HistogramSeries<"key_type">[] {
  const byKeyType = new Map<string, { buckets: number[]; sum: number; count: number }>();
  for (const h of handshakes(workers)) {
    const acc = byKeyType.get(h.keyType) ?? { buckets: new Array(h.buckets.length).fill(0), sum: 0, count: 0 };
    h.buckets.forEach((n, i) => {
      acc.buckets[i] = (acc.buckets[i] ?? 0) + n;
    });
    acc.sum += h.sumSeconds;
    acc.count += h.ok;
    byKeyType.set(h.keyType, acc);
  }
  return [...byKeyType].map(([keyType, acc]) => ({ labels: { key_type: keyType }, ...acc }));
}
