// A plain, correct Batch Normalization in JavaScript: the bundled example that
// `npm run demo` checks. Two-pass statistics per channel, float64 sums (JS numbers),
// any rank and channel axis, float32 and float64. Copy it as a starting point for your own.
//
//   npx bn-conformance check examples/plain-bn.mjs                # as Keras
//
// The default export is the Keras one. For another convention export createPlainBatchNorm('pytorch')
// from your own module: `--profile pytorch` on this file holds the Keras export to PyTorch's rules,
// and its running statistics fail them (bn:running-stats:closed-form), as they should.

/** The conventions this file implements; see `bn-conformance explain` for what they mean. */
const PROFILES = {
  keras: { momentum: 'decay', runningVar: 'biased', singleValue: 'allowed' },
  tfjs: { momentum: 'decay', runningVar: 'biased', singleValue: 'allowed' },
  'tensorflow-fused': { momentum: 'decay', runningVar: 'unbiased', singleValue: 'allowed' },
  pytorch: { momentum: 'update-fraction', runningVar: 'unbiased', singleValue: 'error' },
  onnx: { momentum: 'decay', runningVar: 'biased', singleValue: 'allowed' },
  paper: { momentum: 'decay', runningVar: 'unbiased', singleValue: 'error' },
};

/** [outer, C, inner]: element (o, c, i) of a row-major tensor sits at (o*C + c)*inner + i. */
function layout(shape, axis) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { outer, C: shape[axis], inner, m: outer * inner };
}

function eachInChannel({ outer, C, inner }, c, fn) {
  for (let o = 0; o < outer; o++) {
    const base = (o * C + c) * inner;
    for (let i = base; i < base + inner; i++) fn(i);
  }
}

/** Two-pass mean and biased variance of every channel. */
function moments(x, L) {
  const mean = new Float64Array(L.C);
  const variance = new Float64Array(L.C);
  for (let c = 0; c < L.C; c++) {
    let s = 0;
    eachInChannel(L, c, (i) => (s += x[i]));
    const mu = s / L.m;
    let q = 0;
    eachInChannel(L, c, (i) => (q += (x[i] - mu) ** 2));
    mean[c] = mu;
    variance[c] = q / L.m;
  }
  return { mean, variance };
}

export function createPlainBatchNorm(profileName = 'keras') {
  const profile = PROFILES[profileName];
  if (!profile) throw new Error(`unknown profile ${profileName}`);
  const like = (x, n) => new x.constructor(n);
  const normalize = (x, L, mean, variance, gamma, beta, eps, y) => {
    for (let c = 0; c < L.C; c++) {
      const s = Math.sqrt(variance[c] + eps);
      eachInChannel(L, c, (i) => (y[i] = gamma[c] * ((x[i] - mean[c]) / s) + beta[c]));
    }
    return y;
  };
  return {
    name: `plain-js (${profileName})`,
    profile: profileName,
    dtypes: ['float32', 'float64'],
    axes: 'any',
    accumulation: { dtype: 'float64', order: 'sequential' },

    forwardTrain({ x, shape, axis, gamma, beta, eps, momentum, runningMean, runningVar }) {
      const L = layout(shape, axis);
      if (L.m === 1 && profile.singleValue === 'error') throw new Error('Expected more than 1 value per channel when training');
      const { mean, variance } = moments(x, L);
      const [keep, take] = profile.momentum === 'decay' ? [momentum, 1 - momentum] : [1 - momentum, momentum];
      const bessel = profile.runningVar === 'unbiased' ? L.m / Math.max(L.m - 1, 1) : 1;
      const rm = like(x, L.C);
      const rv = like(x, L.C);
      for (let c = 0; c < L.C; c++) {
        rm[c] = keep * runningMean[c] + take * mean[c];
        rv[c] = keep * runningVar[c] + take * bessel * variance[c];
      }
      const y = normalize(x, L, mean, variance, gamma, beta, eps, like(x, x.length));
      return { y, mean: new x.constructor(mean), variance: new x.constructor(variance), runningMean: rm, runningVar: rv };
    },

    forwardInfer({ x, shape, axis, gamma, beta, eps, runningMean, runningVar }) {
      return { y: normalize(x, layout(shape, axis), runningMean, runningVar, gamma, beta, eps, like(x, x.length)) };
    },

    backward({ x, dy, shape, axis, gamma, eps, training, runningMean, runningVar }) {
      const L = layout(shape, axis);
      if (training && L.m === 1 && profile.singleValue === 'error') throw new Error('Expected more than 1 value per channel when training');
      const { mean, variance } = training ? moments(x, L) : { mean: runningMean, variance: runningVar };
      const dx = like(x, x.length);
      const dgamma = like(x, L.C);
      const dbeta = like(x, L.C);
      for (let c = 0; c < L.C; c++) {
        const s = Math.sqrt(variance[c] + eps);
        let sumDy = 0;
        let sumDyXhat = 0;
        eachInChannel(L, c, (i) => {
          sumDy += dy[i];
          sumDyXhat += dy[i] * ((x[i] - mean[c]) / s);
        });
        dbeta[c] = sumDy;
        dgamma[c] = sumDyXhat;
        // training: the gradient also flows through the batch mean and variance
        eachInChannel(L, c, (i) => {
          const xhat = (x[i] - mean[c]) / s;
          dx[i] = training ? (gamma[c] / s) * (dy[i] - sumDy / L.m - (xhat * sumDyXhat) / L.m) : (gamma[c] / s) * dy[i];
        });
      }
      return { dx, dgamma, dbeta };
    },
  };
}

export default createPlainBatchNorm('keras');
