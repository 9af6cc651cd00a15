/**
 * <op>:scale:* — the sizes real networks use, for the normalization family (bn:scale's design,
 * src/checks/scale.ts, over the op's grouping): each run checks one recipe at every size, smallest
 * first, alternating full-mantissa data (every sum rounds; one sign, |mean| / spread up to 2^12,
 * where a sequential sum stagnates) with grid data at power-of-two group sizes (the centred ops'
 * sums are then exact: the judge allows only the final roundings, src/judge/tolerance.ts
 * exactness), and stops at the first that fails:
 *   groups of m = 10^3, ~10^4, ~10^5 and >= 2^20 values (grid: 2^10, 2^14, 2^17, 2^21), and many
 *   groups (2^14 groups of 7, grid: of 8), where a kernel's per-group bookkeeping (a launch per
 *   group, a statistics buffer) breaks rather than its sums.
 * The >= 2^20 sizes run on float32 / float64 only (half data's family stops at ~10^5, as bn:scale),
 * and not for the layer ops' backward: a LayerNorm / RMSNorm group of 2^21 values has 2^21
 * parameters, each with its own dgamma / dbeta bound (the judge's parameterTolerance: ~25 s a call
 * at 2^21), while the sums a backward adds over a group (Q', P') are checked at 2^21 by GroupNorm's
 * and InstanceNorm's backward and at ~10^5 here; one axis variant per case (the first the implementation supports: layout is the other families'
 * job). Runs per case: ceil(runs / RUNS_PER_SCALE_RUN), one at the default 25 runs.
 * The data come from a seeded generator; fast-check draws (and does not shrink) the recipe, and a
 * failure's counterexample is that recipe.
 */
import fc from 'fast-check';
import type { DType, FamilyOp, FamilyRequest } from '../contract/contract.js';
import { roundTo } from '../contract/dtypes.js';
import { groupingFor, indicesOf } from '../contract/grouping.js';
import { typed } from '../arbitraries/problem.js';
import { Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import { isHalf } from '../numerics/half.js';
import { mulberry32 } from '../numerics/random.js';
import { agreeFamily, FAMILY_TARGETS, familySpec, type FamilyTarget } from './family-common.js';
import { balancedSigns, GRID_SIZES, RUNS_PER_SCALE_RUN, SIZES, type ScaleData } from './scale.js';
import type { CheckSpec } from './spec.js';
import type { AxisVariant } from '../harness/types.js';

/** `count` groups of prod(dims) values; the many-groups size last. */
interface FamilySize {
  count: number;
  dims: number[];
  data: ScaleData;
  /** >= 2^20 values: float32 / float64 only. */
  million: boolean;
}

/** Many groups: 2^14 of 7 values (full-mantissa) and of 8 (grid). */
const MANY = 2 ** 14;

/** The plan of one run: bn:scale's sizes (full-mantissa and grid alternating), 4, 2, 1, 1 groups, then many groups. */
export const FAMILY_SIZES: FamilySize[] = [
  ...SIZES.flatMap((dims, k) => [
    { count: [4, 2, 1, 1][k]!, dims, data: 'full-mantissa' as const, million: k === SIZES.length - 1 },
    { count: [4, 2, 1, 1][k]!, dims: GRID_SIZES[k]!, data: 'grid' as const, million: k === GRID_SIZES.length - 1 },
  ]),
  { count: MANY, dims: [7], data: 'full-mantissa', million: false },
  { count: MANY, dims: [8], data: 'grid', million: false },
];

export interface FamilyScaleRecipe {
  /** log2 of |mean| / spread (-1: mean 0), the spread's log2; the mean's sign alternates by group. */
  logRatio: number;
  logSpread: number;
  eps: number;
  /** dy = dyOffset + uniform(-1, 1) (grid: + {-1, 0, 1}). */
  dyOffset: number;
  /** Grid data: x = (K + d) 2^e per group, d in {-1, 0, 1} balanced (the mean is exactly K 2^e). */
  gridOffset: number;
  gridLogScale: number;
  seed: number;
}

function recipeArb(dtype: DType): fc.Arbitrary<FamilyScaleRecipe> {
  const half = isHalf(dtype);
  return fc.noShrink(
    fc.record({
      logRatio: fc.integer({ min: -1, max: half ? 8 : 12 }),
      logSpread: fc.integer({ min: half ? -6 : -8, max: half ? 4 : 8 }),
      eps: fc.constantFrom(1e-5, 1e-3, 1),
      dyOffset: fc.constantFrom(0, 1, 4),
      gridOffset: fc.integer({ min: -7, max: 7 }),
      gridLogScale: fc.integer({ min: half ? -6 : -8, max: half ? 6 : 8 }),
      seed: fc.nat(),
    }),
  );
}

/**
 * The op's shape for `count` groups of prod(dims) values. Layer ops: 'first' [count, ...dims]
 * axis 1, 'last' [count, m] axis 1 of rank 2 (the last axis), 'other' [count, 1, ...dims] axis 2.
 * groupNorm: G = min(count, 4) groups of dims[0] channels over dims[1..] per sample, N = count / G;
 * instanceNorm: C = min(count, 4) channels over dims, N = count / C; channels first or last.
 */
export function familyScaleShape(t: FamilyTarget, variant: AxisVariant, count: number, dims: number[]): { shape: number[]; axis: number; groups?: number } {
  const m = dims.reduce((a, b) => a * b, 1);
  if (t.kind === 'layer') {
    if (variant === 'last') return { shape: [count, m], axis: 1 };
    if (variant === 'other') return { shape: [count, 1, ...dims], axis: 2 };
    return { shape: [count, ...dims], axis: 1 };
  }
  const per = Math.min(count, 4);
  const N = count / per;
  const C = t.kind === 'group' ? per * dims[0]! : per;
  const spatial = t.kind === 'group' ? dims.slice(1) : dims;
  const shape = variant === 'last' ? [N, ...spatial, C] : [N, C, ...spatial];
  const axis = variant === 'last' ? shape.length - 1 : 1;
  return t.kind === 'group' ? { shape, axis, groups: per } : { shape, axis };
}

/** The request a recipe describes at one size (forward or backward), activations in dtype, parameters in paramDtype. */
export function familyScaleRequest(t: FamilyTarget, op: FamilyOp, r: FamilyScaleRecipe, size: FamilySize, variant: AxisVariant, dtype: DType, paramDtype: DType): FamilyRequest {
  const s = familyScaleShape(t, variant, size.count, size.dims);
  const G = groupingFor(t.forward, s);
  const rnd = mulberry32(r.seed);
  const uniform = () => 2 * (rnd() + rnd() * 2 ** -32) - 1;
  const round = (v: number) => roundTo(dtype, v);
  const x = dtype === 'float32' ? new Float32Array(G.numel) : new Float64Array(G.numel);
  const dy = dtype === 'float32' ? new Float32Array(G.numel) : new Float64Array(G.numel);
  const q = 2 ** r.gridLogScale;
  const spread = 2 ** r.logSpread;
  for (let g = 0; g < G.groups; g++) {
    const idx = indicesOf(G, g);
    if (size.data === 'grid') {
      const dev = balancedSigns(G.m, rnd);
      idx.forEach((i, k) => {
        x[i] = (r.gridOffset + dev[k]!) * q;
        dy[i] = r.dyOffset + Math.floor(rnd() * 3) - 1;
      });
    } else {
      const mean = r.logRatio < 0 ? 0 : (g % 2 ? -1 : 1) * spread * 2 ** r.logRatio;
      for (const i of idx) {
        x[i] = round(mean + spread * uniform()); // a half value, exactly (float32 / float64: the typed array rounds)
        dy[i] = round(r.dyOffset + uniform());
      }
    }
  }
  const gamma = Array.from({ length: G.params }, () => roundTo(paramDtype, 0.5 + rnd()));
  const backward = op.endsWith('Backward');
  return {
    dtype,
    paramDtype,
    x,
    shape: s.shape,
    axis: s.axis,
    ...(s.groups !== undefined ? { groups: s.groups } : {}),
    gamma: typed(paramDtype, gamma),
    ...(backward ? { dy } : t.hasBeta ? { beta: typed(paramDtype, gamma.map((v) => v - 1)) } : {}),
    eps: roundTo(isHalf(dtype) ? 'float32' : dtype, r.eps),
  } as FamilyRequest;
}

function scaleProperty(t: FamilyTarget, op: FamilyOp) {
  return (ctx: CheckContext) =>
    runProperty(
      ctx,
      recipeArb(ctx.dtype),
      async (r, c) => {
        const plan = FAMILY_SIZES.filter((z) => !z.million || (!isHalf(ctx.dtype) && !(t.kind === 'layer' && op === t.backward)));
        for (const size of plan) {
          const req = familyScaleRequest(t, op, r, size, ctx.axis, ctx.dtype, ctx.paramDtype);
          const G = groupingFor(t.forward, req as FamilyRequest & { groups?: number });
          try {
            await agreeFamily(c, op, req, `${op} at m = ${G.m}, ${G.groups} group(s) (${size.data} data)`);
          } catch (e) {
            if (e instanceof Mismatch) {
              const counterexample = {
                op,
                shape: req.shape,
                axis: req.axis,
                dtype: ctx.dtype,
                request: { generator: `${t.prefix}:scale recipe (src/checks/family-scale.ts familyScaleRequest, ${size.data} data): x, dy from mulberry32(seed)`, data: size.data, count: size.count, dims: size.dims, ...r } as Record<string, unknown>,
              };
              throw new Mismatch(e.message, { ...e.details, counterexample });
            }
            throw e;
          }
        }
      },
      Math.max(1, Math.ceil(ctx.runs / RUNS_PER_SCALE_RUN)),
    );
}

export const familyScaleChecks: CheckSpec[] = FAMILY_TARGETS.flatMap((t) => [
  familySpec(t, {
    family: 'scale',
    name: 'forward',
    title: `${t.name}: groups of 10^3 to >= 2^20 values and 2^14 small groups, full-mantissa same-sign data and grid data whose sums are exact: y within the tolerance of the reference`,
    needs: [t.forward],
    axes: 'one',
    run: scaleProperty(t, t.forward),
  }),
  familySpec(t, {
    family: 'scale',
    name: 'backward',
    title: `${t.name} backward at the same sizes${t.kind === 'layer' ? ' (up to ~10^5 values a group: a group is as many parameters)' : ''}: dx, dgamma${t.hasBeta ? ', dbeta' : ''} within the tolerance of the reference`,
    needs: [t.backward],
    axes: 'one',
    run: scaleProperty(t, t.backward),
  }),
]);
