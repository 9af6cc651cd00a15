/**
 * <op>:invariance:* — what must not change y, and (RMSNorm) what must. Each compares two calls of
 * the implementation; each result may be off the exact answer by its own bound, so two results may
 * differ by the sum of both (bn:invariance's argument). The transformed inputs are exact (grid
 * shifts, power-of-two scalings: the ranges of src/checks/invariance.ts shiftRange / scaleRange),
 * so the exact answers are related exactly.
 * - shift (LayerNorm, GroupNorm, InstanceNorm): a constant per statistics group leaves y and
 *   invStdDev unchanged and moves the mean by it.
 * - scale (every op): x -> a x, a > 0: y' - beta = (y - beta) a sqrt(v + eps) / sqrt(a^2 v + eps),
 *   v the group's variance (RMSNorm: its mean square).
 * - not-shift-invariant (RMSNorm): a shift must change y (an implementation that centres fails).
 * - sample-independence (every op): changing one sample (axis 0) changes no other sample's output,
 *   forward or backward: the mirror of BN's batch coupling.
 * - layout (GroupNorm, InstanceNorm): channels-first and channels-last give the same answers.
 */
import fc from 'fast-check';
import { familyBackwardRequest, familyGrouping, familyProblemArb, familyRequest, type FamilyProblem } from '../arbitraries/family.js';
import type { FamilyRequest } from '../contract/contract.js';
import { roundTo } from '../contract/dtypes.js';
import { InternalError } from '../contract/errors.js';
import { indicesOf, paramOf } from '../contract/grouping.js';
import { moveAxis } from '../contract/tensor.js';
import { Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import type { Expectation } from '../judge/compare.js';
import { scaleBound, withinBound } from '../judge/tolerance.js';
import { isHalf } from '../numerics/half.js';
import { expectClose } from './common.js';
import { callFamily, exactGroupStats, expectApart, FAMILY_TARGETS, familyExpectation, familySpec, type FamilyTarget, type Outputs } from './family-common.js';
import { clamp, scaleRange, shiftRange } from './invariance.js';
import type { CheckSpec } from './spec.js';

const U64 = 2 ** -53;

/** Both calls' results of a family op and their expectations. */
async function both(c: CheckContext, op: FamilyTarget['forward'] | FamilyTarget['backward'], a: FamilyRequest, b: FamilyRequest) {
  const ga = await callFamily(c, op, a);
  const gb = await callFamily(c, op, b);
  return { ga, gb, ea: familyExpectation(c, op, a), eb: familyExpectation(c, op, b) };
}

/** Whether an optional output (mean, invStdDev) came back from both calls. */
const bothHave = (a: Outputs, b: Outputs, o: string) => a[o] !== undefined && b[o] !== undefined;

/** x transformed value by value, each result exact in the dtype by construction (an InternalError otherwise, never a verdict). */
function exactly(p: FamilyProblem, what: string, fn: (v: number, i: number) => number, undo: (w: number, i: number) => number): number[] {
  return p.x.map((v, i) => {
    const w = fn(v, i);
    if (roundTo(p.dtype, w) !== w || undo(w, i) !== v) throw new InternalError(`${what} of x[${i}] = ${v} is not exact in ${p.dtype}`);
    return w;
  });
}
const shifted = (p: FamilyProblem, t: (i: number) => number) => exactly(p, 'shift', (v, i) => v + t(i), (w, i) => w - t(i));

function shift(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'invariance',
    name: 'shift',
    title: `${t.name}: adding a constant to every value of a statistics group leaves y and invStdDev unchanged and moves the mean by it`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(
        ctx,
        fc.tuple(
          familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio: 12 }),
          fc.array(fc.integer({ min: -4096, max: 4096 }), { minLength: 16, maxLength: 16 }),
        ),
        async ([p, shifts], c) => {
          const G = familyGrouping(p);
          const top = p.x.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
          const unit = top > 0 ? 2 ** Math.floor(Math.log2(top)) : 1;
          // each group's shift clamped to those that keep it exact in the dtype (shiftRange)
          const tg = Array.from({ length: G.groups }, (_, g) => {
            const xs = Array.from(indicesOf(G, g), (i) => p.x[i]!);
            return clamp(shifts[g % 16]!, shiftRange(xs, unit, p.dtype)) * unit;
          });
          const { group } = exactGroupStats(c, t.forward, familyRequest(p));
          const a = familyRequest(p);
          const b = familyRequest(p, { x: shifted(p, (i) => tg[group(i)]!) });
          const { ga, gb, ea, eb } = await both(c, t.forward, a, b);
          for (let i = 0; i < G.numel; i++) {
            // (every group shifted by its own constant, 0 included: "expected" is the output before)
            expectClose(`${eb.where?.('y', i) ?? `y[${i}]`} with every group shifted (this one by ${tg[group(i)]}), against the output before`, gb.y![i]!, ga.y![i]!, ea.bounds.y![i]! + eb.bounds.y![i]!, eb.reasons[group(i)]!);
          }
          for (let g = 0; g < G.groups; g++) {
            if (bothHave(ga, gb, 'invStdDev')) {
              expectClose(`invStdDev[${g}] after shifting the group by ${tg[g]}`, gb.invStdDev![g]!, ga.invStdDev![g]!, ea.bounds.invStdDev![g]! + eb.bounds.invStdDev![g]!, eb.reasons[g]!);
            }
            if (bothHave(ga, gb, 'mean')) {
              // mean_a + t in float64: one more rounding, u64 of it; a mean past paramDtype's range
              // is an honest ±Infinity there (float64 data, float16 statistics: 65536 + t): overflowAt
              const predicted = ga.mean![g]! + tg[g]!;
              const bound = ea.bounds.mean![g]! + eb.bounds.mean![g]! + U64 * Math.abs(predicted);
              expectClose(`mean[${g}] after shifting the group by ${tg[g]}`, gb.mean![g]!, predicted, bound, eb.reasons[g]!, true, eb.overflowAt?.mean);
            }
          }
        },
      ),
  });
}

function scale(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'invariance',
    name: 'scale',
    title: `${t.name}: scaling x by a > 0 leaves y unchanged up to the eps effect: y' - beta = (y - beta) a sqrt(v + eps) / sqrt(a^2 v + eps), v the group's ${t.centred ? 'variance' : 'mean square'}`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(ctx, fc.tuple(familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }), fc.integer({ min: -4, max: 4 })), async ([p, k0], c) => {
        // a power of two within the range that keeps every a x exact (scaleRange)
        const a = 2 ** clamp(k0, scaleRange(p.x, p.dtype));
        const ra = familyRequest(p);
        const rb = familyRequest(p, { x: exactly(p, `scaling by ${a}`, (v) => v * a, (w) => w / a) });
        const { ga, gb, ea, eb } = await both(c, t.forward, ra, rb);
        const { G, variance, eps, group } = exactGroupStats(c, t.forward, ra);
        for (let i = 0; i < G.numel; i++) {
          const g = group(i);
          const v = variance[g]!;
          const factor = (a * Math.sqrt(v + eps)) / Math.sqrt(a * a * v + eps);
          const beta = t.hasBeta ? p.beta[paramOf(G, i)]! : 0;
          const predicted = (ga.y![i]! - beta) * factor + beta;
          // our own float64 evaluation (bn:invariance:scale's): factor 4u, then (ya - beta), the
          // product and + beta: 7u (|predicted| + |beta|)
          const allowed = scaleBound(ea.bounds.y![i]!, factor) + eb.bounds.y![i]! + 7 * U64 * (Math.abs(predicted) + Math.abs(beta));
          expectClose(`${eb.where?.('y', i) ?? `y[${i}]`} after scaling x by ${a} (eps factor ${factor})`, gb.y![i]!, predicted, allowed, eb.reasons[g]!);
        }
      }),
  });
}

/**
 * RMSNorm must not be shift-invariant. Per row, with A = max|x| at element j (sign s; s = 1 for a
 * zero row) and T the power of two >= max(2A, sqrt(eps)), shift the row by -s T. At j the two
 * exact outputs have opposite signs (or the first is 0), so they differ by at least
 *   |gamma_j| (T - A) / sqrt(ms' + eps) >= |gamma_j| (T / 2) / sqrt(2.25 T^2 + T^2) > 0.27 |gamma_j|
 * (ms' = mean((x - s T)^2) <= (T + A)^2 <= 2.25 T^2, eps <= T^2). The check requires the
 * implementation's two outputs at j to differ by more than the sum of their bounds: an honest one
 * passes whenever that sum is below half of the exact difference, which holds for every dtype at
 * the sizes drawn (|y_j| <= |gamma_j| sqrt(m), m <= 64: bfloat16's bound ~ 2^-8 * 8 |gamma_j|);
 * one that centres gives two equal outputs and fails. Exact shifts: x = k 2^scale with
 * |k| <= 2^r + 8 and T <= 4A (or T <= 1 from eps, then A < T / 2), so x - s T = k' 2^scale with
 * |k'| <= 6 (2^r + 8): within float16's 11 bits for r <= 8, bfloat16's 8 for r <= 5.
 */
function notShiftInvariant(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'invariance',
    name: 'not-shift-invariant',
    title: `${t.name} is NOT shift-invariant: adding a constant to a row changes y (the two results differ by more than their bounds; an implementation that centres fails)`,
    needs: [t.forward],
    run: (ctx) => {
      const maxLogRatio = ctx.dtype === 'bfloat16' ? 5 : ctx.dtype === 'float16' ? 8 : 12;
      return runProperty(
        ctx,
        familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio, maxDim: 4, largeM: false, eps: [1e-5, 1e-3, 0.1, 1] }),
        async (p, c) => {
          const G = familyGrouping(p);
          const shiftOf = new Float64Array(G.groups);
          const at = new Int32Array(G.groups);
          for (let g = 0; g < G.groups; g++) {
            const idx = indicesOf(G, g);
            let j = idx[0]!;
            for (const i of idx) if (Math.abs(p.x[i]!) > Math.abs(p.x[j]!)) j = i;
            const A = Math.abs(p.x[j]!);
            const s = p.x[j]! < 0 ? -1 : 1;
            const T = 2 ** Math.ceil(Math.log2(Math.max(2 * A, Math.sqrt(p.eps))));
            shiftOf[g] = -s * T;
            at[g] = j;
          }
          const { group } = exactGroupStats(c, t.forward, familyRequest(p));
          const ra = familyRequest(p);
          const rb = familyRequest(p, { x: shifted(p, (i) => shiftOf[group(i)]!) });
          const { ga, gb, ea, eb } = await both(c, t.forward, ra, rb);
          for (let g = 0; g < G.groups; g++) {
            const j = at[g]!;
            expectApart(
              `${eb.where?.('y', j) ?? `y[${j}]`} before and after shifting its row by ${shiftOf[g]} (exact ${ea.expected.y![j]} and ${eb.expected.y![j]}): an RMSNorm does not subtract the mean`,
              ga.y![j]!,
              gb.y![j]!,
              ea.bounds.y![j]! + eb.bounds.y![j]!,
              eb.reasons[g]!,
            );
          }
        },
      );
    },
  });
}

/** Per group, its sample (axis 0): groups are row-major with the batch outermost, groups / N per sample. */
const sampleOfGroup = (groups: number, N: number) => (g: number) => Math.floor(g / (groups / N));

/**
 * Sample independence. The other samples' data are bit for bit the same in both requests, so a
 * deterministic kernel returns the same bits for them; a kernel whose reduction order may vary
 * between calls (atomics, a split that depends on the whole tensor's size or content) may differ by
 * its rounding, so each output is allowed both calls' bounds, as everywhere else. A kernel that
 * couples the batch moves them by far more: the changed sample is scaled by 16 and moved by
 * 16,384 (half dtypes: doubled, moved by 512).
 */
function sampleIndependence(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'invariance',
    name: 'sample-independence',
    title: `${t.name}: changing one sample (axis 0) changes no other sample's y${t.centred ? ', mean' : ''}, invStdDev or dx: statistics per sample, never across the batch`,
    needs: [t.forward],
    uses: [t.backward],
    run: (ctx) =>
      // minSamples: two samples at least, one to change and one to watch
      runProperty(ctx, fc.tuple(familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, maxLogRatio: 8, minSamples: 2 }), fc.nat()), async ([p, pick], c) => {
        const G = familyGrouping(p);
        const N = p.shape[0]!;
        const per = G.numel / N;
        const n = pick % N;
        // sample n: scaled by a power of two and moved far away, its dy changed too (half: by less,
        // within float16's range: |x| <= 16512 on the grid, 2 x + 512 < 65504), rounded to the dtype
        const half = isHalf(p.dtype);
        const k = half ? 2 : 16;
        const changed = (i: number) => Math.floor(i / per) === n;
        const x2 = p.x.map((v, i) => (changed(i) ? roundTo(p.dtype, v * k + (half ? 512 : 1024 * k)) : v));
        const dy2 = p.dy.map((v, i) => (changed(i) ? roundTo(p.dtype, -2 * v + 1) : v));
        const sampleOf = sampleOfGroup(G.groups, N);
        const why = `changed only when sample ${n} did (statistics across the batch?)`;
        const watch = (o: string, got: [Outputs, Outputs], e: [Expectation, Expectation], perElement: boolean) => {
          const [a, b] = got;
          if (a[o] === undefined || b[o] === undefined) return;
          for (let i = 0; i < a[o]!.length; i++) {
            const g = perElement ? Math.floor(i / per) : sampleOf(i);
            if (g === n) continue;
            const group = perElement ? e[1].channelOf(o, i) : i;
            if (!withinBound(Math.abs(b[o]![i]! - a[o]![i]!), e[0].bounds[o]![i]! + e[1].bounds[o]![i]!)) {
              throw new Mismatch(`${e[1].where?.(o, i) ?? `${o}[${i}]`} ${why}: ${a[o]![i]} -> ${b[o]![i]}`, { boundReason: e[1].reasons[group]! });
            }
          }
        };
        const f = await both(c, t.forward, familyRequest(p), familyRequest(p, { x: x2 }));
        watch('y', [f.ga, f.gb], [f.ea, f.eb], true);
        watch('mean', [f.ga, f.gb], [f.ea, f.eb], false);
        watch('invStdDev', [f.ga, f.gb], [f.ea, f.eb], false);
        if (typeof c.impl[t.backward] === 'function') {
          const bw = await both(c, t.backward, familyBackwardRequest(p), familyBackwardRequest(p, { x: x2, dy: dy2 }));
          watch('dx', [bw.ga, bw.gb], [bw.ea, bw.eb], true);
        }
      }),
  });
}

function layout(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'invariance',
    name: 'layout',
    title: `${t.name}: the same problem channels-first and channels-last gives the same y, statistics and gradients`,
    needs: [t.forward],
    uses: [t.backward],
    axes: 'one',
    skip: (ctx) => ((ctx.impl.axes ?? 'any') === 'any' ? undefined : `needs both layouts; the implementation declares axes '${ctx.impl.axes}'`),
    run: (ctx) =>
      // rank >= 3: at rank 2 the two layouts are one
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: 'first', values: 'full', minRank: 3 }), async (p, c) => {
        const rank = p.shape.length;
        const x = moveAxis(p.x, p.shape, 1, rank - 1);
        const dy = moveAxis(p.dy, p.shape, 1, rank - 1);
        const last: Partial<FamilyProblem> = { x: x.data, dy: dy.data, shape: x.shape, axis: rank - 1 };
        const back = (v: ArrayLike<number>) => moveAxis(Array.from(v), x.shape, rank - 1, 1).data;
        const pairs: Array<[FamilyRequest, FamilyRequest, typeof t.forward | typeof t.backward]> = [[familyRequest(p), familyRequest(p, last), t.forward]];
        if (typeof c.impl[t.backward] === 'function') pairs.push([familyBackwardRequest(p), familyBackwardRequest(p, last), t.backward]);
        for (const [first, lastReq, op] of pairs) {
          const { ga, gb, ea, eb } = await both(c, op, first, lastReq);
          for (const o of Object.keys(ea.expected)) {
            if (ga[o] === undefined || gb[o] === undefined) continue;
            const element = o === 'y' || o === 'dx';
            const vb = element ? back(gb[o]!) : Array.from(gb[o]!);
            const bb = element ? back(eb.bounds[o]!) : Array.from(eb.bounds[o]!);
            for (let i = 0; i < vb.length; i++) {
              expectClose(`${ea.where?.(o, i) ?? `${o}[${i}]`} channels-last [${x.shape.join(',')}] vs channels-first [${p.shape.join(',')}]`, vb[i]!, ga[o]![i]!, ea.bounds[o]![i]! + bb[i]!, ea.reasons[ea.channelOf(o, i)]!);
            }
          }
        }
      }),
  });
}

export const familyInvarianceChecks: CheckSpec[] = FAMILY_TARGETS.flatMap((t) => [
  ...(t.centred ? [shift(t)] : [notShiftInvariant(t)]),
  scale(t),
  sampleIndependence(t),
  ...(t.kind === 'layer' ? [] : [layout(t)]),
]);
