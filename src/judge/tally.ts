/**
 * What a check's comparisons could bound (issue 21: no vacuous verdicts). Every value the judge
 * compares with the exact answer is counted, and counted as inconclusive when its bound makes no
 * claim that could fail: its bound is Infinity (no finite bound exists: a singular group at
 * eps = 0, a sum whose depth times the accumulation's unit roundoff reaches 1), or the tolerance
 * marks that output's bound for the group as no smaller than the quantity's own scale
 * (src/judge/tolerance.ts `uninformative`: the mean's bound reaching mean|x|, the variance's
 * reaching var, 1/s^ or the centring known only within 100% for x-hat, y and dx, ...).
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

