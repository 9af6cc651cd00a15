/**
 * bn:scale:* — the channel sizes real networks use. The other families keep m small (at most
 * 64 or so) so counterexamples shrink; accumulation bugs live at m = N*H*W ~ 10^5 (ResNet
 * layers) and beyond (apex#1768 appears "when feature_h, feature_w is large"). Each run checks
 * one problem at every size of SIZES, smallest first, and stops at the first that fails:
 *   m = 1000, 11163, 100800 and 1056784 (>= 2^20), none a multiple of 2 beyond 2^4, so a chunked
 *   or tiled reduction always has a partial last chunk.
 * Values are full-mantissa (every sum rounds), often of one sign with |mean| / spread up to
 * 2^12, where a sequential sum stagnates and its rounding errors correlate: the data on which a
 * probabilistic summation bound fails and a float32 sum declared as float64 shows.
 * Runs per case: ceil(runs / RUNS_PER_SCALE_RUN): one at the default 25 runs, 4 at `--runs 1000`,
 * 40 at 10,000. A scale run costs about what 10^4 ordinary property runs do (four channels of up
 * to a million values through the implementation and the reference), so even this ratio leaves the
 * family the largest share of a check's time; the default stays within ~2 s of the others.
 * The data are drawn from a seeded generator, not by fast-check element by element (a million
 * values per channel); fast-check draws and shrinks the recipe (sizes, offsets, spreads, eps,
 * seed; not shrunk: each try would cost up to a million-value call, and the recipe is already
 * small), and a failure's counterexample is that recipe.
 */
import fc from 'fast-check';
import type { AnyRequest, DType } from '../contract/contract.js';
import { axisSupported, Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import type { AxisVariant } from '../harness/types.js';
import { layoutOf } from '../contract/layout.js';
import { mulberry32 } from '../numerics/random.js';
import { axisFor, typed } from '../arbitraries/problem.js';
import { callAndAgree } from './common.js';
import type { CheckSpec } from './spec.js';

/** Non-channel dims of each size: m = 10^3, ~10^4, ~10^5, >= 2^20 (odd beyond a factor 16). */
export const SIZES: number[][] = [
  [10, 10, 10],
  [3, 61, 61],
  [7, 120, 120],
  [16, 257, 257],
];
/** One scale run per this many property runs (at least one). */
export const RUNS_PER_SCALE_RUN = 250;

export interface ScaleRecipe {
  channels: number;
  axisSeed: number;
  /** Per channel: log2 of |mean| / spread (-1: mean 0), the spread's log2, the mean's sign. */
  logRatio: number[];
  logSpread: number[];
  negative: boolean[];
  eps: number;
  /** dy = dyOffset + uniform(-1, 1): same-sign dy makes dbeta = sum dy correlate too. */
  dyOffset: number;
  seed: number;
}

// not shrunk: each try costs up to a million-value call, and the recipe is already small
const recipeArb: fc.Arbitrary<ScaleRecipe> = fc.noShrink(
  fc.integer({ min: 1, max: 2 }).chain((channels) =>
  fc.record({
    channels: fc.constant(channels),
    axisSeed: fc.nat({ max: 16 }),
    logRatio: fc.array(fc.integer({ min: -1, max: 12 }), { minLength: channels, maxLength: channels }),
    logSpread: fc.array(fc.integer({ min: -8, max: 8 }), { minLength: channels, maxLength: channels }),
    negative: fc.array(fc.boolean(), { minLength: channels, maxLength: channels }),
    eps: fc.constantFrom(1e-5, 1e-3, 1),
    dyOffset: fc.constantFrom(0, 1, 4),
    seed: fc.nat(),
  }),
  ),
);

/** Shape and channel axis for one size: the channel dim inserted where the axis variant says. */
export function scaleShape(dims: number[], channels: number, variant: AxisVariant, axisSeed: number): { shape: number[]; axis: number } {
  const rank = dims.length + 1;
  const axis = axisFor(variant, rank, axisSeed);
  const shape = dims.slice();
  shape.splice(axis, 0, channels);
  return { shape, axis };
}

/** The problem a recipe describes at one size (x, dy full-mantissa from the seeded generator). */
export function scaleProblem(r: ScaleRecipe, dims: number[], dtype: DType, variant: AxisVariant) {
  const { shape, axis } = scaleShape(dims, r.channels, variant, r.axisSeed);
  const L = layoutOf(shape, axis);
  const rnd = mulberry32(r.seed);
  // uniform on (-1, 1) with 53 random bits
  const uniform = () => 2 * (rnd() + rnd() * 2 ** -32) - 1;
  const round = dtype === 'float32' ? Math.fround : (v: number) => v;
  const x = dtype === 'float32' ? new Float32Array(L.numel) : new Float64Array(L.numel);
  const dy = dtype === 'float32' ? new Float32Array(L.numel) : new Float64Array(L.numel);
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < L.channels; c++) {
      const spread = 2 ** r.logSpread[c]!;
      const mean = r.logRatio[c]! < 0 ? 0 : (r.negative[c] ? -1 : 1) * spread * 2 ** r.logRatio[c]!;
      const base = (o * L.channels + c) * L.inner;
      for (let k = base; k < base + L.inner; k++) {
        x[k] = mean + spread * uniform(); // rounded to the dtype by the typed array
        dy[k] = r.dyOffset + uniform();
      }
    }
  }
  const C = L.channels;
  const params = Array.from({ length: C }, () => round(0.5 + rnd()));
  return {
    shape,
    axis,
    m: L.m,
    x,
    dy,
    gamma: typed(dtype, params),
    beta: typed(dtype, params.map((g) => round(g - 1))),
    runningMean: typed(dtype, new Array<number>(C).fill(0)),
    runningVar: typed(dtype, new Array<number>(C).fill(1)),
  };
}

/** The counterexample of a scale failure: the recipe (a million values would not fit a report). */
function recipeCounterexample(r: ScaleRecipe, op: 'forwardTrain' | 'backward', shape: number[], axis: number, dtype: DType) {
  return {
    op,
    shape,
    axis,
    dtype,
    request: {
      generator: 'bn:scale recipe (src/checks/scale.ts scaleProblem): x, dy from mulberry32(seed)',
      ...r,
    } as Record<string, unknown>,
  };
}

function scaleProperty(op: 'forwardTrain' | 'backward') {
  return (ctx: CheckContext) =>
    runProperty(
      ctx,
      recipeArb,
      async (r, c) => {
        // the million-value size: one channel, on the first axis variant the implementation
        // supports (its cost is 9x the three others together; layout is covered by those)
        const first = (['first', 'last', 'other'] as const).find((v) => axisSupported(ctx.impl, v));
        const sizes = ctx.axis === first ? SIZES : SIZES.slice(0, -1);
        for (const dims of sizes) {
          const large = dims === SIZES[SIZES.length - 1];
          const p = scaleProblem(large ? { ...r, channels: 1 } : r, dims, ctx.dtype, ctx.axis);
          const req: AnyRequest =
            op === 'forwardTrain'
              ? { x: p.x, shape: p.shape, axis: p.axis, gamma: p.gamma, beta: p.beta, eps: r.eps, momentum: 0.9, runningMean: p.runningMean, runningVar: p.runningVar }
              : { x: p.x, dy: p.dy, shape: p.shape, axis: p.axis, gamma: p.gamma, eps: r.eps, training: true };
          try {
            await callAndAgree(c, op, req, `${op === 'backward' ? 'backward (training)' : 'forwardTrain'} at m = ${p.m}`);
          } catch (e) {
            if (e instanceof Mismatch) {
              throw new Mismatch(e.message, { ...e.details, counterexample: recipeCounterexample(r, op, p.shape, p.axis, ctx.dtype) });
            }
            throw e;
          }
        }
      },
      Math.max(1, Math.ceil(ctx.runs / RUNS_PER_SCALE_RUN)),
    );
}

export const scaleChecks: CheckSpec[] = [
  {
    family: 'scale',
    name: 'forward-train',
    title: 'at m = 10^3 to >= 2^20 per channel (full-mantissa, same-sign data), every training output is within the tolerance of the reference',
    needs: ['forwardTrain'],
    // half precisions: large m is bn:edge:half-sum-overflow / half-bessel-large-m's job (this
    // family's data, spreads up to 2^8 at offsets up to 2^20, is not float16 data)
    dtypes: ['float32', 'float64'],
    run: scaleProperty('forwardTrain'),
  },
  {
    family: 'scale',
    name: 'backward',
    title: 'at m = 10^3 to >= 2^20 per channel, the training backward is within the tolerance of the reference',
    needs: ['backward'],
    dtypes: ['float32', 'float64'],
    run: scaleProperty('backward'),
  },
];
