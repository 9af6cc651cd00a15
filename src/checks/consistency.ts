/**
 * bn:consistency:* — training and inference tell the same story: inference with the running
 * statistics set to the batch's statistics reproduces the training output, and the statistics a
 * training step returns are those of this batch, per channel, over every other axis.
 */
import { problemArb, inferRequest, trainRequest } from '../arbitraries/problem.js';
import { runProperty } from '../harness/check.js';
import { layoutOf } from '../contract/layout.js';
import { rounder } from '../contract/dtypes.js';
import { unitRoundoff } from '../numerics/ulp.js';
import { SAFETY } from '../judge/tolerance.js';
import { expectation, expectClose, exactStats } from './common.js';
import type { CheckSpec } from './spec.js';

export const consistencyChecks: CheckSpec[] = [
  {
    family: 'consistency',
    name: 'infer-equals-train',
    title: 'inference with running statistics equal to the batch statistics reproduces the training output',
    needs: ['forwardTrain', 'forwardInfer'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const train = trainRequest(p);
        const yt = (await c.call('forwardTrain', train)).y;
        const { mean, variance, s } = exactStats(c, train);
        // the batch statistics, rounded to the parameters' dtype, become the running statistics
        const pd = p.paramDtype ?? p.dtype;
        const infer = inferRequest(p, { runningMean: Array.from(mean, rounder(pd)), runningVar: Array.from(variance, rounder(pd)) });
        const yi = (await c.call('forwardInfer', infer)).y;
        const et = expectation(c, 'forwardTrain', train);
        const ei = expectation(c, 'forwardInfer', infer);
        const u = unitRoundoff(ctx.paramDtype);
        const L = layoutOf(p.shape, p.axis);
        for (let i = 0; i < yt.length; i++) {
          const ch = Math.floor(i / L.inner) % L.channels;
          const xhat = (train.x[i]! - mean[ch]!) / s[ch]!;
          // rounding the statistics to the dtype moves the exact inference answer by at most this
          const rounding = (Math.abs(train.gamma[ch]!) * (u * Math.abs(mean[ch]!) + (Math.abs(xhat) * u * variance[ch]!) / (2 * s[ch]!))) / s[ch]!;
          // first order in the statistics' rounding, doubled like every first-order bound (SAFETY)
          expectClose(`inference y[${i}] vs training y[${i}]`, yi[i]!, yt[i]!, et.bounds.y![i]! + ei.bounds.y![i]! + SAFETY * rounding, et.reasons[ch]!);
        }
      }),
  },
  {
    family: 'consistency',
    name: 'batch-statistics',
    title: 'the mean and (biased) variance returned are those of this batch, per channel over every other axis',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const req = trainRequest(p);
        const got = await c.call('forwardTrain', req);
        const e = expectation(c, 'forwardTrain', req);
        for (let ch = 0; ch < req.gamma.length; ch++) {
          expectClose(`mean[${ch}]`, got.mean[ch]!, e.expected.mean![ch]!, e.bounds.mean![ch]!, e.reasons[ch]!, true, e.overflowAt?.mean);
          expectClose(`variance[${ch}] (biased, 1/m)`, got.variance[ch]!, e.expected.variance![ch]!, e.bounds.variance![ch]!, e.reasons[ch]!, true, e.overflowAt?.variance);
        }
      }),
  },
];
