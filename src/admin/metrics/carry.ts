import type { WorkerStats } from "../../runtime/channel.ts";
import type { CounterFamily, Family, Sample } from "./family.ts";
import { type Snapshot, workerShare } from "./snapshot.ts";

type Counter = CounterFamily<string>;

/** A series' identity in its family: its label values, in the family's label order. */
function seriesKey(family: Counter, labels: Sample<string>[0]): string {
  return JSON.stringify(family.labels.map((l) => labels[l]));
}

/**
 * What dead IO workers had counted, by counter family and series: added to
 * the live workers' sums at every scrape, so a counter summed over the
 * workers never goes back when one is replaced (a rate() would see a reset,
 * a false spike, precisely during trouble), and none of their labelled
 * series disappears. Gauges and histograms are not carried: a gauge is what
 * the live workers hold now.
 *
 * What is carried is a dead worker's last stats the supervisor had: from
 * the last scrape (or /status) before it died, so counts it made after that
 * are lost with it. The counter still never falls below what a scrape showed.
 */
export class CarriedCounters {
  readonly #families: readonly Counter[];
  /** Dead workers' last stats, not yet folded: folding needs a scrape's backends and trunks. */
  #pending: WorkerStats[] = [];
  /** By family name, then series key: the sum over every dead worker. */
  readonly #carried = new Map<string, Map<string, Sample<string>>>();

  constructor(families: readonly Family[]) {
    this.#families = families.filter((f): f is Counter => f.type === "counter");
  }

  /** An IO worker died: `last` is what it had counted, as far as anyone knows. */
  retire(last: WorkerStats): void {
    this.#pending.push(last);
  }

  /** Folds the workers that died since the last scrape, each as its share of `snapshot` (the scrape's). */
  settle(snapshot: Snapshot): void {
    for (const last of this.#pending) {
      const share = workerShare(last, snapshot);
      for (const family of this.#families) this.#add(family, family.read(share));
    }
    this.#pending = [];
  }

  /**
   * `family`'s live series and the carried ones: a counter's series with the
   * same labels add up (CounterFamily.read), so the live sum and the dead
   * workers' add, and a series only dead workers had stays.
   */
  with(family: Counter, live: Iterable<Sample<string>>): Iterable<Sample<string>> {
    const carried = this.#carried.get(family.name);
    return carried === undefined ? live : [...live, ...carried.values()];
  }

  #add(family: Counter, samples: Iterable<Sample<string>>): void {
    const carried = this.#carried.get(family.name) ?? new Map<string, Sample<string>>();
    for (const [labels, n] of samples) {
      const key = seriesKey(family, labels);
      carried.set(key, [labels, (carried.get(key)?.[1] ?? 0) + n]);
    }
    this.#carried.set(family.name, carried);
  }
}
