/**
 * The tolerance spec's honest-kernel property (spec/tolerance.spec.ts), unpinned: the least
 * accurate honest float32 kernels (two-pass, Welford, the folded x*inv - mu*inv form, every op
 * and sum in float32) on |mean| / std up to 1e6, over many fast-check seeds. CI pins one seed;
 * this is where "no false alarm over N seeds" comes from.
 *
 *   npx tsx scripts/sweep-honest-kernels.ts [--from 1] [--to 1100] [--runs 300]
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { compareForwardTrain, expectationFor } from '../src/compare.js';
import { f32Train, honestCaseArb, type F32Variant } from '../src/teach/f32-kernel.js';

const { values } = parseArgs({ options: { from: { type: 'string', default: '1' }, to: { type: 'string', default: '1100' }, runs: { type: 'string', default: '300' } } });
const [from, to, runs] = [Number(values.from), Number(values.to), Number(values.runs)];
const F32_SEQ = { dtype: 'float32', order: 'sequential' } as const;
const t0 = Date.now();
let failedSeeds = 0;
let cases = 0;
let channels = 0;
let singular = 0;
for (const variant of ['two-pass', 'welford', 'folded'] as F32Variant[]) {
  for (let seed = from; seed <= to; seed++) {
    const r = fc.check(
      fc.property(honestCaseArb, ({ profile, req }) => {
        const cmp = compareForwardTrain(profile, req, f32Train(profile, req, variant), { accumulation: F32_SEQ });
        const reasons = expectationFor('forwardTrain', profile, req, { accumulation: F32_SEQ }).reasons;
        cases++;
        channels += reasons.length;
        singular += reasons.filter((x) => x.includes('singular')).length;
        return cmp.ok;
      }),
      { numRuns: runs, seed },
    );
    if (r.failed) {
      failedSeeds++;
      console.log(`FAIL ${variant} seed ${seed}: ${JSON.stringify(r.counterexample).slice(0, 400)}`);
    }
  }
}
const seeds = to - from + 1;
console.log(
  `${failedSeeds} failing seeds of ${seeds} x 3 variants; ${cases} cases (${runs} runs per seed), ${channels} channels, ` +
    `${singular} singular (${((100 * singular) / channels).toFixed(2)}%: no bound on y there); ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
process.exitCode = failedSeeds ? 1 : 0;
