/**
 * bn:agreement:* — every output of the implementation is within the tolerance function of the
 * reference on random problems (the edge-case family covers the named corners).
 */
import { inferRequest, problemArb, trainRequest } from '../arbitraries/problem.js';
import { runProperty } from '../harness/check.js';
import { callAndAgree } from './common.js';
import type { CheckSpec } from './spec.js';

export const agreementChecks: CheckSpec[] = [
  {
    family: 'agreement',
    name: 'forward-train',
    title: 'every training output (y, mean, variance, running statistics) is within the tolerance of the reference',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        await callAndAgree(c, 'forwardTrain', trainRequest(p));
      }),
  },
  {
    family: 'agreement',
    name: 'forward-infer',
    title: 'the inference output is within the tolerance of the reference',
    needs: ['forwardInfer'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        await callAndAgree(c, 'forwardInfer', inferRequest(p));
      }),
  },
];
