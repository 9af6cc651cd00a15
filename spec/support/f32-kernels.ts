/**
 * Float32 kernels written to compute every operation in float32 (Math.fround after each op),
 * with sequential float32 sums: the least accurate honest kernel the tolerance must accept, and
 * its one-pass twin that the tolerance must reject at large offsets.
 */
import type { ForwardTrainRequest, ForwardTrainResult, Profile } from '../../src/contract.js';
import { layoutOf } from '../../src/layout.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../../src/profiles.js';

const f = Math.fround;

export type Variant = 'two-pass' | 'one-pass' | 'folded' | 'welford';

export function f32ForwardTrain(profile: Profile, req: ForwardTrainRequest, variant: Variant): ForwardTrainResult {
  const L = layoutOf(req.shape, req.axis);
  const eps = f(effectiveEps(profile, req.eps));
  const { keep, take } = emaWeights(profile, req.momentum);
  const bessel = f(runningVarFactor(profile, L.m));
  const y = new Float32Array(L.numel);
  const mean = new Float32Array(L.channels);
  const variance = new Float32Array(L.channels);
  const runningMean = new Float32Array(L.channels);
  const runningVar = new Float32Array(L.channels);
  const idx = (c: number) => {
    const out: number[] = [];
    for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) out.push((o * L.channels + c) * L.inner + i);
    return out;
  };
  for (let c = 0; c < L.channels; c++) {
    const ix = idx(c);
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
    for (const i of ix) {
      if (variant === 'folded') {
        const a = f(inv * g);
        y[i] = f(f(req.x[i]! * a) + f(b - f(mu * a)));
      } else y[i] = f(f(g * f(f(req.x[i]! - mu) * inv)) + b);
    }
    mean[c] = mu;
    variance[c] = v;
    runningMean[c] = f(f(f(keep) * req.runningMean[c]!) + f(f(take) * mu));
    runningVar[c] = f(f(f(keep) * req.runningVar[c]!) + f(f(take) * f(v * bessel)));
  }
  return { y, mean, variance, runningMean, runningVar };
}
