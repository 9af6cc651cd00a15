// What a new user writes for mixed precision: float16 activations (x, dy, y, dx as Uint16Array bit
// patterns) with float32 parameters and statistics, as PyTorch autocast and ONNX T/U do. The
// values are decoded with bn-conformance/half, computed in float64, and every output is rounded
// once: y and dx to float16, the per-channel outputs to float32.
import { fromFloat16Bits, toFloat16Bits } from 'bn-conformance/half';

function layout(shape, axis) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { outer, C: shape[axis], inner, m: outer * inner };
}

function forChannel({ outer, C, inner }, c, fn) {
  for (let o = 0; o < outer; o++) for (let i = (o * C + c) * inner, end = i + inner; i < end; i++) fn(i);
}

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

/** y = gamma * (x - mean) / sqrt(variance + eps) + beta, in float64. */
function normalize(x, L, mean, variance, gamma, beta, eps) {
  const y = new Float64Array(x.length);
  for (let c = 0; c < L.C; c++) {
    const s = Math.sqrt(variance[c] + eps);
    forChannel(L, c, (i) => (y[i] = gamma[c] * ((x[i] - mean[c]) / s) + beta[c]));
  }
  return y;
}

export default {
  name: 'my-bn-f16',
  profile: 'pytorch',
  dtypes: ['float16'],
  precisions: [{ dtype: 'float16', paramDtype: 'float32' }],
  axes: 'any',
  accumulation: { dtype: 'float64', order: 'sequential' },

  forwardTrain({ x: xBits, shape, axis, gamma, beta, eps, momentum, runningMean, runningVar }) {
    const x = fromFloat16Bits(xBits);
    const L = layout(shape, axis);
    if (L.m === 1) throw new Error('Expected more than 1 value per channel when training');
    const { mean, variance } = moments(x, L);
    const rm = new Float32Array(L.C);
    const rv = new Float32Array(L.C);
    for (let c = 0; c < L.C; c++) {
      rm[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
      rv[c] = (1 - momentum) * runningVar[c] + momentum * variance[c] * (L.m / (L.m - 1));
    }
    return {
      y: toFloat16Bits(normalize(x, L, mean, variance, gamma, beta, eps)),
      mean: Float32Array.from(mean),
      variance: Float32Array.from(variance),
      runningMean: rm,
      runningVar: rv,
    };
  },

  forwardInfer({ x, shape, axis, gamma, beta, eps, runningMean, runningVar }) {
    return { y: toFloat16Bits(normalize(fromFloat16Bits(x), layout(shape, axis), runningMean, runningVar, gamma, beta, eps)) };
  },

  backward({ x: xBits, dy: dyBits, shape, axis, gamma, eps, training, runningMean, runningVar }) {
    const x = fromFloat16Bits(xBits);
    const dy = fromFloat16Bits(dyBits);
    const L = layout(shape, axis);
    if (training && L.m === 1) throw new Error('Expected more than 1 value per channel when training');
    const { mean, variance } = training ? moments(x, L) : { mean: runningMean, variance: runningVar };
    const dx = new Float64Array(x.length);
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
      forChannel(L, c, (i) => {
        const xhat = (x[i] - mean[c]) / s;
        dx[i] = training ? (gamma[c] / s) * (dy[i] - sumDy / L.m - (xhat * sumDyXhat) / L.m) : (gamma[c] / s) * dy[i];
      });
    }
    return { dx: toFloat16Bits(dx), dgamma, dbeta };
  },
};
