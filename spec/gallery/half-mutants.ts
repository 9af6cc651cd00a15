/**
 * The half-precision gallery (issue 12): one small, otherwise correct mixed / pure half kernel
 * (computes in float64, rounds each output once to its dtype) with one of the bugs people ship
 * in mixed precision switched on:
 * - params-cast-to-half: float32 parameters cast down to float16 (a running variance above 65504
 *   becomes inf, y silently beta; apple/coreai-torch#54);
 * - stats-accumulated-in-half: the channel sums accumulated in float16 (4,096 values of 20 sum
 *   past 65504; tensorflow#7164, #8535);
 * - bessel-in-half: m / (m - 1) formed in float16 (m > 65504: inf / inf = NaN; tensorflow#30230);
 * - eps-rounded-to-half: eps held in float16 (1e-8 -> 0: a constant channel gives 0 / 0);
 * - centred-in-bfloat16: the mean rounded to bfloat16 before x - mean (cancellation at
 *   |mean| / std ~ 100).
 */
import type { Arr, BatchNormImplementation, DType, ForwardInferRequest, ForwardTrainRequest, Precision, Profile } from '../../src/contract/contract.js';
import { fieldDtype, numericRequest, toTyped } from '../../src/contract/dtypes.js';
import { SingleValuePerChannelError } from '../../src/contract/errors.js';
import { validateRequest } from '../../src/contract/layout.js';
import { roundToHalf } from '../../src/numerics/half.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../../src/contract/profiles.js';

export type HalfBug = 'none' | 'params-cast-to-half' | 'stats-accumulated-in-half' | 'bessel-in-half' | 'eps-rounded-to-half' | 'centred-in-bfloat16';

const h16 = (v: number) => roundToHalf(v, 'float16');
const bf16 = (v: number) => roundToHalf(v, 'bfloat16');

export function halfMutant(profile: Profile, bug: HalfBug, precisions: Precision[]): BatchNormImplementation {
  const out = (name: string, p: Precision, values: Float64Array): Arr => toTyped(fieldDtype(name, p), values);

  function forward(request: ForwardTrainRequest | ForwardInferRequest, training: boolean) {
    const { layout: L, dtype, paramDtype } = validateRequest(training ? 'forwardTrain' : 'forwardInfer', request);
    if (training && L.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, request.shape, request.axis);
    const p = { dtype, paramDtype } as { dtype: DType; paramDtype: DType };
    const req = numericRequest(request);
    const param = (a: Arr, c: number) => (bug === 'params-cast-to-half' ? h16(a[c]!) : a[c]!);
    let eps = effectiveEps(profile, req.eps);
    if (bug === 'eps-rounded-to-half') eps = h16(eps);
    const C = L.channels;
    const y = new Float64Array(L.numel);
    const mean = new Float64Array(C);
    const variance = new Float64Array(C);
    const runningMean = new Float64Array(C);
    const runningVar = new Float64Array(C);
    const idx = (c: number) => {
      const r: number[] = [];
      for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) r.push((o * C + c) * L.inner + i);
      return r;
    };
    const add = (a: number, b: number) => (bug === 'stats-accumulated-in-half' ? h16(a + b) : a + b);
    for (let c = 0; c < C; c++) {
      const ix = idx(c);
      let mu: number;
      let v: number;
      if (training) {
        let s = 0;
        for (const i of ix) s = add(s, req.x[i]!);
        mu = s / L.m;
        let q = 0;
        for (const i of ix) q = add(q, (req.x[i]! - mu) ** 2);
        v = q / L.m;
        mean[c] = mu;
        variance[c] = v;
        const { keep, take } = emaWeights(profile, (req as ForwardTrainRequest).momentum);
        const bessel = bug === 'bessel-in-half' && runningVarFactor(profile, L.m) !== 1 ? h16(L.m) / h16(L.m - 1) : runningVarFactor(profile, L.m);
        runningMean[c] = keep * param(req.runningMean, c) + take * mu;
        runningVar[c] = keep * param(req.runningVar, c) + take * bessel * v;
      } else {
        mu = param(req.runningMean, c);
        v = param(req.runningVar, c);
      }
      const centre = bug === 'centred-in-bfloat16' ? bf16(mu) : mu;
      const s = Math.sqrt(v + eps);
      for (const i of ix) y[i] = param(req.gamma, c) * ((req.x[i]! - centre) / s) + param(req.beta, c);
    }
    return { p, y, mean, variance, runningMean, runningVar };
  }

  return {
    name: `half-mutant:${bug}`,
    profile,
    dtypes: [...new Set(precisions.map((q) => q.dtype))],
    precisions,
    axes: 'any',
    accumulation: bug === 'stats-accumulated-in-half' ? undefined : { dtype: 'float64', order: 'sequential' },
    forwardTrain(req) {
      const r = forward(req, true);
      return {
        y: out('y', r.p, r.y),
        mean: out('mean', r.p, r.mean),
        variance: out('variance', r.p, r.variance),
        runningMean: out('runningMean', r.p, r.runningMean),
        runningVar: out('runningVar', r.p, r.runningVar),
      };
    },
    forwardInfer(req) {
      const r = forward(req, false);
      return { y: out('y', r.p, r.y) };
    },
  };
}
