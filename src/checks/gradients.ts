/**
 * bn:gradients:* — the backward pass.
 * analytic-*: any implementation's dx, dgamma, dbeta agree with the reference's analytic
 *   gradient (training: through the batch statistics; inference: statistics constant).
 * finite-difference: a float64 implementation's backward agrees with central differences of its
 *   own forward (step and bound from the tolerance module). float32 has too few digits for
 *   differences to mean anything; there the analytic checks carry the weight.
 * identities: per channel, in training, sum dx = 0 and sum dx * x-hat = 0 (the gradient is
 *   orthogonal to the directions normalization removes); dbeta = sum dy; dgamma = sum dy * x-hat.
 */
import fc from 'fast-check';
import { backwardRequest, inferRequest, problemArb, trainRequest, type Problem } from '../arbitraries/problem.js';
import type { AnyRequest } from '../contract/contract.js';
import { Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import { CompensatedSum } from '../numerics/eft.js';
import { finiteDifferenceBound, finiteDifferenceStep, scaleBound, withinBound } from '../judge/tolerance.js';
import { callAndAgree, channelIndices, exactElement, expectation, expectClose, exactStats, weightedLoss } from './common.js';
import type { CheckSpec } from './spec.js';

/**
 * L = sum w_i y_i through the implementation's forward; returns L and its error bound: each y_i
 * within its tolerance of the exact forward (the expectation), plus our own summation's error.
 */
async function loss(c: CheckContext, p: Problem, training: boolean, over: Partial<Problem>): Promise<{ L: number; err: number }> {
  const req: AnyRequest = training ? trainRequest(p, over) : inferRequest(p, over);
  const y = (await c.call(training ? 'forwardTrain' : 'forwardInfer', req)).y;
  const e = expectation(c, training ? 'forwardTrain' : 'forwardInfer', req);
  return weightedLoss(y, p.dy, e.bounds.y!);
}

type Param = 'x' | 'gamma' | 'beta';

async function centralDifference(c: CheckContext, p: Problem, training: boolean, param: Param, index: number, h: number) {
  const at = async (delta: number) => {
    const values = p[param].slice();
    values[index] = values[index]! + delta; // exact: the caller checked exactStencil
    return loss(c, p, training, { [param]: values });
  };
  const [a, b] = [await at(h), await at(-h)];
  const [a2, b2] = [await at(2 * h), await at(-2 * h)];
  const dh = (a.L - b.L) / (2 * h);
  const d2h = (a2.L - b2.L) / (4 * h);
  return { dh, bound: finiteDifferenceBound(dh, d2h, h, Math.max(a.err, b.err, a2.err, b2.err)) };
}

function gradientProperty(training: boolean) {
  return (ctx: CheckContext) =>
    // small problems (maxDim 3) and moderate offsets (|mean| / spread <= 2^6): each run makes 13
    // calls; the step is derived from s for any offset (finiteDifferenceStep), and large offsets
    // are the edge and agreement families' job
    runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full', maxDim: 3, maxLogRatio: 6 }), fc.nat()), async ([p, pick], c) => {
      const breq = backwardRequest(p, training);
      const got = await c.call('backward', breq);
      const e = expectation(c, 'backward', breq);
      const { L, s, mean, eps } = exactStats(c, breq);
      const C = p.gamma.length;
      const channelOf = (i: number) => Math.floor(i / L.inner) % C;
      // the statistics the forward normalizes with: batch (training) or running (inference)
      const sUsed = (ch: number) => (training ? s[ch]! : Math.sqrt(p.runningVar[ch]! + eps));
      const muUsed = (ch: number) => (training ? mean[ch]! : p.runningMean[ch]!);
      const cases: Array<[Param, ReturnType<typeof exactElement>]> = [
        ['x', exactElement(ctx.dtype, p.x, pick % p.x.length, (i) => finiteDifferenceStep(ctx.dtype, sUsed(channelOf(i)), Math.abs(p.x[i]!) + Math.abs(muUsed(channelOf(i)))))],
        // L is linear in gamma and beta: no truncation, the step only has to dwarf their ulp
        ['gamma', exactElement(ctx.dtype, p.gamma, pick % C, (i) => finiteDifferenceStep(ctx.dtype, Math.max(Math.abs(p.gamma[i]!), 1), 0))],
        ['beta', exactElement(ctx.dtype, p.beta, pick % C, (i) => finiteDifferenceStep(ctx.dtype, Math.max(Math.abs(p.beta[i]!), 1), 0))],
      ];
      for (const [param, where] of cases) {
        if (!where) continue;
        const { index, h } = where;
        const out = param === 'x' ? 'dx' : param === 'gamma' ? 'dgamma' : 'dbeta';
        const analytic = got[out][index]!;
        const analyticBound = e.bounds[out]![index]!;
        const { dh, bound } = await centralDifference(c, p, training, param, index, h);
        // the difference's bound comes from the implementation's own forward: NaN there is its failure
        if (Number.isNaN(bound) || (!Number.isFinite(dh) && bound < Infinity)) {
          throw new Mismatch(`the implementation's forward gives a non-finite loss around ${param}[${index}] (central difference ${dh}) for finite inputs`, {
            boundReason: e.reasons[param === 'x' ? channelOf(index) : index]!,
          });
        }
        if (!withinBound(Math.abs(analytic - dh), bound + analyticBound)) {
          throw new Mismatch(
            `${out}[${index}] = ${analytic} but the central difference of the implementation's own forward gives ${dh} (step ${h.toExponential(2)}, allowed ${(bound + analyticBound).toExponential(3)})`,
            { boundReason: e.reasons[param === 'x' ? channelOf(index) : index]! },
          );
        }
      }
    });
}

export const gradientChecks: CheckSpec[] = [
  {
    family: 'gradients',
    name: 'analytic-training',
    title: 'training backward (through the batch statistics) agrees with the reference\'s analytic gradient',
    needs: ['backward'],
    run: (ctx) => runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => void (await callAndAgree(c, 'backward', backwardRequest(p, true), 'backward (training)'))),
  },
  {
    family: 'gradients',
    name: 'analytic-inference',
    title: 'inference backward (statistics constant: dx = dy * gamma / sqrt(runningVar + eps)) agrees with the reference',
    needs: ['backward'],
    run: (ctx) => runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => void (await callAndAgree(c, 'backward', backwardRequest(p, false), 'backward (inference)'))),
  },
  {
    family: 'gradients',
    name: 'finite-difference-training',
    title: 'float64: training backward agrees with central differences of the implementation\'s own training forward',
    needs: ['forwardTrain', 'backward'],
    skip: (ctx) => (ctx.dtype !== 'float64' || ctx.paramDtype !== 'float64' ? `central differences need float64; ${ctx.dtype} backward is held to the reference by analytic-training` : undefined),
    run: gradientProperty(true),
  },
  {
    family: 'gradients',
    name: 'finite-difference-inference',
    title: 'float64: inference backward agrees with central differences of the implementation\'s own inference forward',
    needs: ['forwardInfer', 'backward'],
    skip: (ctx) => (ctx.dtype !== 'float64' || ctx.paramDtype !== 'float64' ? `central differences need float64; ${ctx.dtype} backward is held to the reference by analytic-inference` : undefined),
    run: gradientProperty(false),
  },
  {
    family: 'gradients',
    name: 'identities',
    title:
      'training: per channel sum dx = 0 and sum dx * x-hat = gamma/s * sum(dy * x-hat) * eps/(var + eps) (zero only when eps = 0); dbeta = sum dy; dgamma = sum dy * x-hat',
    needs: ['backward'],
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const req = backwardRequest(p, true);
        const got = await c.call('backward', req);
        const e = expectation(c, 'backward', req);
        const { s, variance, eps, xhat: xhatOf } = exactStats(c, req);
        for (let ch = 0; ch < p.gamma.length; ch++) {
          const idx = channelIndices(p.shape, p.axis, ch);
          const sumDx = new CompensatedSum();
          const sumDxXhat = new CompensatedSum();
          const sumDy = new CompensatedSum();
          const sumDyXhat = new CompensatedSum();
          let bDx = 0;
          let bDxXhat = 0;
          let absDyXhat = 0;
          for (const i of idx) {
            const xhat = xhatOf(i, ch);
            sumDx.add(got.dx[i]!);
            sumDxXhat.add(got.dx[i]! * xhat);
            sumDy.add(req.dy[i]!);
            sumDyXhat.add(req.dy[i]! * xhat);
            absDyXhat += Math.abs(req.dy[i]! * xhat);
            bDx += e.bounds.dx![i]!;
            // our own float64 product dx * x-hat (a few u of it); a non-finite dx cannot widen the allowance
            const own = got.dx[i]! * xhat;
            bDxXhat += scaleBound(e.bounds.dx![i]!, xhat) + (Number.isFinite(own) ? 2 ** -50 * Math.abs(own) : 0);
          }
          const r = e.reasons[ch]!;
          expectClose(`sum of dx over channel ${ch}`, sumDx.value(), 0, bDx, r);
          // sum xhat^2 = m var/(var + eps), not m: the eps share of the projection survives
          const shrink = (Math.abs(req.gamma[ch]! / s[ch]!) * eps) / (variance[ch]! + eps);
          const eXhat = ((req.gamma[ch]! / s[ch]!) * sumDyXhat.value() * eps) / (variance[ch]! + eps);
          // our own float64 evaluation of eXhat: each dy * xhat carries ~2u, then ~4 roundings
          const ownError = shrink * 4 * 2 ** -53 * absDyXhat + 8 * 2 ** -53 * Math.abs(eXhat);
          expectClose(`sum of dx * x-hat over channel ${ch}`, sumDxXhat.value(), eXhat, bDxXhat + ownError, r);
          expectClose(`dbeta[${ch}] vs sum dy`, got.dbeta[ch]!, sumDy.value(), e.bounds.dbeta![ch]!, r);
          expectClose(`dgamma[${ch}] vs sum dy * x-hat`, got.dgamma[ch]!, sumDyXhat.value(), e.bounds.dgamma![ch]!, r);
        }
      }),
  },
];
