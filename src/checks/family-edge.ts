/**
 * <op>:edge:* — hand-written, named corners of the normalization family (the bug classes of
 * /work/shared/reference/family-bugs.md), each run through every op of the target the
 * implementation has (forward and backward) and held to the reference under the tolerance:
 * constant groups, one-value groups (InstanceNorm: the profile's singleValue rule), eps = 0,
 * large offsets (|mean| / std up to 10^6 and the onnxruntime rows 40000..40003 and 1234.0, the
 * one-pass E[x^2] - E[x]^2 class), subnormals, float16 sums and squares that overflow (a row of
 * 4096 values of ~20: sum 81,920; |x| ~ 300: x^2 > 65504), normalized axes of length 1, ranks 2
 * to 5, G = 1 and G = C, large magnitudes. The axis variant decides the layout: gn / in
 * axis=last are channels-last.
 */
import type { DType, FamilyRequest } from '../contract/contract.js';
import { rounder } from '../contract/dtypes.js';
import { FAMILY, indicesOf } from '../contract/grouping.js';
import { familyBackwardRequest, familyGrouping, familyRequest, type FamilyProblem } from '../arbitraries/family.js';
import { ContractFault } from '../harness/call.js';
import { Mismatch, runExamples, type CheckContext } from '../harness/check.js';
import type { AxisVariant } from '../harness/types.js';
import { isHalf } from '../numerics/half.js';
import { agreeFamily, callFamily, FAMILY_TARGETS, familySpec, type FamilyTarget } from './family-common.js';
import type { CheckSpec } from './spec.js';

interface Example {
  name: string;
  problem: FamilyProblem;
}

/** Deterministic pseudo-random values in [-1, 1) (bn:edge's wave). */
function wave(k: number): number {
  const s = Math.sin(k * 12.9898 + 78.233) * 43758.5453;
  return 2 * (s - Math.floor(s)) - 1;
}

/**
 * The size of an example, whatever the op: `count` statistics groups of `m` values (layer ops,
 * the normalized axes `norm` when given), or N samples of G groups of `cg` channels over `spatial`
 * (groupNorm; instanceNorm: C channels). `at` gives the shape and axis outright per variant.
 */
export interface Size {
  count?: number;
  m?: number;
  norm?: number[];
  N?: number;
  G?: number;
  cg?: number;
  C?: number;
  spatial?: number[];
  at?: Partial<Record<AxisVariant, { shape: number[]; axis: number }>>;
}

/**
 * Shape and axis per variant. Layer ops: 'first' [count, ...norm] axis 1 (norm = [m] split into
 * two axes when m has a small factor), 'last' [1, count, m] axis 2, 'other' [count, 1, ...norm]
 * axis 2. Group ops: [N, C, ...spatial] axis 1 or [N, ...spatial, C] axis rank - 1.
 */
export function shapeOf(t: FamilyTarget, variant: AxisVariant, z: Size): { shape: number[]; axis: number; groups?: number } {
  const given = z.at?.[variant];
  if (t.kind === 'layer') {
    if (given) return given;
    const count = z.count ?? 2;
    const m = z.m ?? (z.norm ? z.norm.reduce((a, b) => a * b, 1) : 4);
    const f = [2, 3, 5, 7].find((k) => m % k === 0 && m > k);
    const norm = z.norm ?? (f ? [f, m / f] : [m]);
    if (variant === 'last') return { shape: [1, count, m], axis: 2 };
    if (variant === 'other') return { shape: [count, 1, ...(norm.length >= 2 ? norm : [1, ...norm])], axis: 2 };
    return { shape: [count, ...norm], axis: 1 };
  }
  const G = t.kind === 'group' ? (z.G ?? 2) : 0;
  const C = t.kind === 'group' ? G * (z.cg ?? 2) : (z.C ?? 2);
  const spatial = z.spatial ?? [3];
  const shape = given?.shape ?? (variant === 'last' ? [z.N ?? 2, ...spatial, C] : [z.N ?? 2, C, ...spatial]);
  const axis = given?.axis ?? (variant === 'last' ? shape.length - 1 : 1);
  return t.kind === 'group' ? { shape, axis, groups: G } : { shape, axis };
}

/** An example: x from value(g, k) for the k-th element of group g, the rest deterministic. */
function example(t: FamilyTarget, name: string, dtype: DType, paramDtype: DType, variant: AxisVariant, z: Size, value: (g: number, k: number) => number, over: Partial<FamilyProblem> = {}): Example {
  const s = shapeOf(t, variant, z);
  const base = { op: t.forward, ...s };
  const G = familyGrouping(base);
  const f = rounder(dtype);
  const x = new Array<number>(G.numel).fill(0);
  for (let g = 0; g < G.groups; g++) indicesOf(G, g).forEach((i, k) => (x[i] = f(value(g, k))));
  return {
    name,
    problem: {
      op: t.forward,
      dtype,
      ...(paramDtype !== dtype ? { paramDtype } : {}),
      ...s,
      x,
      dy: x.map((_, k) => f(wave(k + 101))),
      // short dyadic fractions: exact in every dtype and paramDtype
      gamma: Array.from({ length: G.params }, (_, j) => 0.75 + 0.25 * (j % 5)),
      beta: Array.from({ length: G.params }, (_, j) => 0.5 - 0.125 * (j % 7)),
      eps: rounder(isHalf(dtype) ? 'float32' : dtype)(1e-3),
      ...over,
    },
  };
}

const ramp = (g: number, k: number) => (g + 1) * wave(k + 17 * g);

/** Run the target's ops the implementation has on the example and hold each to the reference (or to the profile's refusal). */
async function allOps(t: FamilyTarget, ex: Example, c: CheckContext): Promise<void> {
  const p = ex.problem;
  const G = familyGrouping(p);
  const refuses = FAMILY[t.forward].singleValueRule && G.m === 1 && c.profile.singleValue === 'error';
  const run = async (op: typeof t.forward | typeof t.backward, req: FamilyRequest) => {
    if (typeof c.impl[op] !== 'function') return;
    if (!refuses) return void (await agreeFamily(c, op, req, `${op} [${ex.name}]`));
    try {
      await callFamily(c, op, req);
    } catch (e) {
      if (e instanceof ContractFault && (e.fault === 'threw' || e.fault === 'rejected')) return;
      throw e;
    }
    throw new Mismatch(`${op} returned a result, but profile ${c.profile.name} requires an error for a group of one value (singleValue: 'error')`);
  };
  await run(t.forward, familyRequest(p));
  await run(t.backward, familyBackwardRequest(p));
}

type Build = (dtype: DType, paramDtype: DType, variant: AxisVariant) => Example[];

function edge(t: FamilyTarget, name: string, title: string, build: Build, opts: { mayRefuse?: string; dtypes?: DType[]; axes?: 'one' } = {}): CheckSpec {
  return familySpec(t, {
    family: 'edge',
    name,
    title: `${t.name}: ${title}`,
    needs: [],
    uses: [t.forward, t.backward],
    ...(opts.dtypes ? { dtypes: opts.dtypes } : {}),
    ...(opts.axes ? { axes: opts.axes } : {}),
    run: async (ctx) => {
      const examples = build(ctx.dtype, ctx.paramDtype, ctx.axis);
      if (opts.mayRefuse && typeof ctx.impl[t.forward] === 'function') {
        // an input an implementation may legitimately refuse (eps = 0): a refusal skips the check, in its words
        try {
          await callFamily(ctx, t.forward, familyRequest(examples[0]!.problem));
        } catch (e) {
          if (e instanceof ContractFault && (e.fault === 'threw' || e.fault === 'rejected')) return { status: 'skipped', reason: `${opts.mayRefuse}: ${e.message}` };
          throw e;
        }
      }
      return runExamples(ctx, examples, (ex, c) => allOps(t, ex, c));
    },
  });
}

const HALF: DType[] = ['float16', 'bfloat16'];

function edgesOf(t: FamilyTarget): CheckSpec[] {
  /** `count` groups of about m values: layer rows; groupNorm N = count, G = 2 of 2 channels; instanceNorm N = count, C = 2. */
  const rows = (count: number, m: number): Size => ({ count, m, N: count, G: 2, cg: 2, C: 2, spatial: [t.kind === 'group' ? Math.max(1, Math.ceil(m / 2)) : m] });
  const ex = (name: string, d: DType, pd: DType, v: AxisVariant, z: Size, value: (g: number, k: number) => number, over: Partial<FamilyProblem> = {}) => example(t, name, d, pd, v, z, value, over);
  const specs: CheckSpec[] = [
    edge(t, 'constant-group', 'a constant statistics group (variance 0: y = beta, x-hat = 0; RMSNorm: y = gamma c / sqrt(c^2 + eps)) beside varying ones, and every group constant at a large value', (d, pd, v) => [
      ex('one constant group', d, pd, v, { count: 3, m: 6, N: 3, spatial: [3] }, (g, k) => (g === 1 ? 2.5 : ramp(g, k))),
      ex('every group constant, large value (onnxruntime #21935: a row of 1234.0)', d, pd, v, { count: 2, m: 4, N: 2, spatial: [2] }, (g) => 1234 + g),
    ]),
    edge(
      t,
      'one-value-group',
      t.kind === 'instance'
        ? 'groups of one value (a spatial size of 1): an error under the profile\'s singleValue rule (pytorch, paper), else variance 0 and y = beta'
        : t.kind === 'group'
          ? 'groups of one value (G = C, no spatial axis): variance 0, y = beta, dx = 0'
          : 'normalized axes of length 1 (a group of one value): variance 0, y = beta (RMSNorm: gamma x / sqrt(x^2 + eps)), dx = 0',
      (d, pd, v) => [ex('m = 1', d, pd, v, t.kind === 'instance' ? { N: 2, C: 3, spatial: [1] } : { count: 3, m: 1, norm: [1], N: 3, G: 3, cg: 1, spatial: [] }, ramp)],
    ),
    edge(t, 'eps-zero', 'eps = 0 where defined (every group varies)', (d, pd, v) => [ex('eps 0', d, pd, v, rows(2, 6), ramp, { eps: 0 })], { mayRefuse: 'the implementation refuses eps = 0' }),
    edge(
      t,
      'large-offset',
      '|mean| / std = 1e4, 1e6 (and 1e8 in float64; 100 and 1000 in float16, 10 and 100 in bfloat16) and the onnxruntime #28463 row 40000, 40001, 40002, 40003: the variance must be two-pass (E[x^2] - E[x]^2 loses it)',
      (d, pd, v) => {
        const ratios = d === 'float32' ? [1e4, 1e6] : d === 'float16' ? [1e2, 1e3] : d === 'bfloat16' ? [1e1, 1e2] : [1e4, 1e6, 1e8];
        const out = ratios.map((r) => {
          const std = d === 'float32' ? 1e4 / r : 1;
          return ex(`|mean|/std = ${r.toExponential(0)}`, d, pd, v, rows(2, 8), (g, k) => (g === 0 ? 1 : -1) * std * r + std * wave(k + g), { eps: rounder(isHalf(d) ? 'float32' : d)(1e-5 * std * std) });
        });
        // the onnxruntime rows (float32 / float64: 40001..40003 are not float16 values)
        if (!isHalf(d)) out.push(ex('rows 40000, 40001, 40002, 40003 (onnxruntime #28463)', d, pd, v, rows(2, 4), (g, k) => 40000 + k + 8 * g, { eps: 1e-5 }));
        return out;
      },
    ),
    edge(t, 'subnormal', 'subnormal inputs (float32 ~1e-40, float64 ~1e-310, float16 ~6e-8, bfloat16 ~1e-39): underflow must not turn into NaN', (d, pd, v) => {
      const tiny = d === 'float32' ? 2 ** -135 : d === 'float16' ? 2 ** -24 : d === 'bfloat16' ? 2 ** -130 : 2 ** -1040;
      return [ex('subnormal values', d, pd, v, rows(2, 6), (g, k) => tiny * Math.round(8 * wave(k + g)))];
    }),
    edge(t, 'large-magnitude', 'large magnitudes (float32 ~1e15, float64 ~1e150, float16 ~1e4, bfloat16 ~1e18): no overflow in the squares', (d, pd, v) => {
      const big = d === 'float32' ? 1e15 : d === 'float16' ? 1e4 : d === 'bfloat16' ? 1e18 : 1e150;
      return [ex('large values', d, pd, v, rows(2, 6), (g, k) => big * (1 + g + wave(k + g)))];
    }),
    edge(t, 'rank', t.kind === 'instance' ? 'rank 3 to 5' : t.kind === 'group' ? 'rank 2 to 5' : 'rank 2 to 5 (the middle-axis variant: 4 and 5)', (d, pd, v) => {
      const shapes: Array<{ shape: number[]; axis: number }> =
        t.kind === 'layer'
          ? v === 'other'
            ? [
                { shape: [2, 2, 3, 2], axis: 2 },
                { shape: [2, 2, 2, 3, 2], axis: 2 },
                { shape: [2, 2, 2, 3, 2], axis: 3 },
              ]
            : [2, 3, 4, 5].map((r) => {
                const shape = [3, 5, 2, 2, 2].slice(0, r);
                return { shape, axis: v === 'last' ? r - 1 : 1 };
              })
          : [2, 3, 4, 5]
              .filter((r) => r >= (t.kind === 'instance' ? 3 : 2))
              .map((r) => {
                const C = t.kind === 'group' ? 4 : 3;
                const spatial = [3, 2, 2].slice(0, r - 2);
                const shape = v === 'last' ? [2, ...spatial, C] : [2, C, ...spatial];
                return { shape, axis: v === 'last' ? r - 1 : 1 };
              });
      return shapes.map((at) => ex(`rank ${at.shape.length} [${at.shape.join(', ')}] axis ${at.axis}`, d, pd, v, { G: 2, cg: 2, C: 3, at: { [v]: at } }, ramp));
    }),
    edge(
      t,
      'unit-axes',
      t.kind === 'layer' ? 'axes of length 1 among the normalized and the batch axes' : 'spatial axes of length 1 and a batch of one sample',
      (d, pd, v) =>
        t.kind === 'layer'
          ? [ex('normalized axes [1, 3, 1]', d, pd, v, { count: 2, m: 3, norm: [1, 3, 1] }, ramp), ex('one row', d, pd, v, { count: 1, m: 5, norm: [5, 1] }, ramp)]
          : [ex('spatial [1, 3, 1]', d, pd, v, { N: 2, spatial: [1, 3, 1] }, ramp), ex('N = 1', d, pd, v, { N: 1, spatial: [4] }, ramp)],
    ),
    edge(
      t,
      'half-overflow',
      'float16 sums and squares overflow: a group of 4096 values of ~20 (sum 81,920 > 65504) and values of ~300 (x^2 > 65504): sums and squares must be wider than float16',
      (d, pd, v) => [
        ex('4096 values of 20 + noise', d, pd, v, { count: 1, m: 4096, norm: [64, 64], N: 1, G: 1, cg: 4, C: 1, spatial: [t.kind === 'group' ? 1024 : 4096] }, (g, k) => 20 + g + 0.5 * wave(k + g)),
        ex('values of ~300 (x^2 ~ 90,000)', d, pd, v, rows(2, 16), (g, k) => 300 + 30 * wave(k + 7 * g)),
      ],
      { dtypes: HALF },
    ),
  ];
  if (t.kind === 'group') {
    specs.push(
      edge(t, 'groups-extremes', 'G = 1 (one group per sample: LayerNorm over [1, rank) with per-channel parameters) and G = C (one channel per group: InstanceNorm)', (d, pd, v) => [
        ex('G = 1, C = 6', d, pd, v, { N: 2, G: 1, cg: 6, spatial: [3] }, ramp),
        ex('G = C = 6', d, pd, v, { N: 2, G: 6, cg: 1, spatial: [3] }, ramp),
      ]),
    );
  }
  return specs;
}

export const familyEdgeChecks: CheckSpec[] = FAMILY_TARGETS.flatMap(edgesOf);
