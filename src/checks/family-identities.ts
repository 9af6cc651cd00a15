/**
 * <op>:identities:* — the family's cross-op identities, where an implementation has both ops.
 * Each pair of requests has the same exact answer (the identity is exact in real arithmetic and
 * every request is exactly the same data), so each result within its own bound of it means the
 * two results are within the sum of both bounds of each other (bn:invariance's argument):
 * - gn:identities:instance-norm  GroupNorm with G = C is InstanceNorm (y, statistics, gradients);
 * - gn:identities:layer-norm     GroupNorm with G = 1 is LayerNorm over axes [1, rank) with the
 *   per-channel parameters broadcast to every position (gamma_LN[j] = gamma[channel of j]); its
 *   dgamma[c] is the sum of LayerNorm's dgamma over channel c's positions;
 * - in:identities:batch-norm     InstanceNorm is training BatchNorm of x viewed as [1, N C, ...]
 *   (channels-first; a channels-last x is moved first), gamma / beta repeated per sample; its
 *   dgamma[c] is the sum over samples of BatchNorm's;
 * - rms:identities:layer-norm    RMSNorm of zero-mean rows is LayerNorm with beta = 0 (mean(x^2) is
 *   the variance when the mean is 0).
 * Summed parameter gradients: each summand within its bound, the sum within the sum of the bounds,
 * plus our own float64 k-term sum: (k - 1) u64 sum|terms|.
 */
import { backwardRequest, trainRequest, type Problem } from '../arbitraries/problem.js';
import { familyBackwardRequest, familyGrouping, familyProblemArb, familyRequest, type FamilyProblem } from '../arbitraries/family.js';
import type { FamilyOp, FamilyRequest } from '../contract/contract.js';
import { InternalError } from '../contract/errors.js';
import { indicesOf, paramOf } from '../contract/grouping.js';
import { moveAxis } from '../contract/tensor.js';
import { runProperty, type CheckContext } from '../harness/check.js';
import type { Expectation } from '../judge/compare.js';
import { expectation, expectClose } from './common.js';
import { callFamily, familyExpectation, familySpec, TARGET, type Outputs } from './family-common.js';
import type { CheckSpec } from './spec.js';

const U64 = 2 ** -53;

interface Side {
  got: Outputs;
  e: Expectation;
}

const call = async (c: CheckContext, op: FamilyOp, req: FamilyRequest): Promise<Side> => ({ got: await callFamily(c, op, req), e: familyExpectation(c, op, req) });

/**
 * Output o of two results, element by element through `map` (a's index -> b's), within the sum of
 * both bounds; skipped only when an optional output is absent from either.
 */
function agree(what: string, o: string, a: Side, b: Side, map: (i: number) => number = (i) => i, ob = o): void {
  const va = a.got[o];
  const vb = b.got[ob];
  if (va === undefined || vb === undefined) {
    if (a.e.optional?.has(o) || b.e.optional?.has(ob)) return;
    // the guarded call validated every required output: absent here is a bug of this file
    throw new InternalError(`${what}: output ${va === undefined ? o : ob} missing`);
  }
  for (let i = 0; i < va.length; i++) {
    const j = map(i);
    expectClose(`${what}: ${a.e.where?.(o, i) ?? `${o}[${i}]`}`, vb[j]!, va[i]!, a.e.bounds[o]![i]! + b.e.bounds[ob]![j]!, a.e.reasons[a.e.channelOf(o, i)]!);
  }
}

/**
 * A parameter gradient of `whole` against the sums of `parts` over the groups `members(j)`:
 * sum of the parts' bounds + whole's bound + the k-term float64 sum.
 */
function agreeSums(what: string, o: string, whole: { got: ArrayLike<number>; bound: ArrayLike<number>; reason: (j: number) => string }, parts: { got: ArrayLike<number>; bound: ArrayLike<number> }, members: (j: number) => number[]): void {
  for (let j = 0; j < whole.got.length; j++) {
    let sum = 0;
    let allowed = 0;
    let abs = 0;
    const idx = members(j);
    for (const k of idx) {
      sum += parts.got[k]!;
      allowed += parts.bound[k]!;
      abs += Math.abs(parts.got[k]!);
    }
    const own = Number.isFinite(abs) ? Math.max(idx.length - 1, 0) * U64 * abs : 0;
    expectClose(`${what}: ${o}[${j}] vs the sum of ${idx.length} parts`, whole.got[j]!, sum, whole.bound[j]! + allowed + own, whole.reason(j));
  }
}

const hasOp = (c: CheckContext, op: string) => typeof (c.impl as unknown as Record<string, unknown>)[op] === 'function';

const gn = TARGET.gn;
const inst = TARGET.in;
const rms = TARGET.rms;

const groupNormIsInstanceNorm = familySpec(gn, {
  family: 'identities',
  name: 'instance-norm',
  title: 'GroupNorm with G = C equals InstanceNorm: y, mean, invStdDev and (with both backward ops) dx, dgamma, dbeta agree within both bounds',
  needs: ['groupNorm', 'instanceNorm'],
  uses: ['groupNormBackward', 'instanceNormBackward'],
  run: (ctx) =>
    runProperty(ctx, familyProblemArb({ op: 'instanceNorm', dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
      const C = p.shape[p.axis]!;
      const g: FamilyProblem = { ...p, op: 'groupNorm', groups: C };
      const a = await call(c, 'groupNorm', familyRequest(g));
      const b = await call(c, 'instanceNorm', familyRequest(p));
      for (const o of ['y', 'mean', 'invStdDev']) agree(`GroupNorm G = C = ${C} vs InstanceNorm`, o, a, b);
      if (hasOp(c, 'groupNormBackward') && hasOp(c, 'instanceNormBackward')) {
        const da = await call(c, 'groupNormBackward', familyBackwardRequest(g));
        const db = await call(c, 'instanceNormBackward', familyBackwardRequest(p));
        for (const o of ['dx', 'dgamma', 'dbeta']) agree(`GroupNorm backward G = C = ${C} vs InstanceNorm backward`, o, da, db);
      }
    }),
});

const groupNormIsLayerNorm = familySpec(gn, {
  family: 'identities',
  name: 'layer-norm',
  title:
    'GroupNorm with G = 1 equals LayerNorm over axes [1, rank) with the per-channel gamma, beta broadcast to every position: y, mean, invStdDev, dx agree within both bounds, and dgamma[c] (dbeta[c]) is the sum of LayerNorm\'s over channel c',
  needs: ['groupNorm', 'layerNorm'],
  uses: ['groupNormBackward', 'layerNormBackward'],
  run: (ctx) =>
    runProperty(ctx, familyProblemArb({ op: 'groupNorm', dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full', groups: 'one' }), async (p, c) => {
      const G = familyGrouping(p);
      const per = G.numel / p.shape[0]!;
      // LayerNorm's parameter j is the position j of a sample: it reads GroupNorm's channel of that position
      const channelOf = (j: number) => paramOf(G, j);
      const l: FamilyProblem = {
        ...p,
        op: 'layerNorm',
        axis: 1,
        gamma: Array.from({ length: per }, (_, j) => p.gamma[channelOf(j)]!),
        beta: Array.from({ length: per }, (_, j) => p.beta[channelOf(j)]!),
      };
      delete l.groups;
      const what = `GroupNorm G = 1 (${p.axis === 1 ? 'channels first' : 'channels last'}) vs LayerNorm over axes [1, ${p.shape.length})`;
      const a = await call(c, 'groupNorm', familyRequest(p));
      const b = await call(c, 'layerNorm', familyRequest(l));
      for (const o of ['y', 'mean', 'invStdDev']) agree(what, o, a, b);
      if (hasOp(c, 'groupNormBackward') && hasOp(c, 'layerNormBackward')) {
        const da = await call(c, 'groupNormBackward', familyBackwardRequest(p));
        const db = await call(c, 'layerNormBackward', familyBackwardRequest(l));
        agree(`${what}, backward`, 'dx', da, db);
        const members = (ch: number) => Array.from({ length: per }, (_, j) => j).filter((j) => channelOf(j) === ch);
        for (const o of ['dgamma', 'dbeta']) {
          agreeSums(
            `${what}, backward`,
            o,
            { got: da.got[o]!, bound: da.e.bounds[o]!, reason: (j) => da.e.reasons[da.e.channelOf(o, j)]! },
            { got: db.got[o]!, bound: db.e.bounds[o]! },
            members,
          );
        }
      }
    }),
});

/** BatchNorm's view of an InstanceNorm problem: channels first, [1, N C, ...], parameters per (sample, channel). */
function asBatchNorm(p: FamilyProblem): { problem: Problem; back: (v: ArrayLike<number>) => number[]; N: number; C: number } {
  const rank = p.shape.length;
  const last = p.axis === rank - 1;
  const first = last ? moveAxis(p.x, p.shape, rank - 1, 1) : { data: p.x, shape: p.shape };
  const dy = last ? moveAxis(p.dy, p.shape, rank - 1, 1).data : p.dy;
  const [N, C] = [first.shape[0]!, first.shape[1]!];
  const shape = [1, N * C, ...first.shape.slice(2)];
  const perSample = <T>(a: T[]) => Array.from({ length: N * C }, (_, k) => a[k % C]!);
  return {
    N,
    C,
    problem: {
      dtype: p.dtype,
      ...(p.paramDtype ? { paramDtype: p.paramDtype } : {}),
      shape,
      axis: 1,
      x: Array.from(first.data),
      dy: Array.from(dy),
      gamma: perSample(p.gamma),
      beta: perSample(p.beta),
      eps: p.eps,
      momentum: 0.9,
      runningMean: new Array<number>(N * C).fill(0),
      runningVar: new Array<number>(N * C).fill(1),
    },
    back: (v) => (last ? moveAxis(Array.from(v), first.shape, 1, rank - 1).data : Array.from(v)),
  };
}

const instanceNormIsBatchNorm = familySpec(inst, {
  family: 'identities',
  name: 'batch-norm',
  title:
    'InstanceNorm equals training BatchNorm of x viewed as [1, N C, ...] (gamma, beta repeated per sample): y and mean agree within both bounds, and with both backward ops dx, and dgamma[c] (dbeta[c]) is the sum of BatchNorm\'s over the samples',
  needs: ['instanceNorm', 'forwardTrain'],
  uses: ['instanceNormBackward', 'backward'],
  run: (ctx) =>
    runProperty(ctx, familyProblemArb({ op: 'instanceNorm', dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
      const { problem, back, N, C } = asBatchNorm(p);
      const what = `InstanceNorm [${p.shape.join(', ')}] axis ${p.axis} vs training BatchNorm [${problem.shape.join(', ')}]`;
      const a = await call(c, 'instanceNorm', familyRequest(p));
      const breq = trainRequest(problem);
      const bn = await c.call('forwardTrain', breq);
      const be = expectation(c, 'forwardTrain', breq);
      const b: Side = {
        got: { y: Float64Array.from(back(bn.y)), mean: bn.mean },
        e: { ...be, expected: { y: Float64Array.from(back(be.expected.y!)), mean: be.expected.mean! }, bounds: { y: Float64Array.from(back(be.bounds.y!)), mean: be.bounds.mean! } },
      };
      agree(what, 'y', a, b);
      agree(what, 'mean', a, b);
      if (hasOp(c, 'instanceNormBackward') && hasOp(c, 'backward')) {
        const da = await call(c, 'instanceNormBackward', familyBackwardRequest(p));
        const dreq = backwardRequest(problem, true);
        const dbn = await c.call('backward', dreq);
        const de = expectation(c, 'backward', dreq);
        agree(`${what}, backward`, 'dx', da, { got: { dx: Float64Array.from(back(dbn.dx)) }, e: { ...de, bounds: { dx: Float64Array.from(back(de.bounds.dx!)) } } });
        const members = (ch: number) => Array.from({ length: N }, (_, n) => n * C + ch);
        for (const o of ['dgamma', 'dbeta'] as const) {
          agreeSums(`${what}, backward`, o, { got: da.got[o]!, bound: da.e.bounds[o]!, reason: (j) => da.e.reasons[da.e.channelOf(o, j)]! }, { got: dbn[o], bound: de.bounds[o]! }, members);
        }
      }
    }),
});

/** The problem with every row's mean exactly 0: each group's values in pairs (v, -v), a 0 left over when m is odd. */
function zeroMeanRows(p: FamilyProblem): FamilyProblem {
  const G = familyGrouping(p);
  const x = p.x.slice();
  for (let g = 0; g < G.groups; g++) {
    const idx = indicesOf(G, g);
    for (let k = 0; k + 1 < idx.length; k += 2) x[idx[k + 1]!] = -x[idx[k]!]!;
    if (idx.length % 2 === 1) x[idx[idx.length - 1]!] = 0;
  }
  return { ...p, x };
}

const rmsIsLayerNorm = familySpec(rms, {
  family: 'identities',
  name: 'layer-norm',
  title: 'RMSNorm of rows with mean exactly 0 equals LayerNorm with beta = 0 (mean(x^2) is then the variance): y and invStdDev agree within both bounds',
  needs: ['rmsNorm', 'layerNorm'],
  run: (ctx) =>
    runProperty(ctx, familyProblemArb({ op: 'rmsNorm', dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p0, c) => {
      const p = zeroMeanRows(p0);
      const l: FamilyProblem = { ...p, op: 'layerNorm', beta: p.beta.map(() => 0) };
      const a = await call(c, 'rmsNorm', familyRequest(p));
      const b = await call(c, 'layerNorm', familyRequest(l));
      for (const o of ['y', 'invStdDev']) agree('RMSNorm of zero-mean rows vs LayerNorm with beta = 0', o, a, b);
    }),
});

export const familyIdentityChecks: CheckSpec[] = [groupNormIsInstanceNorm, groupNormIsLayerNorm, instanceNormIsBatchNorm, rmsIsLayerNorm];
