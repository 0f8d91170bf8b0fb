/**
 * bench:compare's capacity search: steps up from `from` by `step` until a
 * rate is not carried, then tries the rate halfway back. A step that is
 * not carried is run once more before it counts: the VM's slow spells
 * (compare/rounds.ts) last a whole run, only ever lower what a balancer
 * carries, and otherwise put the search's end wherever one fell (four
 * searches of the same tree, one after another, ended at 2 300, 2 800,
 * 3 500 and 3 800 calls/s, the lowest in a run that cost 0.38 CPU-s per
 * 1 000 calls against 0.22-0.27). Every balancer gets the same second try.
 */
export interface SearchSteps {
  readonly from: number;
  readonly step: number;
  readonly max: number;
}

/**
 * The highest rate `carried` says yes to, and the rate it first refused
 * twice (0: none). `carried` runs one step; it is called again for the
 * same rate only after a refusal.
 */
export async function searchCapacity(
  steps: SearchSteps,
  carried: (rate: number) => Promise<boolean>,
): Promise<{ best: number; failedAt: number }> {
  const twice = async (rate: number) => (await carried(rate)) || (await carried(rate));
  let best = 0;
  let failedAt = 0;
  for (let rate = steps.from; rate <= steps.max; rate += steps.step) {
    if (!(await twice(rate))) {
      failedAt = rate;
      break;
    }
    best = rate;
  }
  const half = Math.round((best + failedAt) / 2 / 100) * 100;
  if (failedAt > 0 && half > best && half < failedAt && (await twice(half))) best = half;
  return { best, failedAt };
}
