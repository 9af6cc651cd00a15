/**
 * bn:edge:* — hand-written, named corners (pytorch's sample_inputs_batch_norm style), each run
 * through every op the implementation has and held to the reference under the tolerance.
 */
import { axisFor, backwardRequest, inferRequest, trainRequest, type Problem } from '../arbitraries/problem.js';
import type { DType } from '../contract/contract.js';
import { OPS } from '../contract/contract.js';
import { rounder } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import { runExamples, type CheckContext } from '../harness/check.js';
import { ContractFault } from '../harness/call.js';
import type { AxisVariant } from '../harness/types.js';
import { layoutOf } from '../contract/layout.js';
import { supportedOps } from '../harness/call.js';
import { callAndAgree, expectRefusal } from './common.js';
import type { CheckSpec } from './spec.js';

interface Example {
  name: string;
  problem: Problem;
}

/** Deterministic pseudo-random values in [-1, 1) for example data. */
function wave(k: number): number {
  const s = Math.sin(k * 12.9898 + 78.233) * 43758.5453;
  return 2 * (s - Math.floor(s)) - 1;
}

/** A shape of the given rank whose channel axis (per variant) has C channels. */
function shapeFor(variant: AxisVariant, dims: number[], C: number): { shape: number[]; axis: number } {
  const axis = axisFor(variant, dims.length + 1, dims.length);
  const shape = dims.slice();
  shape.splice(axis, 0, C);
  return { shape, axis };
}

function example(
  name: string,
  dtype: DType,
  variant: AxisVariant,
  dims: number[],
  C: number,
  value: (c: number, k: number) => number,
  over: Partial<Problem> = {},
  paramDtype: DType = dtype,
): Example {
  const { shape, axis } = shapeFor(variant, dims, C);
  const L = layoutOf(shape, axis);
  const f = rounder(dtype);
  const x = new Array<number>(L.numel);
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < C; c++) for (let i = 0; i < L.inner; i++) x[(o * C + c) * L.inner + i] = f(value(c, o * L.inner + i));
  }
  const problem: Problem = {
    dtype,
    ...(paramDtype !== dtype ? { paramDtype } : {}),
    shape,
    axis,
    x,
    dy: x.map((_, k) => f(wave(k + 101))),
    gamma: Array.from({ length: C }, (_, c) => f(0.75 + 0.25 * c)),
    beta: Array.from({ length: C }, (_, c) => f(0.5 - 0.125 * c)),
    eps: 1e-3,
    momentum: 0.9,
    runningMean: Array.from({ length: C }, (_, c) => f(0.25 * c)),
    runningVar: Array.from({ length: C }, (_, c) => f(1 + 0.5 * c)),
    ...over,
  };
  return { name, problem };
}

/** Run every op the implementation has on the example and hold each to the reference. */
async function allOps(ex: Example, c: CheckContext): Promise<void> {
  const ops = supportedOps(c.impl);
  const p = ex.problem;
  const m = layoutOf(p.shape, p.axis).m;
  const refuses = m === 1 && c.profile.singleValue === 'error';
  if (ops.includes('forwardTrain')) {
    if (refuses) await expectRefusal(c, 'forwardTrain', trainRequest(p), `profile ${c.profile.name} requires an error for m = 1 in training`);
    else await callAndAgree(c, 'forwardTrain', trainRequest(p));
  }
  if (ops.includes('forwardInfer')) await callAndAgree(c, 'forwardInfer', inferRequest(p));
  if (ops.includes('backward')) {
    if (refuses) await expectRefusal(c, 'backward', backwardRequest(p, true), `profile ${c.profile.name} requires an error for m = 1 in training`);
    else await callAndAgree(c, 'backward', backwardRequest(p, true), 'backward (training)');
    await callAndAgree(c, 'backward', backwardRequest(p, false), 'backward (inference)');
  }
}

type Build = (dtype: DType, axis: AxisVariant, paramDtype: DType) => Example[];

function edge(name: string, title: string, build: Build, mayRefuse?: string, dtypes?: DType[], axes?: 'one'): CheckSpec {
  return {
    family: 'edge',
    name,
    title,
    needs: [],
    uses: [...OPS], // each example runs through every op the implementation has
    ...(dtypes ? { dtypes } : {}),
    ...(axes ? { axes } : {}),
    run: async (ctx) => {
      const examples = build(ctx.dtype, ctx.axis, ctx.paramDtype);
      for (const ex of examples) if (ctx.paramDtype !== ctx.dtype) ex.problem.paramDtype = ctx.paramDtype;
      if (mayRefuse && supportedOps(ctx.impl).includes('forwardTrain')) {
        // an input the implementation may legitimately refuse (torch 2.13 refuses eps = 0 in
        // training): a refusal skips the check, with the implementation's words
        try {
          await ctx.call('forwardTrain', trainRequest(examples[0]!.problem));
        } catch (e) {
          if (e instanceof ContractFault && (e.fault === 'threw' || e.fault === 'rejected')) {
            return { status: 'skipped', reason: `${mayRefuse}: ${e.message}` };
          }
          throw e;
        }
      }
      return runExamples(ctx, examples, allOps);
    },
  };
}

const ramp = (c: number, k: number) => (c + 1) * wave(k + 17 * c);

export const edgeChecks: CheckSpec[] = [
  edge('m1', 'm = 1 value per channel in training: an error (pytorch, paper) or variance 0 and y = beta (keras, tensorflow-fused, onnx)', (d, a) => [
    example('N=1, C=3', d, a, [1], 3, ramp),
    example('N=1, spatial 1x1', d, a, [1, 1, 1], 2, ramp),
  ]),
  edge('m2', 'm = 2 values per channel', (d, a) => [example('N=2, C=3', d, a, [2], 3, ramp), example('N=1, spatial 2', d, a, [1, 2], 2, ramp)]),
  edge('constant-channel', 'a constant channel: variance 0, y = beta, x-hat = 0', (d, a) => [
    example('one constant channel', d, a, [4, 2], 3, (c, k) => (c === 1 ? 2.5 : ramp(c, k))),
    example('all channels constant, large value', d, a, [3], 2, (c) => 1000 + c),
  ]),
  edge('eps-zero', 'eps = 0 where defined (every channel varies)', (d, a) => [example('eps 0', d, a, [5, 2], 2, ramp, { eps: 0 })], 'the implementation refuses eps = 0'),
  edge('large-offset', '|mean| / std = 1e4, 1e6 (and 1e8 in float64; 100 and 1000 in float16, 10 and 100 in bfloat16, computed in float32): the two-pass variance must survive', (d, a) => {
    const ratios = d === 'float32' ? [1e4, 1e6] : d === 'float16' ? [1e2, 1e3] : d === 'bfloat16' ? [1e1, 1e2] : [1e4, 1e6, 1e8];
    return ratios.map((r) => {
      const std = d === 'float32' ? 1e4 / r : 1;
      return example(`|mean|/std = ${r.toExponential(0)}`, d, a, [8, 2], 2, (c, k) => (c === 0 ? 1 : -1) * std * r + std * wave(k + c), { eps: 1e-5 * std * std });
    });
  }),
  edge('single-channel', 'C = 1', (d, a) => [example('C=1', d, a, [6, 2], 1, ramp)]),
  edge('rank', 'rank 2 to 5', (d, a) => [
    example('rank 2', d, a, [5], 2, ramp),
    example('rank 3', d, a, [2, 3], 2, ramp),
    example('rank 4', d, a, [2, 2, 3], 2, ramp),
    example('rank 5', d, a, [2, 2, 2, 2], 2, ramp),
  ]),
  edge('denormal', 'subnormal inputs (float32 ~1e-40, float64 ~1e-310, float16 ~6e-8, bfloat16 ~1e-39): underflow must not turn into NaN', (d, a) => {
    const tiny = d === 'float32' ? 2 ** -135 : d === 'float16' ? 2 ** -24 : d === 'bfloat16' ? 2 ** -130 : 2 ** -1040;
    return [example('subnormal values', d, a, [6], 2, (c, k) => tiny * Math.round(8 * wave(k + c)))];
  }),
  edge('large-magnitude', 'large magnitudes (float32 ~1e15, float64 ~1e150, float16 ~1e4, bfloat16 ~1e18): no overflow in the squares', (d, a) => {
    const big = d === 'float32' ? 1e15 : d === 'float16' ? 1e4 : d === 'bfloat16' ? 1e18 : 1e150;
    return [example('large values', d, a, [6], 2, (c, k) => big * (1 + c + wave(k + c)))];
  }),
  ...halfEdgeChecks(),
];

/**
 * The half-precision bug class (issue 12), one named corner each; expected answers are the exact
 * ones rounded once to each output's dtype, so where pure half cannot hold the answer the expected
 * value is itself ±Infinity (docs/edge-cases.md, "Half precision"):
 * - half-running-var-overflow: a running variance above 65504 (float32 parameters: 1e5; pure
 *   float16: 60000 and a batch variance of ~9e4, whose exact value rounds to Infinity in float16:
 *   variance and running variance are expected to be Infinity, y finite).
 * - half-sum-overflow: 4,096 values of ~20 per channel; their sum, 81,920, is beyond float16.
 * - half-bessel-large-m: m = 70,000 > 65504: Bessel's m / (m - 1) formed in float16 is inf / inf.
 * - half-eps: eps = 1e-8 (below float16's smallest subnormal, 6e-8: rounds to 0 in float16) and
 *   1e-5 on a constant channel (variance exactly 0: y = beta exactly, any NaN is wrong).
 */
function halfEdgeChecks(): CheckSpec[] {
  const HALF: DType[] = ['float16', 'bfloat16'];
  return [
    edge(
      'half-running-var-overflow',
      'a running variance above 65504 (float16\'s largest value): finite y with float32 parameters; pure float16 rounds the exact statistics to Infinity',
      (d, a, pd) => {
        const rv = isHalf(pd) ? rounder(pd)(60000) : 1e5;
        return [
          example('running variance 1e5 (60000 in pure half), batch spread ~300', d, a, [16], 2, (c, k) => (c + 1) * 300 * wave(k + 5 * c), {
            runningVar: [rv, rv],
            runningMean: [0, 0.5],
          }, pd),
        ];
      },
      undefined,
      HALF,
    ),
    edge(
      'half-sum-overflow',
      'm = 4096 values of ~20 per channel: the sum (81,920) overflows float16, the mean (20) does not',
      (d, a, pd) => [example('4096 values of 20 + noise', d, a, [4096], 2, (c, k) => 20 + c + 0.5 * wave(k + c), {}, pd)],
      undefined,
      HALF,
    ),
    edge(
      'half-bessel-large-m',
      'm = 70,000 > 65504: Bessel\'s factor m / (m - 1) must not be formed in float16 (inf / inf = NaN)',
      (d, a, pd) => [example('m = 70000, C = 1', d, a, [70000], 1, (c, k) => 1 + wave(k), {}, pd)],
      undefined,
      HALF,
      'one', // 70,000 values: one axis variant is enough (0.5 s each)
    ),
    edge(
      'half-eps',
      'eps = 1e-8 (0 in float16) and 1e-5 (1.0014e-5 in float16) on a constant channel and a tiny spread: eps must be applied as given',
      (d, a, pd) =>
        [1e-8, 1e-5].map((eps) =>
          example(`eps ${eps}: a constant channel and a spread of ~1e-3`, d, a, [8], 2, (c, k) => (c === 0 ? 0.5 : 0.5 + 2 ** -10 * Math.round(4 * wave(k))), { eps }, pd),
        ),
      undefined,
      HALF,
    ),
  ];
}
