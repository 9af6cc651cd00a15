/**
 * <op>:gradients:* — the family's backward ops (the training gradient, through the group
 * statistics), beside <op>:agreement:backward's full-mantissa comparison with the reference:
 * - analytic-grid: on grid data (the group sums are exact at power-of-two group sizes, so the
 *   judge allows only the final roundings: src/judge/tolerance.ts exactness) dx, dgamma, dbeta
 *   agree with the reference's analytic gradient.
 * - finite-difference (float64): dx, dgamma, dbeta agree with central differences of the
 *   implementation's own forward (step and bound: src/judge/tolerance.ts finiteDifferenceStep /
 *   finiteDifferenceBound, as bn:gradients derives them).
 * - identities: per group sum dx = 0 (the centred ops) and sum dx x-hat = eps / (v + eps) / s *
 *   sum gamma dy x-hat (zero only at eps = 0; every op, v the variance or RMSNorm's mean square);
 *   per parameter dbeta_j = sum dy and dgamma_j = sum dy x-hat over the elements reading j.
 * Derivation of the identities, dy' = gamma_j dy per element, P' = mean(dy' x-hat), Q' = mean(dy'):
 *   dx = (dy' - Q' - x-hat P') / s (RMSNorm: no Q'); sum x-hat = 0 (centred) and
 *   sum x-hat^2 = m v / (v + eps), so sum dx = 0 and sum dx x-hat = (m P' - P' m v / (v + eps)) / s.
 */
import fc from 'fast-check';
import { familyBackwardRequest, familyProblemArb, familyRequest, type FamilyProblem } from '../arbitraries/family.js';
import { indicesOf, paramOf } from '../contract/grouping.js';
import { Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import { CompensatedSum } from '../numerics/eft.js';
import { finiteDifferenceBound, finiteDifferenceStep, scaleBound, withinBound } from '../judge/tolerance.js';
import { exactElement, expectClose, weightedLoss } from './common.js';
import { agreeFamily, callFamily, exactGroupStats, FAMILY_TARGETS, familyExpectation, familySpec, type FamilyTarget } from './family-common.js';
import type { CheckSpec } from './spec.js';

const U64 = 2 ** -53;

/**
 * L = sum w_i y_i through the implementation's forward, and its error bound: each y_i within its
 * tolerance of the exact forward, plus our own float64 sum, gamma(n) sum|w y| (Higham).
 */
async function loss(c: CheckContext, t: FamilyTarget, p: FamilyProblem, over: Partial<FamilyProblem>): Promise<{ L: number; err: number }> {
  const req = familyRequest(p, over);
  const y = (await callFamily(c, t.forward, req)).y!;
  const e = familyExpectation(c, t.forward, req);
  return weightedLoss(y, p.dy, e.bounds.y!);
}

type Param = 'x' | 'gamma' | 'beta';

function finiteDifference(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'gradients',
    name: 'finite-difference',
    title: `${t.name}, float64: dx, dgamma${t.hasBeta ? ', dbeta' : ''} agree with central differences of the implementation's own forward`,
    needs: [t.forward, t.backward],
    skip: (ctx) => (ctx.dtype !== 'float64' || ctx.paramDtype !== 'float64' ? `central differences need float64; ${ctx.dtype} backward is held to the reference by ${t.prefix}:agreement:backward` : undefined),
    run: (ctx) =>
      // small problems and moderate offsets (13 calls a run), as bn:gradients
      runProperty(ctx, fc.tuple(familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full', maxDim: 3, maxLogRatio: 6 }), fc.nat()), async ([p, pick], c) => {
        const breq = familyBackwardRequest(p);
        const got = await callFamily(c, t.backward, breq);
        const e = familyExpectation(c, t.backward, breq);
        const { G, s, mean, group } = exactGroupStats(c, t.forward, breq);
        // the step's length scale: BN's argument gives a convergence radius >= 2s for a centred
        // group (var + eps in x_i + t has complex roots at |t| = s m / sqrt(m - 1)); RMSNorm's
        // ms + eps has them at |t| = sqrt(m) s >= s, so s / 2 keeps h / R <= 2^-11 there too
        const scaleOf = (g: number) => (t.centred ? s[g]! : s[g]! / 2);
        const cases: Array<[Param, ReturnType<typeof exactElement>]> = [
          ['x', exactElement(ctx.dtype, p.x, pick % p.x.length, (i) => finiteDifferenceStep(ctx.dtype, scaleOf(group(i)), Math.abs(p.x[i]!) + Math.abs(mean[group(i)]!)))],
          // L is linear in gamma and beta: no truncation, the step only has to dwarf their ulp
          ['gamma', exactElement(ctx.dtype, p.gamma, pick % G.params, (j) => finiteDifferenceStep(ctx.dtype, Math.max(Math.abs(p.gamma[j]!), 1), 0))],
          ...(t.hasBeta ? [['beta', exactElement(ctx.dtype, p.beta, pick % G.params, (j) => finiteDifferenceStep(ctx.dtype, Math.max(Math.abs(p.beta[j]!), 1), 0))] as [Param, ReturnType<typeof exactElement>]] : []),
        ];
        for (const [param, where] of cases) {
          if (!where) continue;
          const { index, h } = where;
          const out = param === 'x' ? 'dx' : param === 'gamma' ? 'dgamma' : 'dbeta';
          const at = (delta: number) => {
            const values = p[param].slice();
            values[index] = values[index]! + delta; // exact: exactStencil
            return loss(c, t, p, { [param]: values });
          };
          const [a, b, a2, b2] = [await at(h), await at(-h), await at(2 * h), await at(-2 * h)];
          const dh = (a.L - b.L) / (2 * h);
          const d2h = (a2.L - b2.L) / (4 * h);
          const bound = finiteDifferenceBound(dh, d2h, h, Math.max(a.err, b.err, a2.err, b2.err)) + e.bounds[out]![index]!;
          const analytic = got[out]![index]!;
          if (!withinBound(Math.abs(analytic - dh), bound)) {
            throw new Mismatch(
              `${e.where?.(out, index) ?? `${out}[${index}]`} = ${analytic} but the central difference of the implementation's own forward gives ${dh} (step ${h.toExponential(2)}, allowed ${bound.toExponential(3)})`,
              { boundReason: e.reasons[e.channelOf(out, index)]! },
            );
          }
        }
      }),
  });
}

function identities(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'gradients',
    name: 'identities',
    title: `${t.name} backward: per group ${t.centred ? 'sum dx = 0 and ' : ''}sum dx x-hat = eps / (v + eps) / s * sum gamma dy x-hat (zero only at eps = 0); per parameter ${t.hasBeta ? 'dbeta_j = sum dy, ' : ''}dgamma_j = sum dy x-hat over the elements reading j`,
    needs: [t.backward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const req = familyBackwardRequest(p);
        const got = await callFamily(c, t.backward, req);
        const e = familyExpectation(c, t.backward, req);
        const { G, s, variance, eps, xhat } = exactGroupStats(c, t.forward, req);
        const sumDy = Array.from({ length: G.params }, () => new CompensatedSum());
        const sumDyXhat = Array.from({ length: G.params }, () => new CompensatedSum());
        for (let g = 0; g < G.groups; g++) {
          const sumDx = new CompensatedSum();
          const sumDxXhat = new CompensatedSum();
          const sumDypXhat = new CompensatedSum();
          let bDx = 0;
          let bDxXhat = 0;
          let absDx = 0;
          let absDypXhat = 0;
          const idx = indicesOf(G, g);
          for (const i of idx) {
            const xh = xhat(i);
            const j = paramOf(G, i);
            const dyp = p.gamma[j]! * p.dy[i]!;
            sumDx.add(got.dx![i]!);
            sumDxXhat.add(got.dx![i]! * xh);
            sumDypXhat.add(dyp * xh);
            sumDy[j]!.add(p.dy[i]!);
            sumDyXhat[j]!.add(p.dy[i]! * xh);
            absDypXhat += Math.abs(dyp * xh);
            bDx += e.bounds.dx![i]!;
            absDx += Math.abs(got.dx![i]!);
            // our own float64 product dx * x-hat (a few u of it); a non-finite dx cannot widen it
            const own = got.dx![i]! * xh;
            bDxXhat += scaleBound(e.bounds.dx![i]!, xh) + (Number.isFinite(own) ? 2 ** -50 * Math.abs(own) : 0);
          }
          const r = e.reasons[g]!;
          const n = idx.length;
          if (t.centred) {
            // each dx_i within its bound; the compensated sum's own error 2u|S| + 2 (n u)^2 sum|dx|
            const own = Number.isFinite(absDx) ? 2 * U64 * Math.abs(sumDx.value()) + 2 * (n * U64) ** 2 * absDx : 0;
            expectClose(`sum of dx over group ${g}`, sumDx.value(), 0, bDx + own, r);
          }
          // sum x-hat^2 = m v / (v + eps), not m: the eps share of the projection survives
          const shrink = eps / (variance[g]! + eps) / s[g]!;
          const expected = shrink * sumDypXhat.value();
          // our own float64 evaluation of it: each dy' x-hat ~3u (the product gamma dy, x-hat's few u
          // from the double-double mean, the product), then ~4 roundings of the result (bn:gradients's)
          const ownError = shrink * 4 * U64 * absDypXhat + 8 * U64 * Math.abs(expected);
          expectClose(`sum of dx * x-hat over group ${g}`, sumDxXhat.value(), expected, bDxXhat + ownError, r);
        }
        for (let j = 0; j < G.params; j++) {
          const r = e.reasons[e.channelOf('dgamma', j)]!;
          if (t.hasBeta) expectClose(`dbeta[${j}] vs sum dy over the elements reading it`, got.dbeta![j]!, sumDy[j]!.value(), e.bounds.dbeta![j]!, r);
          expectClose(`dgamma[${j}] vs sum dy * x-hat over the elements reading it`, got.dgamma![j]!, sumDyXhat[j]!.value(), e.bounds.dgamma![j]!, r);
        }
      }),
  });
}

function analyticGrid(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'gradients',
    name: 'analytic-grid',
    title: `${t.name} backward on grid data (group sums exact at power-of-two group sizes, only the final roundings allowed) agrees with the reference's analytic gradient`,
    needs: [t.backward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'grid' }), async (p, c) => {
        await agreeFamily(c, t.backward, familyBackwardRequest(p), `${t.backward} (grid data)`);
      }),
  });
}

export const familyGradientChecks: CheckSpec[] = FAMILY_TARGETS.flatMap((t) => [analyticGrid(t), finiteDifference(t), identities(t)]);
