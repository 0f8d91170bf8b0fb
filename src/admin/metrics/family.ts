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

/** What Prometheus is told of a family. */
interface Described<L extends string, N extends string> {
  readonly name: N;
  readonly help: string;
  readonly labels: readonly L[];
}

export interface CounterFamily<L extends string> extends Described<L, `sipedge_${string}_total`> {
  readonly type: "counter";
  /** Series with the same labels add up (one per worker or listener, say). */
  readonly read: (s: Snapshot) => Iterable<Sample<L>>;
}

export interface GaugeFamily<L extends string> extends Described<L, `sipedge_${string}`> {
  readonly type: "gauge";
  /** One series per label set: a later one replaces an earlier. */
  readonly read: (s: Snapshot) => Iterable<Sample<L>>;
}

export interface HistogramFamily<L extends string> extends Described<L, `sipedge_${string}`> {
  readonly type: "histogram";
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
