import type { Snapshot } from "./snapshot.ts";

/** A series' label values, one per label name of its family. */
export type Labels<L extends string> = Readonly<Record<L, string>>;

/** One series of a counter or gauge. */
export type Sample<L extends string> = readonly [labels: Labels<L>, value: number];

/** One labelled series of a histogram: counts per bucket (not cumulative; the last is above every bound). */
export interface HistogramSeries<L extends string> {
  readonly labels: Labels<L>;
  readonly buckets: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/**
 * One metric family, a row of the catalogue: what Prometheus is told about it
 * (name, help, type, label names) and how a scrape's snapshot gives its series.
 * Names follow Prometheus' rules: the sipedge_ prefix, base units (seconds,
 * bytes), counters and only counters ending in _total.
 */
export type Family = CounterFamily<string> | GaugeFamily<string> | HistogramFamily<string>;

export interface CounterFamily<L extends string> {
  readonly type: "counter";
  readonly name: `sipedge_${string}_total`;
  readonly help: string;
  readonly labels: readonly L[];
  /** Series with the same labels add up (one per worker or listener, say). */
  readonly read: (s: Snapshot) => Iterable<Sample<L>>;
}

export interface GaugeFamily<L extends string> {
  readonly type: "gauge";
  readonly name: `sipedge_${string}`;
  readonly help: string;
  readonly labels: readonly L[];
  /** One series per label set: a later one replaces an earlier. */
  readonly read: (s: Snapshot) => Iterable<Sample<L>>;
}

export interface HistogramFamily<L extends string> {
  readonly type: "histogram";
  readonly name: `sipedge_${string}`;
  readonly help: string;
  readonly labels: readonly L[];
  /** Upper bounds of the buckets (seconds); a series has one count more, above them all. */
  readonly bounds: readonly number[];
  readonly read: (s: Snapshot) => Iterable<HistogramSeries<L>>;
}

/** A counter row; its label names and its series' labels are checked against each other. */
export function counter<const L extends string>(row: Omit<CounterFamily<L>, "type">): CounterFamily<L> {
  return { type: "counter", ...row };
}

export function gauge<const L extends string>(row: Omit<GaugeFamily<L>, "type">): GaugeFamily<L> {
  return { type: "gauge", ...row };
}

export function histogram<const L extends string>(row: Omit<HistogramFamily<L>, "type">): HistogramFamily<L> {
  return { type: "histogram", ...row };
}
