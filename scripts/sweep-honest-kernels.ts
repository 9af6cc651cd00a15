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
import { profiles } from '../src/profiles.js';
import { conditionedRequest, f32Train, type F32Variant } from '../src/teach/f32-kernel.js';

const { values } = parseArgs({ options: { from: { type: 'string', default: '1' }, to: { type: 'string', default: '1100' }, runs: { type: 'string', default: '300' } } });
const [from, to, runs] = [Number(values.from), Number(values.to), Number(values.runs)];
const F32_SEQ = { dtype: 'float32', order: 'sequential' } as const;
// the spec's own LCG, so the inputs are the spec's
function request(shape: number[], axis: number, mu: number, sigma: number, seed: number, eps: number) {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
  return conditionedRequest(shape, axis, mu, sigma, rnd, eps);
}
const shapes: Array<[number[], number]> = [[[64, 3], 1], [[8, 2, 5, 5], 1], [[4, 6, 6, 3], 3], [[2, 2], 0], [[300, 2], 1]];
const t0 = Date.now();
let failedSeeds = 0;
let cases = 0;
let channels = 0;
let singular = 0;
for (const variant of ['two-pass', 'welford', 'folded'] as F32Variant[]) {
  for (let seed = from; seed <= to; seed++) {
    const r = fc.check(
      fc.property(
        fc.constantFrom(...shapes),
        fc.double({ min: -6, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 6, noNaN: true }),
        fc.constantFrom(0, 1e-5, 1e-3, 1),
        fc.constantFrom(...Object.values(profiles)),
        fc.integer(),
        ([shape, axis], logSigma, logRatio, eps, profile, s) => {
          fc.pre(shape.reduce((a, b) => a * b) / shape[axis]! > 1 || profile.singleValue === 'allowed');
          const sigma = 10 ** logSigma;
          const req = request(shape, axis, sigma * 10 ** logRatio, sigma, s, eps);
          const cmp = compareForwardTrain(profile, req, f32Train(profile, req, variant), { accumulation: F32_SEQ });
          const reasons = expectationFor('forwardTrain', profile, req, { accumulation: F32_SEQ }).reasons;
          cases++;
          channels += reasons.length;
          singular += reasons.filter((x) => x.includes('singular')).length;
          return cmp.ok;
        },
      ),
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
