/**
 * The reference against the 60-digit BigNumber oracle.
 *
 * Claim (float64 requests): every output is within k ulp of the oracle, measured at the scale of
 * the terms that form it (a result that is a sum of terms of size S can only be known to about
 * u * S, however small it comes out):
 *   y: |y| + |beta|            mean: |mean|             variance: |variance|
 *   running stats: |keep * old| + |take * batch stat|
 *   dx: |gamma / s| (|dy| + |mean dy| + |xhat| mean|dy xhat|)   (oracle.ts dxScale)
 *   dgamma: sum |dy * xhat|    dbeta: sum |dy|
 * An error <= k u S is < k ulp(S) (ulp(S) > u S). First-order worst cases, one u per rounding:
 * d = (x - hi) - lo: <= 2u |d| (x - hi is exact only near the mean); variance <= 2.5u (squares,
 * compensated sums); s = sqrt(var + eps): (2.5u + u) / 2 + u = 2.75u; x-hat = d / s: 5.75u.
 *   y = gamma xhat + beta: 5.75u + 2u on |gamma xhat| + |y|, and |gamma xhat| <= |y| + |beta|:
 *     7.75u (inference: d 1u, s 1.5u, divide, multiply, add: 5.5u).
 *   running variance keep RV + take (bessel var): var 2.5u, Bessel's factor, two products and
 *     the sum: <= 6.5u of |RV'| + |keep RV|; mean, variance, running mean less.
 *   dgamma = sum dy xhat: terms 6.75u, the compensated sum u: 7.75u. dbeta: 1u.
 *   So 8 ulp for every output but dx (it was 4, from a worst case counted as 3.5u: not proved).
 *   dx = gamma (dy - Q - xhat P) / s: P = dgamma / m carries 8.75u mean|dy xhat|, so xhat P
 *     15.5u |xhat| mean|dy xhat|; Q 2u |Q|; two subtractions u each on the scale; gamma / s
 *     4.75u: at most 21.25u of the scale -> 22 ulp. (The old bound, 8 ulp of |xhat P|, was
 *     exceeded at 8.64 ulp when P cancels: P's error does not shrink with it. Unpinned, this
 *     spec's property found it.)
 * float32 requests are rounded once from that float64 result: within 1 ulp(float32).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Arr, BackwardRequest, DType, ForwardTrainRequest, Profile } from '../../src/contract/contract.js';
import { SingleValuePerChannelError } from '../../src/contract/errors.js';
import { layoutOf } from '../../src/contract/layout.js';
import { ulp } from '../../src/numerics/ulp.js';
import { profiles } from '../../src/contract/profiles.js';
import { type Big, exactBig, oracleBackward, oracleForwardInfer, oracleForwardTrain } from '../../src/reference/oracle.js';
import { createReference } from '../../src/reference/reference.js';
import { mulberry32 as mulberry } from '../../src/numerics/random.js';
import { fieldDtype, roundTo, toContractRequest, toNumbers } from '../../src/contract/dtypes.js';

const RUNS = Number(process.env.BN_ORACLE_RUNS ?? 1000);
// pinned for CI, as the judge pins its own; sweep others with BN_ORACLE_SEED (and BN_ORACLE_RUNS)
const SEED = Number(process.env.BN_ORACLE_SEED ?? 1);
const BOUND_F64 = 8;
const BOUND_DX_F64 = 22;
const BOUND_F32 = 1;

/** |got - exact| in ulps of `scale` (NaN matches NaN, anything else against NaN is Infinity). */
function ulpsOff(got: number, exact: Big, scale: number, dtype: DType): number {
  if (exact.isNaN()) return Number.isNaN(got) ? 0 : Infinity;
  if (!Number.isFinite(got)) return Infinity;
  const err = exactBig(got).minus(exact).abs().toNumber();
  if (err === 0) return 0;
  return err / ulp(scale, dtype);
}

interface Problem {
  shape: number[];
  axis: number;
  profile: Profile;
  eps: number;
  momentum: number;
  x: number[];
  dy: number[];
  gamma: number[];
  beta: number[];
  runningMean: number[];
  runningVar: number[];
}

/** Conditioned batches: per channel x = mu + sigma * z with |mu|/sigma up to 1e8, or constant. */
const problemArb: fc.Arbitrary<Problem> = fc
  .record({
    dims: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 4 }),
    axisSeed: fc.nat(),
    profile: fc.constantFrom(...Object.values(profiles)),
    eps: fc.constantFrom(0, 1e-5, 1e-3, 0.1, 0.5, 1),
    momentum: fc.constantFrom(0, 0.1, 0.5, 0.9, 0.99, 1),
    seed: fc.integer(),
    logMu: fc.double({ min: -8, max: 8, noNaN: true }),
    logSigma: fc.double({ min: -4, max: 4, noNaN: true }),
    muSign: fc.constantFrom(-1, 0, 1),
    constantChannel: fc.boolean(),
  })
  .map((r) => {
    const axis = r.axisSeed % r.dims.length;
    const layout = layoutOf(r.dims, axis);
    const rng = mulberry(r.seed);
    const x = new Array<number>(layout.numel);
    for (let c = 0; c < layout.channels; c++) {
      const mu = r.muSign * 10 ** r.logMu * (1 + c);
      const sigma = 10 ** r.logSigma;
      const constant = r.constantChannel && c === 0;
      for (let o = 0; o < layout.outer; o++) {
        for (let i = 0; i < layout.inner; i++) {
          x[(o * layout.channels + c) * layout.inner + i] = constant ? mu + sigma : mu + sigma * (2 * rng() - 1) * 3;
        }
      }
    }
    const n = layout.numel;
    const C = layout.channels;
    return {
      shape: r.dims,
      axis,
      profile: r.profile,
      eps: r.eps,
      momentum: r.momentum,
      x,
      dy: Array.from({ length: n }, () => 2 * rng() - 1),
      gamma: Array.from({ length: C }, () => 0.5 + rng()),
      beta: Array.from({ length: C }, () => 2 * rng() - 1),
      runningMean: Array.from({ length: C }, () => 2 * rng() - 1),
      runningVar: Array.from({ length: C }, () => 0.5 + rng()),
    };
  });


function arr(dtype: DType, v: number[]): Arr {
  return dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v);
}

function trainRequest(p: Problem, dtype: DType): ForwardTrainRequest {
  return {
    x: arr(dtype, p.x),
    shape: p.shape,
    axis: p.axis,
    gamma: arr(dtype, p.gamma),
    beta: arr(dtype, p.beta),
    eps: p.eps,
    momentum: p.momentum,
    runningMean: arr(dtype, p.runningMean),
    runningVar: arr(dtype, p.runningVar),
  };
}

/** eps = 0 is defined only when no channel is constant (otherwise 0/0). */
function defined(p: Problem, x: Arr): boolean {
  if (p.eps > 0) return true;
  const L = layoutOf(p.shape, p.axis);
  for (let c = 0; c < L.channels; c++) {
    const first = x[c * L.inner]!;
    let constant = true;
    for (let o = 0; o < L.outer && constant; o++) {
      for (let i = 0; i < L.inner; i++) if (x[(o * L.channels + c) * L.inner + i] !== first) constant = false;
    }
    if (constant) return false;
  }
  return true;
}

function worst(got: ArrayLike<number>, exact: Big[], scale: (i: number) => number, dtype: DType): number {
  let w = 0;
  for (let i = 0; i < exact.length; i++) w = Math.max(w, ulpsOff(got[i]!, exact[i]!, scale(i), dtype));
  return w;
}

describe('reference vs 60-digit oracle', () => {
  for (const dtype of ['float64', 'float32'] as DType[]) {
    const bound = dtype === 'float64' ? BOUND_F64 : BOUND_F32;

    it(`forwardTrain: y, mean, variance, running stats within ${bound} ulp (${dtype})`, () => {
      fc.assert(
        fc.property(problemArb, (p) => {
          const req = trainRequest(p, dtype);
          fc.pre(defined(p, req.x));
          const ref = createReference(p.profile);
          const m = layoutOf(p.shape, p.axis).m;
          if (m === 1 && p.profile.singleValue === 'error') {
            expect(() => ref.forwardTrain!(req)).toThrow(SingleValuePerChannelError);
            return;
          }
          const got = ref.forwardTrain!(req) as Awaited<ReturnType<NonNullable<typeof ref.forwardTrain>>>;
          const ex = oracleForwardTrain(p.profile, req);
          const L = layoutOf(p.shape, p.axis);
          const ch = (i: number) => Math.floor(i / L.inner) % L.channels;
          const yScale = (i: number) => Math.abs(ex.y[i]!.toNumber()) + Math.abs(req.beta[ch(i)]!);
          const keepTake = p.profile.momentum === 'decay' ? [p.momentum, 1 - p.momentum] : [1 - p.momentum, p.momentum];
          const rmScale = (c: number) => Math.abs(keepTake[0]! * req.runningMean[c]!) + Math.abs(keepTake[1]! * ex.mean[c]!.toNumber());
          const rvScale = (c: number) => Math.abs(ex.runningVar[c]!.toNumber()) + Math.abs(keepTake[0]! * req.runningVar[c]!);
          const errs = {
            y: worst(got.y, ex.y, yScale, dtype),
            mean: worst(got.mean, ex.mean, (c) => Math.abs(ex.mean[c]!.toNumber()), dtype),
            variance: worst(got.variance, ex.variance, (c) => Math.abs(ex.variance[c]!.toNumber()), dtype),
            runningMean: worst(got.runningMean, ex.runningMean, rmScale, dtype),
            runningVar: worst(got.runningVar, ex.runningVar, rvScale, dtype),
          };
          for (const [k, e] of Object.entries(errs)) expect(e, `${k} off by ${e} ulp`).toBeLessThanOrEqual(bound);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });

    it(`forwardInfer within ${bound} ulp (${dtype})`, () => {
      fc.assert(
        fc.property(problemArb, (p) => {
          const req = trainRequest(p, dtype);
          const ref = createReference(p.profile);
          const got = ref.forwardInfer!(req) as { y: Arr };
          const ex = oracleForwardInfer(p.profile, req);
          const L = layoutOf(p.shape, p.axis);
          const ch = (i: number) => Math.floor(i / L.inner) % L.channels;
          const e = worst(got.y, ex.y, (i) => Math.abs(ex.y[i]!.toNumber()) + Math.abs(req.beta[ch(i)]!), dtype);
          expect(e).toBeLessThanOrEqual(bound);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });

    for (const training of [true, false]) {
      it(`backward (training=${training}): dgamma, dbeta within ${bound} ulp, dx within ${dtype === "float64" ? BOUND_DX_F64 : bound} (${dtype})`, () => {
        fc.assert(
          fc.property(problemArb, (p) => {
            const t = trainRequest(p, dtype);
            fc.pre(!training || defined(p, t.x));
            const req: BackwardRequest = {
              x: t.x,
              dy: arr(dtype, p.dy),
              shape: p.shape,
              axis: p.axis,
              gamma: t.gamma,
              eps: p.eps,
              training,
              ...(training ? {} : { runningMean: t.runningMean, runningVar: t.runningVar }),
            };
            const ref = createReference(p.profile);
            const m = layoutOf(p.shape, p.axis).m;
            if (training && m === 1 && p.profile.singleValue === 'error') {
              expect(() => ref.backward!(req)).toThrow(SingleValuePerChannelError);
              return;
            }
            const got = ref.backward!(req) as { dx: Arr; dgamma: Arr; dbeta: Arr };
            const ex = oracleBackward(p.profile, req);
            const L = layoutOf(p.shape, p.axis);
            const sumAbs = (f: (i: number) => number) => (c: number) => {
              let s = 0;
              for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) s += Math.abs(f((o * L.channels + c) * L.inner + i));
              return s;
            };
            const errs = {
              dx: worst(got.dx, ex.dx, (i) => ex.dxScale[i]!.toNumber(), dtype),
              dbeta: worst(got.dbeta, ex.dbeta, sumAbs((i) => req.dy[i]!), dtype),
              dgamma: worst(got.dgamma, ex.dgamma, (c) => ex.dgammaScale[c]!.toNumber(), dtype),
            };
            for (const [k, e] of Object.entries(errs)) {
              expect(e, `${k} off by ${e} ulp`).toBeLessThanOrEqual(k === 'dx' && dtype === 'float64' ? BOUND_DX_F64 : bound);
            }
          }),
          { numRuns: RUNS, seed: SEED },
        );
      });
    }
  }
});

// ------------------------------------------------------------------ half precision (issue 12)
describe('reference vs oracle in half precision: one rounding of each output to its dtype', () => {
  // |error| <= half an ulp of the value in its dtype (one correct rounding) plus the float64
  // reference's own error (<= 8 ulp64 of the scale, < 1e-6 ulp of the scale in float32 or half):
  // HALF_ULP = 0.5 + 1e-6 ulp of the scale (a second rounding, e.g. through float32, may be off
  // by up to a whole ulp near a midpoint; the exhaustive conversion checks are in
  // spec/numerics/half.spec.ts).
  const HALF_ULP = 0.5 + 1e-6;
  const PRECISIONS: Array<{ dtype: DType; paramDtype: DType }> = [
    { dtype: 'float16', paramDtype: 'float32' },
    { dtype: 'bfloat16', paramDtype: 'float32' },
    { dtype: 'float16', paramDtype: 'float16' },
    { dtype: 'bfloat16', paramDtype: 'bfloat16' },
  ];
  const arb = fc.record({
    C: fc.integer({ min: 1, max: 3 }),
    n: fc.integer({ min: 2, max: 6 }),
    mu: fc.integer({ min: -100, max: 100 }),
    logSigma: fc.integer({ min: -4, max: 3 }),
    seed: fc.nat(),
  });
  for (const p of PRECISIONS) {
    it(`forwardTrain and backward, ${p.dtype} with ${p.paramDtype} parameters`, () => {
      const ref = createReference(profiles.pytorch, { precisions: [p] });
      fc.assert(
        fc.property(arb, ({ C, n, mu, logSigma, seed }) => {
          const rnd = mulberry(seed);
          const rd = (d: DType) => (v: number) => roundTo(d, v);
          const x = Array.from({ length: n * C }, () => rd(p.dtype)(mu + 2 ** logSigma * (2 * rnd() - 1)));
          const dy = Array.from({ length: n * C }, () => rd(p.dtype)(2 * rnd() - 1));
          const per = (f: () => number) => Array.from({ length: C }, () => rd(p.paramDtype)(f()));
          const numeric = { x: Float64Array.from(x), shape: [n, C], axis: 1, gamma: Float64Array.from(per(() => 0.5 + rnd())), beta: Float64Array.from(per(() => rnd() - 0.5)), eps: 1e-3, momentum: 0.1, runningMean: Float64Array.from(per(() => rnd())), runningVar: Float64Array.from(per(() => 0.5 + rnd())) };
          const req = toContractRequest(numeric, p) as ForwardTrainRequest;
          const got = ref.forwardTrain!(req) as unknown as Record<string, Uint16Array | Float32Array>;
          const ex = oracleForwardTrain(profiles.pytorch, req);
          const dec = (k: string) => (got[k] instanceof Uint16Array ? toNumbers(got[k] as Uint16Array, fieldDtype(k, p)) : got[k]!);
          const yScale = (i: number) => Math.abs(numeric.gamma[i % C]!) * Math.abs(ex.y[i]!.minus(numeric.beta[i % C]!).toNumber() / numeric.gamma[i % C]!) + Math.abs(numeric.beta[i % C]!);
          expect(worst(dec('y'), ex.y, yScale, p.dtype)).toBeLessThanOrEqual(HALF_ULP);
          for (const k of ['mean', 'variance', 'runningMean', 'runningVar'] as const) {
            expect(worst(dec(k), ex[k], (c) => Math.abs(ex[k][c]!.toNumber()) + 2 ** -60, p.paramDtype), k).toBeLessThanOrEqual(HALF_ULP);
          }
          const breq = toContractRequest({ x: numeric.x, dy: Float64Array.from(dy), shape: [n, C], axis: 1, gamma: numeric.gamma, eps: 1e-3, training: true }, p) as BackwardRequest;
          const gb = ref.backward!(breq) as unknown as Record<string, Uint16Array | Float32Array>;
          const eb = oracleBackward(profiles.pytorch, breq);
          const decB = (k: string) => (gb[k] instanceof Uint16Array ? toNumbers(gb[k] as Uint16Array, fieldDtype(k, p)) : gb[k]!);
          expect(worst(decB('dx'), eb.dx, (i) => eb.dxScale[i]!.toNumber(), p.dtype)).toBeLessThanOrEqual(HALF_ULP);
          expect(worst(decB('dgamma'), eb.dgamma, (c) => eb.dgammaScale[c]!.toNumber(), p.paramDtype)).toBeLessThanOrEqual(HALF_ULP);
        }),
        { numRuns: Math.max(20, Math.ceil(RUNS / 20)), seed: SEED },
      );
    });
  }
});
