/**
 * bn:invariance:* — what must not change y. Each compares two calls of the implementation;
 * each call may be off the exact answer by its own tolerance, so two results may differ by the
 * sum of both bounds. The transformed inputs are exact (grid shifts, power-of-two scales,
 * permutations), so the exact answers are related exactly.
 */
import { roundTo } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import fc from 'fast-check';
import { problemArb, trainRequest } from '../arbitraries/problem.js';
import { runProperty, Mismatch } from '../harness/check.js';
import { layoutOf } from '../contract/layout.js';
import { moveAxis, permuteAlong } from '../contract/tensor.js';
import { scaleBound, withinBound } from '../judge/tolerance.js';
import { channelIndices, expectation, expectClose, exactStats } from './common.js';
import type { CheckSpec } from './spec.js';

function compareY(
  what: string,
  ya: ArrayLike<number>,
  yb: ArrayLike<number>,
  ba: ArrayLike<number>,
  bb: ArrayLike<number>,
  map: (i: number) => number,
  reason: string,
): void {
  for (let i = 0; i < ya.length; i++) {
    const j = map(i);
    expectClose(`${what}: y[${i}]`, yb[j]!, ya[i]!, ba[i]! + bb[j]!, reason);
  }
}

export const invarianceChecks: CheckSpec[] = [
  {
    family: 'invariance',
    name: 'shift',
    title: 'adding a constant to every value of a channel leaves y and the variance unchanged',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(
        ctx,
        fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio: 12 }), fc.array(fc.integer({ min: -4096, max: 4096 }), { minLength: 16, maxLength: 16 })),
        async ([p, shifts], c) => {
          const a = trainRequest(p);
          const L = layoutOf(p.shape, p.axis);
          const channel = (i: number) => Math.floor(i / L.inner) % L.channels;
          const top = Math.max(...p.x.map(Math.abs));
          const unit = top > 0 ? 2 ** Math.floor(Math.log2(top)) : 1;
          const t = Array.from({ length: L.channels }, (_, ch) => shifts[ch % 16]! * unit);
          const x2 = p.x.map((v, i) => roundTo(p.dtype, v + t[channel(i)]!));
          // only shifts that are exact in the dtype: then the exact answers are identical
          fc.pre(x2.every((v, i) => v - t[channel(i)]! === p.x[i]));
          const b = trainRequest(p, { x: x2 });
          const ra = await c.call('forwardTrain', a);
          const rb = await c.call('forwardTrain', b);
          const ea = expectation(c, 'forwardTrain', a);
          const eb = expectation(c, 'forwardTrain', b);
          compareY(`shift by [${t.join(', ')}] per channel`, ra.y, rb.y, ea.bounds.y!, eb.bounds.y!, (i) => i, eb.reasons[0]!);
          for (let ch = 0; ch < L.channels; ch++) {
            expectClose(`variance of channel ${ch} after shift ${t[ch]}`, rb.variance[ch]!, ra.variance[ch]!, ea.bounds.variance![ch]! + eb.bounds.variance![ch]!, eb.reasons[ch]!);
          }
        },
      ),
  },
  {
    family: 'invariance',
    name: 'scale',
    title: 'scaling x by a > 0 leaves y unchanged up to the eps effect: y\' - beta = (y - beta) * a * sqrt(var + eps) / sqrt(a^2 var + eps)',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }), fc.integer({ min: -4, max: 4 })), async ([p, k], c) => {
        const a = 2 ** k; // power of two: a * x is exact (in half dtypes, unless it leaves the range)
        fc.pre(p.x.every((v) => roundTo(p.dtype, v * a) === v * a));
        const ra = trainRequest(p);
        const rb = trainRequest(p, { x: p.x.map((v) => v * a) });
        const ya = (await c.call('forwardTrain', ra)).y;
        const yb = (await c.call('forwardTrain', rb)).y;
        const ea = expectation(c, 'forwardTrain', ra);
        const eb = expectation(c, 'forwardTrain', rb);
        const { variance, eps } = exactStats(c, ra);
        const L = layoutOf(p.shape, p.axis);
        for (let i = 0; i < ya.length; i++) {
          const ch = Math.floor(i / L.inner) % L.channels;
          const v = variance[ch]!;
          const factor = (a * Math.sqrt(v + eps)) / Math.sqrt(a * a * v + eps);
          const beta = ra.beta[ch]!;
          const predicted = (ya[i]! - beta) * factor + beta;
          // our own float64 evaluation: factor carries 4u (two sqrt at 1.5u, one division), then
          // (ya - beta) u, the product u, the final + beta u|predicted|: 6u |t| + u |predicted|
          // with |t| = |predicted - beta| <= |predicted| + |beta|, so 7u (|predicted| + |beta|)
          const allowed = scaleBound(ea.bounds.y![i]!, factor) + eb.bounds.y![i]! + 7 * 2 ** -53 * (Math.abs(predicted) + Math.abs(beta));
          expectClose(`y[${i}] after scaling x by ${a} (eps factor ${factor})`, yb[i]!, predicted, allowed, eb.reasons[ch]!);
        }
      }),
  },
  {
    family: 'invariance',
    name: 'batch-permutation',
    title: 'permuting the samples of the batch permutes y the same way and leaves the statistics unchanged',
    needs: ['forwardTrain'],
    run: (ctx) =>
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }), fc.nat()), async ([p, seed], c) => {
        const sampleAxis = p.axis === 0 ? 1 : 0;
        const n = p.shape[sampleAxis]!;
        if (n < 2) return;
        const perm = Array.from({ length: n }, (_, k) => k);
        for (let k = n - 1; k > 0; k--) {
          const j = (seed * (k + 7)) % (k + 1);
          [perm[k], perm[j]] = [perm[j]!, perm[k]!];
        }
        const ra = trainRequest(p);
        const rb = trainRequest(p, { x: permuteAlong(p.x, p.shape, sampleAxis, perm) });
        const ga = await c.call('forwardTrain', ra);
        const gb = await c.call('forwardTrain', rb);
        const ea = expectation(c, 'forwardTrain', ra);
        const eb = expectation(c, 'forwardTrain', rb);
        // permute the first result like the input, then both must agree element by element
        const yaPermuted = permuteAlong(Array.from(ga.y), p.shape, sampleAxis, perm);
        const baPermuted = permuteAlong(Array.from(ea.bounds.y!), p.shape, sampleAxis, perm);
        compareY(`samples permuted by [${perm.join(', ')}] along axis ${sampleAxis}`, yaPermuted, gb.y, baPermuted, eb.bounds.y!, (i) => i, eb.reasons[0]!);
        for (let ch = 0; ch < ra.gamma.length; ch++) {
          expectClose(`mean of channel ${ch} after permuting`, gb.mean[ch]!, ga.mean[ch]!, ea.bounds.mean![ch]! + eb.bounds.mean![ch]!, eb.reasons[ch]!);
          expectClose(`variance of channel ${ch} after permuting`, gb.variance[ch]!, ga.variance[ch]!, ea.bounds.variance![ch]! + eb.bounds.variance![ch]!, eb.reasons[ch]!);
        }
      }),
  },
  {
    family: 'invariance',
    name: 'channel-independence',
    title: 'changing channel j never changes channel i\'s outputs or statistics: one batch, per-channel statistics',
    needs: ['forwardTrain'],
    skip: () => undefined,
    run: (ctx) =>
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio: 8 }), fc.nat(), fc.integer({ min: 2, max: 64 })), async ([p, pick, mult], c) => {
        const L = layoutOf(p.shape, p.axis);
        if (L.channels < 2) return;
        const j = pick % L.channels;
        // channel j: scaled by a power of two and moved far away; gamma and beta changed too
        // (half dtypes: by less, within float16's range, and rounded to the dtype)
        const half = isHalf(p.dtype);
        const k = half ? 2 : 2 ** Math.ceil(Math.log2(mult));
        const x2 = p.x.slice();
        for (const i of channelIndices(p.shape, p.axis, j)) x2[i] = roundTo(p.dtype, p.x[i]! * k + (half ? 512 : k * 1024));
        const ra = trainRequest(p);
        const rb = trainRequest(p, {
          x: x2,
          gamma: p.gamma.map((g, ch) => (ch === j ? -g * 2 : g)),
          beta: p.beta.map((b, ch) => (ch === j ? b + 3 : b)),
          runningMean: p.runningMean.map((v, ch) => (ch === j ? v + 5 : v)),
        });
        const ga = await c.call('forwardTrain', ra);
        const gb = await c.call('forwardTrain', rb);
        const ea = expectation(c, 'forwardTrain', ra);
        const eb = expectation(c, 'forwardTrain', rb);
        for (let ch = 0; ch < L.channels; ch++) {
          if (ch === j) continue;
          const why = `channel ${ch} changed when only channel ${j} did (statistics mixed across channels?)`;
          for (const i of channelIndices(p.shape, p.axis, ch)) {
            if (!withinBound(Math.abs(gb.y[i]! - ga.y[i]!), ea.bounds.y![i]! + eb.bounds.y![i]!)) {
              throw new Mismatch(`${why}: y[${i}] ${ga.y[i]} -> ${gb.y[i]}`, { boundReason: eb.reasons[ch]! });
            }
          }
          for (const out of ['mean', 'variance', 'runningMean', 'runningVar'] as const) {
            if (!withinBound(Math.abs(gb[out][ch]! - ga[out][ch]!), ea.bounds[out]![ch]! + eb.bounds[out]![ch]!)) {
              throw new Mismatch(`${why}: ${out}[${ch}] ${ga[out][ch]} -> ${gb[out][ch]}`, { boundReason: eb.reasons[ch]! });
            }
          }
        }
      }),
  },
  {
    family: 'invariance',
    name: 'layout',
    title: 'the same problem in channels-first and channels-last layouts gives the same y and statistics',
    needs: ['forwardTrain'],
    axes: 'one',
    skip: (ctx) => ((ctx.impl.axes ?? 'any') === 'any' ? undefined : `needs both layouts; the implementation declares axes '${ctx.impl.axes}'`),
    run: (ctx) =>
      runProperty(ctx, problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: 'first', minM: 2 }), async (p, c) => {
        const rank = p.shape.length;
        const last = moveAxis(p.x, p.shape, 1, rank - 1);
        const first = trainRequest(p);
        const lastReq = trainRequest(p, { x: last.data, shape: last.shape, axis: rank - 1 });
        const gf = await c.call('forwardTrain', first);
        const gl = await c.call('forwardTrain', lastReq);
        const ef = expectation(c, 'forwardTrain', first);
        const el = expectation(c, 'forwardTrain', lastReq);
        const yBack = moveAxis(Array.from(gl.y), last.shape, rank - 1, 1).data;
        const bBack = moveAxis(Array.from(el.bounds.y!), last.shape, rank - 1, 1).data;
        compareY(`channels-last [${last.shape.join(',')}] vs channels-first [${p.shape.join(',')}]`, gf.y, yBack, ef.bounds.y!, bBack, (i) => i, ef.reasons[0]!);
        for (let ch = 0; ch < first.gamma.length; ch++) {
          for (const out of ['mean', 'variance'] as const) {
            expectClose(`${out}[${ch}] channels-last vs channels-first`, gl[out][ch]!, gf[out][ch]!, ef.bounds[out]![ch]! + el.bounds[out]![ch]!, ef.reasons[ch]!);
          }
        }
      }),
  },
];
