/**
 * The tolerance function is tight: it accepts the least accurate honest float32 kernels
 * (two-pass, Welford, the folded x*inv - mu*inv form, all in float32 with sequential float32
 * sums) everywhere, at m = 2^20 too, and rejects the one-pass E[x^2] - E[x]^2 kernel on mean 1e4,
 * std 1e-2 and on same-sign data at m = 2^20.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ForwardTrainRequest } from '../src/contract/contract.js';
import { compareForwardTrain } from '../src/judge/compare.js';
import { profiles } from '../src/contract/profiles.js';
import { errorRatio, reductionDepth, scaleBound, sumErrorFactor, tolerance, withinBound } from '../src/judge/tolerance.js';
import { InternalError } from '../src/contract/errors.js';
import { f32Train as f32ForwardTrain, HONEST_SHAPES, honestCaseArb, seededConditionedRequest, type F32Variant as Variant } from '../src/teach/f32-kernel.js';

const F32_SEQ = { dtype: 'float32', order: 'sequential' } as const;

const request = seededConditionedRequest;

describe('tolerance: reduction structure', () => {
  it('depth follows the reduction order', () => {
    expect(reductionDepth(1024, { dtype: 'float32', order: 'sequential' })).toBe(1023);
    expect(reductionDepth(1024, { dtype: 'float32', order: 'pairwise' })).toBe(10);
    expect(reductionDepth(1024, { dtype: 'float32', order: 'tiled', tile: 64 })).toBe(63 + 4);
    expect(reductionDepth(1, F32_SEQ)).toBe(0);
  });
  it("is Higham's deterministic gamma(depth) at every m (no probabilistic sqrt(k) shortcut)", () => {
    const u = 2 ** -24;
    expect(sumErrorFactor(50, F32_SEQ)).toBeCloseTo((49 * u) / (1 - 49 * u), 20);
    expect(sumErrorFactor(1_000_001, F32_SEQ)).toBeCloseTo((1e6 * u) / (1 - 1e6 * u), 15);
    expect(sumErrorFactor(2 ** 20, { dtype: 'float32', order: 'pairwise' })).toBeCloseTo((20 * u) / (1 - 20 * u), 20);
  });
  it('a float64-accumulating kernel gets a bound near float32 rounding, independent of m', () => {
    const facts = { m: 1e6, mean: 0, variance: 1, eps: 0, absMean: 0.8, maxDev: 4, gamma: 1, training: true };
    const loose = tolerance({ dtype: 'float32' }, facts);
    const tight = tolerance({ dtype: 'float32', accumulation: { dtype: 'float64', order: 'sequential' } }, facts);
    expect(tight.mean).toBeLessThan(loose.mean / 100);
    expect(tight.y(1, 1, 1)).toBeLessThan(2e-6);
  });
});

describe('tolerance: honest float32 kernels pass, one-pass fails', () => {
  const shapes = HONEST_SHAPES;
  for (const variant of ['two-pass', 'welford', 'folded'] as Variant[]) {
    it(`${variant} float32 kernel passes on random conditioning up to |mean|/std = 1e6`, () => {
      fc.assert(
        fc.property(honestCaseArb, ({ profile, req }) => {
          const got = f32ForwardTrain(profile, req, variant);
          const cmp = compareForwardTrain(profile, req, got, { accumulation: F32_SEQ });
          expect(cmp.ok, JSON.stringify({ worst: cmp.worst, ratios: cmp.ratios, reason: cmp.reason })).toBe(true);
        }),
        // Pinned seed, as the judge pins its own. Unpinned, seeds 1..1100 x 300 runs x 3 variants
        // pass (scripts/sweep-honest-kernels.ts); before the singular-channel bound ~7% of seeds
        // failed on the case below.
        { numRuns: 300, seed: 1 },
      );
    });
  }

  it('at m = 2^20 of same-sign values (0.1 +- 0.001), where sequential float32 errors correlate, two-pass passes and one-pass fails', () => {
    // issue 11: the probabilistic bound was exceeded 5.7x here; one channel, one comparison each
    const m = 2 ** 20;
    const req = request([m, 1], 1, 0.1, 0.001 / 1.7, 11, 1e-5);
    const ratio = (variant: Variant) => compareForwardTrain(profiles.keras, req, f32ForwardTrain(profiles.keras, req, variant), { accumulation: F32_SEQ });
    const honest = ratio('two-pass');
    expect(honest.ok, JSON.stringify(honest.ratios)).toBe(true);
    // the error is real (well above float32 rounding of one value), so the bound is not vacuous
    expect(honest.ratios.mean).toBeGreaterThan(0.01);
    const onePass = ratio('one-pass');
    expect(onePass.ok).toBe(false);
    expect(onePass.ratios.variance).toBeGreaterThan(1);
  });

  it('a singular channel (the variance bound reaches var + eps) bounds no y: honest Welford returns Infinity / NaN there and passes', () => {
    // found by the property above, unpinned: m = 2, two adjacent float32 values, eps = 0,
    // |mean| / s = 2.5e7. float32 Welford computes the variance 0 (within its bound), so y = +-Inf or NaN.
    const x = Float32Array.from([776995.4375, 776995.375]);
    const one = Float32Array.from([1]);
    const req: ForwardTrainRequest = { x, shape: [2, 1], axis: 1, gamma: one, beta: Float32Array.from([0]), eps: 0, momentum: 0.9, runningMean: Float32Array.from([0]), runningVar: one };
    const got = f32ForwardTrain(profiles.keras, req, 'welford');
    expect(Array.from(got.variance)).toEqual([0]);
    expect(Array.from(got.y).some((v) => !Number.isFinite(v))).toBe(true);
    const cmp = compareForwardTrain(profiles.keras, req, got, { accumulation: F32_SEQ });
    expect(cmp.ok, JSON.stringify(cmp)).toBe(true);
    // no claim on y, but the statistics keep their bounds: a mean off by 1 still fails
    const wrongMean = compareForwardTrain(profiles.keras, req, { ...got, mean: Float32Array.from([got.mean[0]! + 1]) }, { accumulation: F32_SEQ });
    expect(wrongMean.ok).toBe(false);
    expect(wrongMean.worst?.output).toBe('mean');
    const b = tolerance({ dtype: 'float32', accumulation: F32_SEQ }, { m: 2, mean: 776995.40625, variance: 2 ** -10, eps: 0, absMean: 776995.40625, maxDev: 2 ** -5, gamma: 1, training: true });
    expect(b.reason).toContain('singular');
    expect(b.y(1, 776995.4375, 1)).toBe(Infinity);
    expect(b.dgamma(0)).toBe(Infinity); // Infinity, never Infinity * 0 = NaN
    expect(Number.isFinite(b.variance) && Number.isFinite(b.mean)).toBe(true);
  });

  it('one verdict rule: an Infinity bound accepts anything (NaN included), a NaN bound is a suite defect, an unbounded element stays unbounded at weight 0', () => {
    expect(errorRatio(NaN, Infinity)).toBe(0);
    expect(errorRatio(Infinity, Infinity)).toBe(0);
    expect(errorRatio(NaN, 1)).toBe(Infinity);
    expect(errorRatio(0, 0)).toBe(0);
    expect(errorRatio(1e-300, 0)).toBe(Infinity);
    expect(errorRatio(2, 4)).toBe(0.5);
    expect(() => errorRatio(1, NaN)).toThrow(InternalError);
    expect(scaleBound(Infinity, 0)).toBe(Infinity);
    expect(scaleBound(3, -2)).toBe(6);
    expect(withinBound(NaN, Infinity) && !withinBound(NaN, 1e300)).toBe(true);
  });

  it('past first order: 1/s^ is bounded exactly in r = dvar / (var + eps), growing without limit as r -> 1', () => {
    const facts = { m: 64, mean: 0, variance: 1, eps: 0, absMean: 0.8, maxDev: 3, gamma: 1, training: true };
    const at = (mean: number) => tolerance({ dtype: 'float32', accumulation: F32_SEQ }, { ...facts, mean, absMean: Math.abs(mean) });
    // small r: the first-order x-hat bound dvar / (2 s^2) |xhat| + ..., within 1e-6 relative
    const small = at(1);
    expect(small.xhat(1, 1)).toBeGreaterThan(0);
    // near-singular: the bound on x-hat exceeds |xhat| itself (first order would give ~ r / 2 < 1/2)
    let mean = 1;
    while (!at(mean * 2).reason.includes('singular')) mean *= 2;
    const near = at(mean);
    expect(near.xhat(1, mean + 1)).toBeGreaterThan(1);
    expect(at(mean * 2).xhat(1, mean + 1)).toBe(Infinity);
    // monotone in the conditioning: never tighter as |mean| / s grows
    let prev = 0;
    for (let k = 1; k <= mean; k *= 2) {
      const b = at(k).xhat(1, k + 1);
      expect(b).toBeGreaterThanOrEqual(prev);
      prev = b;
    }
  });

  it('one-pass float32 variance fails on mean 1e4, std 1e-2 (and the report says variance)', () => {
    for (const [shape, axis] of shapes) {
      const req = request(shape, axis, 1e4, 1e-2, 7);
      const got = f32ForwardTrain(profiles.keras, req, 'one-pass');
      const cmp = compareForwardTrain(profiles.keras, req, got, { accumulation: F32_SEQ });
      expect(cmp.ok).toBe(false);
      expect(cmp.ratios.variance).toBeGreaterThan(1);
      // and the two-pass twin on the very same data passes
      const twin = compareForwardTrain(profiles.keras, req, f32ForwardTrain(profiles.keras, req, 'two-pass'), { accumulation: F32_SEQ });
      expect(twin.ok).toBe(true);
    }
  });
});

// ------------------------------------------------------------------ half precision (issue 12)
describe('tolerance: half precision (float32 compute, one rounding per output)', () => {
  const facts = { m: 16, mean: 3, variance: 2, eps: 1e-3, absMean: 3, maxDev: 2.5, gamma: 1.5, training: true, meanAbsDy: 0.5, meanAbsDyXhat: 0.4, meanAbsDyX: 1.5 };
  const f32 = tolerance({ dtype: 'float32', accumulation: F32_SEQ }, facts);
  const mixed = tolerance({ dtype: 'float16', paramDtype: 'float32', accumulation: F32_SEQ }, facts);
  const pure = tolerance({ dtype: 'bfloat16', paramDtype: 'bfloat16', accumulation: F32_SEQ }, facts);
  it('y and dx: the float32 bound plus one rounding to the activation dtype', () => {
    const y = 2.25;
    const b32 = f32.y(0.5, 3.7, y);
    expect(mixed.y(0.5, 3.7, y)).toBeCloseTo(b32 + 2 ** -11 * (y + b32) + 2 ** -24, 15);
    expect(pure.y(0.5, 3.7, y)).toBeCloseTo(b32 + 2 ** -8 * (y + b32) + 2 ** -133, 15);
    expect(mixed.dx(0.5, 3.7, 0.25, 0.1, 0.2, 0.05)).toBeGreaterThan(2 ** -11 * 0.05);
  });
  it('statistics: rounded to the parameters\' dtype (float32 under mixed precision, bfloat16 under pure)', () => {
    expect(mixed.mean).toBeLessThan(f32.mean * (1 + 1e-6) + 2 ** -24 * 3 + 2 ** -24 * 2);
    expect(mixed.mean).toBeLessThan(1e-5); // no float16 term: a mean held in float16 (error ~ 3 * 2^-11) fails
    expect(pure.mean).toBeGreaterThan(2 ** -8 * 3);
  });
  it('a declared half accumulation that cannot bound its sum gives no bound, never a negative one', () => {
    const big = tolerance({ dtype: 'float16', paramDtype: 'float16', accumulation: { dtype: 'float16', order: 'sequential' } }, { ...facts, m: 70000 });
    expect(big.mean).toBe(Infinity);
    expect(big.y(0, 3, 1)).toBe(Infinity);
    const small = tolerance({ dtype: 'float16', paramDtype: 'float16', accumulation: { dtype: 'float16', order: 'pairwise' } }, facts);
    expect(small.mean).toBeGreaterThan(0);
    expect(Number.isFinite(small.mean)).toBe(true);
  });
});
