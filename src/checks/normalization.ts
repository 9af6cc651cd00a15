/**
 * bn:normalization:* — what normalization means, checked from the outputs alone (no reference
 * output is compared): with gamma = 1 and beta = 0 each channel of y has mean 0 and variance
 * var / (var + eps); and y = gamma * x-hat + beta for any gamma, beta.
 */
import { problemArb, trainRequest } from '../arbitraries/problem.js';
import { runProperty } from '../harness/check.js';
import { scaleBound } from '../judge/tolerance.js';
import { channelIndices, expectation, expectClose, exactStats } from './common.js';
import type { CheckSpec } from './spec.js';

const U64 = 2 ** -53;

export const normalizationChecks: CheckSpec[] = [
  {
    family: 'normalization',
    name: 'zero-mean',
    title: 'with gamma = 1, beta = 0, each channel of y has mean 0',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const req = trainRequest(p, { gamma: p.gamma.map(() => 1), beta: p.beta.map(() => 0) });
        const got = await c.call('forwardTrain', req);
        const e = expectation(c, 'forwardTrain', req);
        const C = req.gamma.length;
        for (let ch = 0; ch < C; ch++) {
          const idx = channelIndices(req.shape, req.axis, ch);
          let sum = 0;
          let allowed = 0;
          let abs = 0;
          for (const i of idx) {
            sum += got.y[i]!;
            allowed += e.bounds.y![i]!;
            abs += Math.abs(e.expected.y![i]!);
          }
          // the mean of exact y is exactly 0; each y_i may be off by its bound; our own float64
          // sum adds at most m * u64 * sum|y| (bounds from exact values: a NaN output cannot widen them)
          const m = idx.length;
          expectClose(`mean of y over channel ${ch}`, sum / m, 0, allowed / m + m * U64 * (abs / m), e.reasons[ch]!);
        }
      }),
  },
  {
    family: 'normalization',
    name: 'variance',
    title: 'with gamma = 1, beta = 0, each channel of y has variance var/(var + eps): unit variance only when var >> eps',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full', eps: [1e-3, 1e-5, 0.1, 1, 10] }), async (p, c) => {
        const req = trainRequest(p, { gamma: p.gamma.map(() => 1), beta: p.beta.map(() => 0) });
        const got = await c.call('forwardTrain', req);
        const e = expectation(c, 'forwardTrain', req);
        const { variance, eps } = exactStats(c, req);
        for (let ch = 0; ch < req.gamma.length; ch++) {
          const idx = channelIndices(req.shape, req.axis, ch);
          const m = idx.length;
          let mean = 0;
          let bMean = 0;
          for (const i of idx) {
            mean += got.y[i]!;
            bMean += e.bounds.y![i]!;
          }
          mean /= m;
          bMean /= m;
          let v = 0;
          let allowed = 0;
          for (const i of idx) {
            const d = got.y[i]! - mean;
            v += d * d;
            const exact = Math.abs(e.expected.y![i]! - req.beta[ch]!);
            // y_i = y*_i + e_i, mean = mean* + e (|e| <= bMean), d* = y*_i - beta: the squared deviation
            // moves by 2 d* (e_i - e) + (e_i - e)^2, |e_i - e| <= b_i + bMean; |d*| <= exact (+ 2 bMean slack)
            allowed += 2 * (exact + 2 * bMean) * (e.bounds.y![i]! + bMean) + (e.bounds.y![i]! + bMean) ** 2;
          }
          v /= m;
          allowed = allowed / m + 4 * m * U64 * (variance[ch]! / (variance[ch]! + eps));
          const expected = variance[ch]! / (variance[ch]! + eps);
          expectClose(`variance of y over channel ${ch} (var=${variance[ch]}, eps=${eps})`, v, expected, allowed, e.reasons[ch]!);
        }
      }),
  },
  {
    family: 'normalization',
    name: 'affine',
    title: 'y = gamma * x-hat + beta: the output for (gamma, beta) is gamma times the output for (1, 0), plus beta',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const plain = trainRequest(p, { gamma: p.gamma.map(() => 1), beta: p.beta.map(() => 0) });
        const affine = trainRequest(p);
        const y0 = (await c.call('forwardTrain', plain)).y;
        const y1 = (await c.call('forwardTrain', affine)).y;
        const e0 = expectation(c, 'forwardTrain', plain);
        const e1 = expectation(c, 'forwardTrain', affine);
        for (let ch = 0; ch < affine.gamma.length; ch++) {
          const g = affine.gamma[ch]!;
          const b = affine.beta[ch]!;
          for (const i of channelIndices(plain.shape, plain.axis, ch)) {
            const predicted = g * y0[i]! + b;
            const allowed = scaleBound(e0.bounds.y![i]!, g) + e1.bounds.y![i]! + 2 * U64 * (Math.abs(predicted) + Math.abs(b));
            expectClose(`y[${i}] with gamma=${g}, beta=${b} vs gamma*y(1,0)+beta`, y1[i]!, predicted, allowed, e1.reasons[ch]!);
          }
        }
      }),
  },
];
