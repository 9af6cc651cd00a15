// A broken Batch Normalization, on purpose: the plain example with its variance computed in one
// pass, E[x^2] - E[x]^2, in float32 (as Keras 3's torch/numpy backends and XLA's expander still
// do). It is fine on centred data and wrong at large offsets:
//
//   npx bn-conformance check examples/broken/one-pass-float32.mjs --seed 1
import { createPlainBatchNorm } from '../plain-bn.mjs';

const plain = createPlainBatchNorm('keras');
const f = Math.fround;

function onePassMoments(x, shape, axis) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const C = shape[axis];
  const m = outer * inner;
  const mean = new x.constructor(C);
  const variance = new x.constructor(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    let s2 = 0;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const v = x[(o * C + c) * inner + i];
        s = f(s + v);
        s2 = f(s2 + f(v * v));
      }
    }
    const mu = f(s / m);
    mean[c] = mu;
    variance[c] = f(f(s2 / m) - f(mu * mu)); // catastrophic cancellation when |mean| >> std
  }
  return { mean, variance };
}

export default {
  ...plain,
  name: 'one-pass float32 variance (broken on purpose)',
  dtypes: ['float32'],
  accumulation: { dtype: 'float32', order: 'sequential' },
  forwardTrain(req) {
    const { mean, variance } = onePassMoments(req.x, req.shape, req.axis);
    const { y } = plain.forwardInfer({ ...req, runningMean: mean, runningVar: variance });
    const keep = req.momentum;
    const runningMean = req.runningMean.map((r, c) => keep * r + (1 - keep) * mean[c]);
    const runningVar = req.runningVar.map((r, c) => keep * r + (1 - keep) * variance[c]);
    return { y, mean, variance, runningMean, runningVar };
  },
};
