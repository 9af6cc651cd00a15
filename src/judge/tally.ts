/**
 * What a check's comparisons could bound (issue 21: no vacuous verdicts). Every value the judge
 * compares with the exact answer is counted, and counted as inconclusive when its bound makes no
 * claim that could fail:
 *   - the bound is Infinity (no finite bound exists: a singular group at eps = 0, a sum whose
 *     depth times the accumulation's unit roundoff reaches 1), or
 *   - the bound is at least the largest exact magnitude of that output over the value's group
 *     (`scale` > 0): then returning 0 for the whole group would pass too, so the comparison cannot
 *     tell the answer from nothing. (scale 0, an all-zero exact output, keeps a finite bound
 *     informative: it still rejects anything larger than the bound.)
 * A check whose every compared value was inconclusive proves nothing and is reported
 * 'inconclusive', never 'pass' (src/harness/runner.ts); every report shows the fraction.
 *
 * The counts travel with the asynchronous context of the check that runs (AsyncLocalStorage), so
 * every comparison path (compare, the scalar expectClose, golden fixtures, invariance pairs) counts
 * without each check threading a counter, and two runs in one process never mix their counts.
 * Outside a check (plots, teaching, specs calling the judge directly) nothing is counted.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface ComparisonCounts {
  values: number;
  inconclusive: number;
}

const active = new AsyncLocalStorage<ComparisonCounts>();

/** Whether a bound can fail anything: finite, and below the output's scale over the group when that is > 0. */
export function informative(bound: number, scale = 0): boolean {
  if (!(bound < Infinity)) return false;
  return !(scale > 0 && bound >= scale);
}

/** Count one compared value (or `n` with the same verdict) in the running check, if any. */
export function countComparison(isInformative: boolean, n = 1): void {
  const t = active.getStore();
  if (!t) return;
  t.values += n;
  if (!isInformative) t.inconclusive += n;
}

/** Run a check with a fresh tally; the counts are returned beside its result. */
export async function withTally<T>(fn: () => Promise<T>): Promise<{ result: T; counts: ComparisonCounts }> {
  const counts: ComparisonCounts = { values: 0, inconclusive: 0 };
  const result = await active.run(counts, fn);
  return { result, counts };
}

