// What a new user writes from the README: a float32 Batch Normalization under PyTorch's rules
// (momentum is the update fraction, the running variance is unbiased, m = 1 is an error).
// Sums in float64 (JS numbers), every output rounded once to float32.

/** [outer, C, inner] of a row-major tensor: element (o, c, i) is at (o*C + c)*inner + i. */
function layout(shape, axis) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { outer, C: shape[axis], inner, m: outer * inner };
}

/** Call fn(i) for every index of channel c. */
function forChannel({ outer, C, inner }, c, fn) {
  for (let o = 0; o < outer; o++) for (let i = (o * C + c) * inner, end = i + inner; i < end; i++) fn(i);
}

/** Per channel: the mean and the biased (1/m) variance, two passes. */
function moments(x, L) {
  const mean = new Float64Array(L.C);
  const variance = new Float64Array(L.C);
  for (let c = 0; c < L.C; c++) {
    let s = 0;
    forChannel(L, c, (i) => (s += x[i]));
    const mu = s / L.m;
    let q = 0;
    forChannel(L, c, (i) => (q += (x[i] - mu) ** 2));
    mean[c] = mu;
    variance[c] = q / L.m;
  }
  return { mean, variance };
}

export default {
  name: 'my-bn',
  profile: 'pytorch',
  dtypes: ['float32'],
  axes: 'any',
  accumulation: { dtype: 'float64', order: 'sequential' },

  forwardTrain({ x, shape, axis, gamma, beta, eps, momentum, runningMean, runningVar }) {
    const L = layout(shape, axis);
    if (L.m === 1) throw new Error('Expected more than 1 value per channel when training');
    const { mean, variance } = moments(x, L);
    const y = new Float32Array(x.length);
    for (let c = 0; c < L.C; c++) {
      const s = Math.sqrt(variance[c] + eps);
      forChannel(L, c, (i) => (y[i] = gamma[c] * ((x[i] - mean[c]) / s) + beta[c]));
    }
    const rm = new Float32Array(L.C);
    const rv = new Float32Array(L.C);
    for (let c = 0; c < L.C; c++) {
      rm[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
      rv[c] = (1 - momentum) * runningVar[c] + momentum * variance[c] * (L.m / (L.m - 1));
    }
    return { y, mean: Float32Array.from(mean), variance: Float32Array.from(variance), runningMean: rm, runningVar: rv };
  },

  forwardInfer({ x, shape, axis, gamma, beta, eps, runningMean, runningVar }) {
    const L = layout(shape, axis);
    const y = new Float32Array(x.length);
    for (let c = 0; c < L.C; c++) {
      const s = Math.sqrt(runningVar[c] + eps);
      forChannel(L, c, (i) => (y[i] = gamma[c] * ((x[i] - runningMean[c]) / s) + beta[c]));
    }
    return { y };
  },

  backward({ x, dy, shape, axis, gamma, eps, training, runningMean, runningVar }) {
    const L = layout(shape, axis);
    if (training && L.m === 1) throw new Error('Expected more than 1 value per channel when training');
    const { mean, variance } = training ? moments(x, L) : { mean: runningMean, variance: runningVar };
    const dx = new Float32Array(x.length);
    const dgamma = new Float32Array(L.C);
    const dbeta = new Float32Array(L.C);
    for (let c = 0; c < L.C; c++) {
      const s = Math.sqrt(variance[c] + eps);
      let sumDy = 0;
      let sumDyXhat = 0;
      forChannel(L, c, (i) => {
        sumDy += dy[i];
        sumDyXhat += dy[i] * ((x[i] - mean[c]) / s);
      });
      dbeta[c] = sumDy;
      dgamma[c] = sumDyXhat;
      // in training the gradient also flows through the batch mean and variance
      forChannel(L, c, (i) => {
        const xhat = (x[i] - mean[c]) / s;
        dx[i] = training ? (gamma[c] / s) * (dy[i] - sumDy / L.m - (xhat * sumDyXhat) / L.m) : (gamma[c] / s) * dy[i];
      });
    }
    return { dx, dgamma, dbeta };
  },
};
