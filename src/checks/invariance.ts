/**
 * bn:invariance:* — what must not change y. Each compares two calls of the implementation;
 * each call may be off the exact answer by its own tolerance, so two results may differ by the
 * sum of both bounds. The transformed inputs are exact (grid shifts, power-of-two scales,
 * permutations), so the exact answers are related exactly.
 */
import type { DType } from '../contract/contract.js';
import { roundTo } from '../contract/dtypes.js';
import { HALF_FORMATS, isHalf } from '../numerics/half.js';
import { ulp, unitRoundoff } from '../numerics/ulp.js';
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

/**
 * Per check: runs that compared two calls, and runs whose precondition did not hold (they compare
 * nothing; fast-check counts them as skipped). The arbitraries below generate what each property
 * needs, so `missed` stays 0 (spec/harness/replay.spec.ts asserts it over every dtype); the
 * guards stay as a net, counted here, never a silent pass.
 */
export const invarianceRuns: Record<string, { compared: number; missed: number }> = {};
const tally = (name: string, ok: boolean): boolean => {
  const t = (invarianceRuns[name] ??= { compared: 0, missed: 0 });
  if (ok) t.compared++;
  else t.missed++;
  return ok;
};

/** Significand bits p (unit roundoff 2^-p), largest finite value, smallest subnormal of a dtype. */
function formatOf(dtype: DType): { p: number; max: number; tiny: number } {
  const max = isHalf(dtype) ? HALF_FORMATS[dtype].max : dtype === 'float32' ? (2 - 2 ** -23) * 2 ** 127 : Number.MAX_VALUE;
  return { p: -Math.log2(unitRoundoff(dtype)), max, tiny: ulp(0, dtype) };
}

/** The largest power of two dividing every value (each a dtype value); Infinity when all are 0. */
function pow2Divisor(values: number[]): number {
  let g = Infinity;
  for (const v of values) {
    if (v === 0) continue;
    let d = Math.min(g, 2 ** Math.floor(Math.log2(Math.abs(v))));
    while ((v / d) % 1 !== 0) d /= 2;
    g = d;
  }
  return g;
}

/**
 * The shifts that keep a channel exact. Its values are multiples of g (a power of two, pow2Divisor)
 * and the shift t = s * unit is a multiple of the power of two unit, so x + t is a multiple of
 * h = min(g, unit). A multiple k * h of a power of two h >= the dtype's smallest subnormal is a
 * dtype value when |k * h| <= min(2^p h, max): |k| <= 2^p fits the p-bit significand (2^p itself
 * is a power of two) and below the largest finite value nothing rounds or overflows (h >= tiny
 * holds: h is unit or g, both >= the value grid's 2^-6). So s may range over
 * [ceil((-L - lo) / unit), floor((L - hi) / unit)] with L = min(2^p h, max) and lo, hi the
 * channel's extremes; 0 is inside (|x| <= L: x = m g with m odd and below 2^p, or, when h = unit,
 * |x| <= top < 2 unit). Returned as [smin, smax].
 */
export function shiftRange(values: number[], unit: number, dtype: DType): [number, number] {
  const { p, max } = formatOf(dtype);
  const h = Math.min(pow2Divisor(values), unit);
  const L = Math.min(2 ** p * h, max);
  const lo = values.reduce((a, b) => Math.min(a, b), Infinity);
  const hi = values.reduce((a, b) => Math.max(a, b), -Infinity);
  return [Math.ceil((-L - lo) / unit), Math.floor((L - hi) / unit)];
}

/**
 * The power-of-two exponents k in [-4, 4] that keep every a * x (a = 2^k) exact. Scaling by a
 * power of two keeps each significand, so a * x is a dtype value unless it overflows or drops
 * below the subnormal grid: k <= log2(max / maxAbs) and 2^k g >= tiny, g the largest power of
 * two dividing every x (then each a * x is a multiple of the subnormal spacing, exact in the
 * subnormal range too). Returned as [kmin, kmax], containing 0.
 */
export function scaleRange(values: number[], dtype: DType): [number, number] {
  const { max, tiny } = formatOf(dtype);
  const top = values.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const g = pow2Divisor(values);
  let kmax = 4;
  while (kmax > 0 && top * 2 ** kmax > max) kmax--;
  let kmin = -4;
  while (kmin < 0 && g * 2 ** kmin < tiny) kmin++;
  return [kmin, kmax];
}

export const clamp = (v: number, [lo, hi]: [number, number]) => Math.min(hi, Math.max(lo, v));

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
          const top = p.x.reduce((a, v) => Math.max(a, Math.abs(v)), 0); // (no spread: m reaches 2^17)
          const unit = top > 0 ? 2 ** Math.floor(Math.log2(top)) : 1;
          // each channel's shift clamped to those that keep it exact in the dtype (shiftRange):
          // then the exact answers are identical (half dtypes reach their largest exact shifts)
          const t = Array.from({ length: L.channels }, (_, ch) => {
            const xs = channelIndices(p.shape, p.axis, ch).map((i) => p.x[i]!);
            return clamp(shifts[ch % 16]!, shiftRange(xs, unit, p.dtype)) * unit;
          });
          const x2 = p.x.map((v, i) => roundTo(p.dtype, v + t[channel(i)]!));
          fc.pre(tally('shift', x2.every((v, i) => v - t[channel(i)]! === p.x[i])));
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
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }), fc.integer({ min: -4, max: 4 })), async ([p, k0], c) => {
        // a power of two within the range that keeps a * x exact (scaleRange: half dtypes overflow
        // past 2^4 * their largest grid values)
        const a = 2 ** clamp(k0, scaleRange(p.x, p.dtype));
        fc.pre(tally('scale', p.x.every((v) => roundTo(p.dtype, v * a) === v * a)));
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
      // minBatch: at least two samples to permute (the axis problemArb grows is this sampleAxis)
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, minBatch: 2 }), fc.nat()), async ([p, seed], c) => {
        const sampleAxis = p.axis === 0 ? 1 : 0;
        const n = p.shape[sampleAxis]!;
        fc.pre(tally('batch-permutation', n >= 2));
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
      // minChannels: two channels at least, one to change and one to watch
      runProperty(ctx, fc.tuple(problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio: 8, minChannels: 2 }), fc.nat(), fc.integer({ min: 2, max: 64 })), async ([p, pick, mult], c) => {
        const L = layoutOf(p.shape, p.axis);
        fc.pre(tally('channel-independence', L.channels >= 2));
        const j = pick % L.channels;
        // channel j: scaled by a power of two and moved far away; gamma and beta changed too
        // (half dtypes: by less, within float16's range, and rounded to the dtype)
        const half = isHalf(p.dtype);
        const k = half ? 2 : 2 ** Math.ceil(Math.log2(mult));
        const x2 = p.x.slice();
        for (const i of channelIndices(p.shape, p.axis, j)) x2[i] = roundTo(p.dtype, p.x[i]! * k + (half ? 512 : k * 1024));
        const pd = p.paramDtype ?? p.dtype;
        const ra = trainRequest(p);
        const rb = trainRequest(p, {
          x: x2,
          gamma: p.gamma.map((g, ch) => (ch === j ? -g * 2 : g)),
          beta: p.beta.map((b, ch) => (ch === j ? roundTo(pd, b + 3) : b)),
          runningMean: p.runningMean.map((v, ch) => (ch === j ? roundTo(pd, v + 5) : v)),
        });
        const ga = await c.call('forwardTrain', ra);
        const gb = await c.call('forwardTrain', rb);
        const ea = expectation(c, 'forwardTrain', ra);
        const eb = expectation(c, 'forwardTrain', rb);
        for (let ch = 0; ch < L.channels; ch++) {
          if (ch === j) continue;
          const why = `channel ${ch} changed when only channel ${j} did (statistics mixed across channels?)`;
          for (const i of channelIndices(p.shape, p.axis, ch)) {
            // the same bits are unchanged, Infinity included (a variance past paramDtype's range)
            if (!Object.is(gb.y[i], ga.y[i]) && !withinBound(Math.abs(gb.y[i]! - ga.y[i]!), ea.bounds.y![i]! + eb.bounds.y![i]!)) {
              throw new Mismatch(`${why}: y[${i}] ${ga.y[i]} -> ${gb.y[i]}`, { boundReason: eb.reasons[ch]! });
            }
          }
          for (const out of ['mean', 'variance', 'runningMean', 'runningVar'] as const) {
            if (!Object.is(gb[out][ch], ga[out][ch]) && !withinBound(Math.abs(gb[out][ch]! - ga[out][ch]!), ea.bounds[out]![ch]! + eb.bounds[out]![ch]!)) {
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
        tally('layout', true);
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
