/**
 * A deliberately plain float32 Batch Normalization (forwardTrain only; every operation rounded to
 * float32, sequential float32 sums): the least accurate honest kernels the tolerance must accept
 * (two-pass; Welford; the folded x*inv + (beta - mean*inv) form of tf.nn.batch_normalization),
 * and the one-pass E[x^2] - E[x]^2 kernel it must reject at large offsets. Used by `explain`, the
 * plots, and spec/tolerance.spec.ts.
 */
import type { BatchNormImplementation, ForwardTrainRequest, ForwardTrainResult, Profile, ProfileName } from '../contract/contract.js';
import fc from 'fast-check';
import { layoutOf } from '../contract/layout.js';
import { effectiveEps, emaWeights, profiles, resolveProfile, runningVarFactor } from '../contract/profiles.js';

const f = Math.fround;

export type F32Variant = 'two-pass' | 'one-pass' | 'folded' | 'welford';

export function f32Train(profile: Profile, req: ForwardTrainRequest, variant: F32Variant): ForwardTrainResult {
  const L = layoutOf(req.shape, req.axis);
  const eps = f(effectiveEps(profile, req.eps));
  const { keep, take } = emaWeights(profile, req.momentum);
  const bessel = f(runningVarFactor(profile, L.m));
  const y = new Float32Array(L.numel);
  const mean = new Float32Array(L.channels);
  const variance = new Float32Array(L.channels);
  const runningMean = new Float32Array(L.channels);
  const runningVar = new Float32Array(L.channels);
  for (let c = 0; c < L.channels; c++) {
    const ix: number[] = [];
    for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) ix.push((o * L.channels + c) * L.inner + i);
    let mu = 0;
    let v = 0;
    if (variant === 'welford') {
      let n = 0;
      let m2 = 0;
      for (const i of ix) {
        n++;
        const d = f(req.x[i]! - mu);
        mu = f(mu + f(d / n));
        m2 = f(m2 + f(d * f(req.x[i]! - mu)));
      }
      v = f(m2 / L.m);
    } else {
      let s = 0;
      let s2 = 0;
      for (const i of ix) {
        s = f(s + req.x[i]!);
        s2 = f(s2 + f(req.x[i]! * req.x[i]!));
      }
      mu = f(s / L.m);
      if (variant === 'one-pass') v = f(f(s2 / L.m) - f(mu * mu));
      else {
        let q = 0;
        for (const i of ix) {
          const d = f(req.x[i]! - mu);
          q = f(q + f(d * d));
        }
        v = f(q / L.m);
      }
    }
    const inv = f(1 / f(Math.sqrt(f(v + eps))));
    const g = req.gamma[c]!;
    const b = req.beta[c]!;
    if (variant === 'folded') {
      const a = f(inv * g);
      const shift = f(b - f(mu * a));
      for (const i of ix) y[i] = f(f(req.x[i]! * a) + shift);
    } else for (const i of ix) y[i] = f(f(g * f(f(req.x[i]! - mu) * inv)) + b);
    mean[c] = mu;
    variance[c] = v;
    runningMean[c] = f(f(f(keep) * req.runningMean[c]!) + f(f(take) * mu));
    runningVar[c] = f(f(f(keep) * req.runningVar[c]!) + f(f(take) * f(v * bessel)));
  }
  return { y, mean, variance, runningMean, runningVar };
}

/**
 * A float32 training request whose channels sit at mean ~mu with spread ~sigma (uniform on
 * mu ± 1.7 sigma), gamma in [0.5, 1.5), beta in [-0.5, 0.5): the conditioning |mu| / sigma is what
 * the tolerance's ratios are measured against (spec/tolerance.spec.ts, scripts/tolerance-ratios.ts).
 */
export function conditionedRequest(shape: number[], axis: number, mu: number, sigma: number, rnd: () => number, eps = 1e-3): ForwardTrainRequest {
  const n = shape.reduce((p, q) => p * q, 1);
  const C = shape[axis]!;
  return {
    x: Float32Array.from({ length: n }, () => mu + sigma * (2 * rnd() - 1) * 1.7),
    shape,
    axis,
    gamma: Float32Array.from({ length: C }, () => 0.5 + rnd()),
    beta: Float32Array.from({ length: C }, () => rnd() - 0.5),
    eps,
    momentum: 0.9,
    runningMean: new Float32Array(C),
    runningVar: new Float32Array(C).fill(1),
  };
}

/** conditionedRequest on a seeded LCG stream: the same seed, the same request. */
export function seededConditionedRequest(shape: number[], axis: number, mu: number, sigma: number, seed: number, eps = 1e-3): ForwardTrainRequest {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
  return conditionedRequest(shape, axis, mu, sigma, rnd, eps);
}

/** Shapes of the honest-kernel property: tall, NCHW, NHWC, m = 2, m = 300. */
export const HONEST_SHAPES: ReadonlyArray<readonly [number[], number]> = [
  [[64, 3], 1],
  [[8, 2, 5, 5], 1],
  [[4, 6, 6, 3], 3],
  [[2, 2], 0],
  [[300, 2], 1],
];

/**
 * The honest-kernel property's inputs (spec/tolerance.spec.ts pins a seed, scripts/
 * sweep-honest-kernels.ts sweeps many): a profile and a request with sigma = 10^[-6, 4],
 * |mean| / sigma = 10^[0, 6], eps in {0, 1e-5, 1e-3, 1}; m = 1 only under a profile that allows it.
 */
export const honestCaseArb = fc
  .tuple(
    fc.constantFrom(...HONEST_SHAPES),
    fc.double({ min: -6, max: 4, noNaN: true }),
    fc.double({ min: 0, max: 6, noNaN: true }),
    fc.constantFrom(0, 1e-5, 1e-3, 1),
    fc.constantFrom(...Object.values(profiles)),
    fc.integer(),
  )
  .filter(([[shape, axis], , , , profile]) => shape.reduce((a, b) => a * b) / shape[axis]! > 1 || profile.singleValue === 'allowed')
  .map(([[shape, axis], logSigma, logRatio, eps, profile, seed]) => {
    const sigma = 10 ** logSigma;
    return { profile, req: seededConditionedRequest(shape, axis, sigma * 10 ** logRatio, sigma, seed, eps) };
  });

/** The kernel as an implementation (float32, any axis, forwardTrain only). */
export function createF32Kernel(variant: F32Variant, profile?: ProfileName | Profile): BatchNormImplementation {
  const p = resolveProfile(profile);
  return {
    name: `teach-f32-${variant}`,
    profile: p,
    dtypes: ['float32'],
    axes: 'any',
    // Welford updates a running mean per value: not sums, so not exact on data whose sums are
    // (src/judge/tolerance.ts exactness); it declares so
    accumulation: { dtype: 'float32', order: variant === 'welford' ? 'updates' : 'sequential' },
    forwardTrain: (req) => f32Train(p, req, variant),
  };
}
