/**
 * <op>:normalization:* — what normalizing a group means, from the outputs alone (bn:normalization
 * over the op's grouping): with gamma = 1 and beta = 0 each statistics group of y has mean 0 and
 * variance var / (var + eps) (LayerNorm, GroupNorm, InstanceNorm), or mean square ms / (ms + eps)
 * (RMSNorm: y = x / sqrt(ms + eps), ms = mean(x^2), so mean(y^2) = ms / (ms + eps): unit only when
 * ms >> eps); and y = gamma_j x-hat + beta_j with each element's own parameter j.
 */
import { familyProblemArb, familyRequest, type FamilyProblem } from '../arbitraries/family.js';
import { indicesOf, paramOf } from '../contract/grouping.js';
import { runProperty } from '../harness/check.js';
import { scaleBound } from '../judge/tolerance.js';
import { expectClose } from './common.js';
import { callFamily, exactGroupStats, FAMILY_TARGETS, familyExpectation, familySpec, type FamilyTarget } from './family-common.js';
import type { CheckSpec } from './spec.js';

const U64 = 2 ** -53;

/** The problem with gamma = 1 and beta = 0: y is x-hat. */
const plain = (p: FamilyProblem) => familyRequest(p, { gamma: p.gamma.map(() => 1), beta: p.beta.map(() => 0) });

function zeroMean(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'normalization',
    name: 'zero-mean',
    title: `${t.name}: with gamma = 1, beta = 0, each statistics group of y has mean 0`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const req = plain(p);
        const got = await callFamily(c, t.forward, req);
        const e = familyExpectation(c, t.forward, req);
        const { G } = exactGroupStats(c, t.forward, req);
        for (let g = 0; g < G.groups; g++) {
          let sum = 0;
          let allowed = 0;
          let abs = 0;
          for (const i of indicesOf(G, g)) {
            sum += got.y![i]!;
            allowed += e.bounds.y![i]!;
            abs += Math.abs(e.expected.y![i]!);
          }
          // the exact y sums to exactly 0 over the group; each y_i may be off by its bound; our own
          // float64 sum adds at most m u64 sum|y| (from the exact values: a NaN output cannot widen it)
          const m = G.m;
          expectClose(`mean of y over group ${g}`, sum / m, 0, allowed / m + m * U64 * (abs / m), e.reasons[g]!);
        }
      }),
  });
}

function variance(t: FamilyTarget): CheckSpec {
  const rms = !t.centred;
  return familySpec(t, {
    family: 'normalization',
    name: rms ? 'unit-rms' : 'variance',
    title: rms
      ? `${t.name}: with gamma = 1, each group of y has mean square ms / (ms + eps), ms = mean(x^2): a unit root mean square only when ms >> eps`
      : `${t.name}: with gamma = 1, beta = 0, each statistics group of y has variance var / (var + eps): unit only when var >> eps`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(
        ctx,
        familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full', eps: [1e-3, 1e-5, 0.1, 1, 10] }),
        async (p, c) => {
          const req = plain(p);
          const got = await callFamily(c, t.forward, req);
          const e = familyExpectation(c, t.forward, req);
          const { G, variance: v, eps } = exactGroupStats(c, t.forward, req);
          for (let g = 0; g < G.groups; g++) {
            const idx = indicesOf(G, g);
            const m = G.m;
            const expected = v[g]! / (v[g]! + eps);
            if (rms) {
              // y_i = y*_i + e_i, |e_i| <= b_i: mean(y^2) - mean(y*^2) = mean(2 y* e + e^2), at most
              // mean(2 |y*| b + b^2); mean(y*^2) = ms / (ms + eps) exactly. Our own float64 evaluation
              // (m squares, an m-term sum, a division; and `expected`'s division): (m + 2) u64 of the
              // larger of the two sides
              let sq = 0;
              let allowed = 0;
              for (const i of idx) {
                sq += got.y![i]! * got.y![i]!;
                const b = e.bounds.y![i]!;
                allowed += 2 * Math.abs(e.expected.y![i]!) * b + b * b;
              }
              allowed /= m;
              expectClose(`mean square of y over group ${g} (ms=${v[g]}, eps=${eps})`, sq / m, expected, allowed + (m + 2) * U64 * (expected + allowed), e.reasons[g]!);
              continue;
            }
            let mean = 0;
            let bMean = 0;
            for (const i of idx) {
              mean += got.y![i]!;
              bMean += e.bounds.y![i]!;
            }
            mean /= m;
            bMean /= m;
            let s2 = 0;
            let allowed = 0;
            for (const i of idx) {
              const d = got.y![i]! - mean;
              s2 += d * d;
              const exact = Math.abs(e.expected.y![i]!);
              const b = e.bounds.y![i]! + bMean;
              // (bn:normalization:variance's derivation) y_i = y*_i + e_i, the computed mean = 0 + e
              // with |e| <= bMean; each squared deviation moves by 2 y*_i (e_i - e) + (e_i - e)^2,
              // |e_i - e| <= b_i + bMean, |y*_i| <= exact
              allowed += 2 * (exact + 2 * bMean) * b + b * b;
            }
            expectClose(`variance of y over group ${g} (var=${v[g]}, eps=${eps})`, s2 / m, expected, allowed / m + 4 * m * U64 * expected, e.reasons[g]!);
          }
        },
      ),
  });
}

function affine(t: FamilyTarget): CheckSpec {
  return familySpec(t, {
    family: 'normalization',
    name: 'affine',
    title: `${t.name}: y = gamma_j x-hat${t.hasBeta ? ' + beta_j' : ''} with each element's own parameter j: the output for the drawn parameters is gamma_j times the output for gamma = 1${t.hasBeta ? ', beta = 0, plus beta_j' : ''}`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        const r0 = plain(p);
        const r1 = familyRequest(p);
        const y0 = (await callFamily(c, t.forward, r0)).y!;
        const y1 = (await callFamily(c, t.forward, r1)).y!;
        const e0 = familyExpectation(c, t.forward, r0);
        const e1 = familyExpectation(c, t.forward, r1);
        const { G, group } = exactGroupStats(c, t.forward, r1);
        for (let i = 0; i < G.numel; i++) {
          const j = paramOf(G, i);
          const gm = p.gamma[j]!;
          const b = t.hasBeta ? p.beta[j]! : 0;
          const predicted = gm * y0[i]! + b;
          // each output within its bound; our float64 product and sum: 2 u64 (|predicted| + |beta|)
          const allowed = scaleBound(e0.bounds.y![i]!, gm) + e1.bounds.y![i]! + 2 * U64 * (Math.abs(predicted) + Math.abs(b));
          expectClose(`${e1.where?.('y', i) ?? `y[${i}]`} with gamma=${gm}${t.hasBeta ? `, beta=${b}` : ''} vs gamma*y(1${t.hasBeta ? ', 0' : ''})${t.hasBeta ? '+beta' : ''}`, y1[i]!, predicted, allowed, e1.reasons[group(i)]!);
        }
      }),
  });
}

export const familyNormalizationChecks: CheckSpec[] = FAMILY_TARGETS.flatMap((t) => [...(t.centred ? [zeroMean(t)] : []), variance(t), affine(t)]);
