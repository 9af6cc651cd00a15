/**
 * What a check sends is what it reasons about, for every (dtype, paramDtype) pair a kernel may
 * declare, parameters narrower than the activations included (torch's rms_norm takes all 16):
 * - a problem's gamma and beta are numbers of paramDtype, so the request carries them unrounded
 *   (a gamma drawn in float16 and rounded to bfloat16 on the way made rms:normalization:affine
 *   fail an exact torch: "gamma=-1.3232421875 vs gamma*y(1)" for a request holding -1.3203125);
 * - a request builder refuses a number its field's dtype cannot hold (UnrepresentableInputError,
 *   never a silent rounding);
 * - an output narrower than float64 may honestly overflow: a float32 mean of float64 data at 1e150
 *   is +Infinity, and the judge admits it as it admits float16's 65,597 -> +Infinity.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { familyBackwardRequest, familyProblemArb, familyRequest } from '../../src/arbitraries/family.js';
import { backwardRequest, problemArb, trainRequest } from '../../src/arbitraries/problem.js';
import { DTYPES, type DType, type ForwardTrainRequest } from '../../src/contract/contract.js';
import { overflowThresholdOf, roundTo, toContractRequest, UnrepresentableInputError } from '../../src/contract/dtypes.js';
import { profiles } from '../../src/contract/profiles.js';
import { compareWithReference } from '../../src/judge/compare.js';
import { channelStats, createReference } from '../../src/reference/reference.js';
import { layoutOf } from '../../src/contract/layout.js';

const PAIRS: Array<[DType, DType]> = DTYPES.flatMap((d) => DTYPES.map((p) => [d, p] as [DType, DType]));

describe('a problem\'s parameters are the numbers its request carries, for all 16 precision pairs', () => {
  for (const [dtype, paramDtype] of PAIRS) {
    it(`${dtype} activations, ${paramDtype} parameters`, () => {
      const precision = { dtype, paramDtype };
      fc.assert(
        fc.property(problemArb({ dtype, paramDtype, axis: 'first', values: 'full' }), (p) => {
          for (const v of [...p.gamma, ...p.beta]) expect(roundTo(paramDtype, v)).toBe(v);
          for (const v of p.gamma) expect(Math.abs(v)).toBeGreaterThanOrEqual(1 / 8);
          toContractRequest(trainRequest(p), precision);
          toContractRequest(backwardRequest(p, true), precision);
        }),
        { numRuns: 30, seed: 3 },
      );
      fc.assert(
        fc.property(familyProblemArb({ op: 'rmsNorm', dtype, paramDtype, axis: 'last', values: 'full', largeM: false }), (p) => {
          for (const v of p.gamma) expect(roundTo(paramDtype, v)).toBe(v);
          toContractRequest(familyRequest(p), precision);
          toContractRequest(familyBackwardRequest(p), precision);
        }),
        { numRuns: 30, seed: 3 },
      );
    });
  }

  it('bfloat16 data with float16 statistics (and the reverse): every channel\'s mean and variance fit float16', () => {
    for (const [dtype, paramDtype] of [['bfloat16', 'float16'], ['float16', 'bfloat16']] as Array<[DType, DType]>) {
      fc.assert(
        fc.property(problemArb({ dtype, paramDtype, axis: 'first', values: 'full' }), (p) => {
          const L = layoutOf(p.shape, p.axis);
          const st = channelStats(Float64Array.from(p.x), L);
          for (let c = 0; c < L.channels; c++) {
            expect(Math.abs(st.meanHi[c]!)).toBeLessThan(65504);
            expect(st.variance[c]!).toBeLessThan(65504);
          }
        }),
        { numRuns: 200, seed: 4 },
      );
    }
  });

  it('a request builder refuses a number its field cannot hold, by name', () => {
    const [p] = fc.sample(problemArb({ dtype: 'float32', paramDtype: 'bfloat16', axis: 'first' }), { numRuns: 1, seed: 1 });
    expect(() => trainRequest(p!, { beta: p!.beta.map((b, c) => (c === 0 ? b + 2 ** -20 : b)) })).toThrow(UnrepresentableInputError);
    expect(() => trainRequest(p!, { x: p!.x.map((v, i) => (i === 0 ? 0.1 : v)) })).toThrow(/x\[0\] = 0\.1 is not a float32 value/);
  });
});

describe('outputs narrower than float64 overflow honestly', () => {
  it('overflowThresholdOf: the first magnitude that rounds to Infinity', () => {
    for (const d of ['float32', 'float16', 'bfloat16'] as const) {
      const t = overflowThresholdOf(d);
      expect(Math.abs(roundTo(d, t))).toBe(Infinity);
      // the next double below rounds to the largest finite value
      const below = t * (1 - 2 ** -53);
      expect(Number.isFinite(roundTo(d, below))).toBe(true);
    }
    expect(overflowThresholdOf('float64')).toBe(Infinity);
  });

  it('float64 data at 1e150 with float32 statistics: +Infinity passes, a finite wrong mean fails', () => {
    const precision = { dtype: 'float64' as const, paramDtype: 'float32' as const };
    const ref = createReference('pytorch', { precisions: [precision] });
    const x = Float64Array.from([1e150, 1.5e150, 2e150, 3e150]);
    const req: ForwardTrainRequest = {
      ...precision,
      x,
      shape: [4, 1],
      axis: 1,
      gamma: Float32Array.from([1]),
      beta: Float32Array.from([0]),
      eps: 1e-5,
      momentum: 0.1,
      runningMean: Float32Array.from([0]),
      runningVar: Float32Array.from([1]),
    };
    const got = ref.forwardTrain!(req) as unknown as Record<string, Float32Array | Float64Array>;
    expect(got.mean![0]).toBe(Infinity);
    const opts = { accumulation: { dtype: 'float64' as const, order: 'sequential' as const }, precision };
    expect(compareWithReference('forwardTrain', profiles.pytorch, req, got, opts).ok).toBe(true);
    const wrong = { ...got, mean: Float32Array.from([3.4e38]) };
    expect(compareWithReference('forwardTrain', profiles.pytorch, req, wrong, opts).ok).toBe(false);
    const negative = { ...got, mean: Float32Array.from([-Infinity]) };
    expect(compareWithReference('forwardTrain', profiles.pytorch, req, negative, opts).ok).toBe(false);
  });
});
