/**
 * Arbitraries for BN problems with controlled conditioning, built so that counterexamples shrink
 * to a few small numbers: shapes shrink toward [2, 1].
 * - values: 'grid' (the default): small integers z on a grid, x = (offset + z) * 2^scale, so
 *   shifts by multiples of the grid and power-of-two scalings are exact in float32 and float64
 *   alike (the invariance checks rely on it). But most sums of such values are exact too, so an
 *   implementation with poor accumulation is rarely exercised on them.
 * - values: 'full': the same plus a full-mantissa fraction, x = (offset + z + f) * 2^scale with
 *   f a double in (-1, 1) rounded to the dtype (dy, gamma, beta likewise), so sums and products
 *   round. f shrinks toward 0, so a counterexample still shrinks to the grid's small numbers
 *   whenever the grid alone shows the bug, and keeps a fraction only where rounding is the bug.
 */
import fc from 'fast-check';
import type { AnyRequest, AnySyncRequest, BackwardRequest, DType, ForwardInferRequest, ForwardTrainRequest } from '../contract/contract.js';
import { roundTo } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import { layoutOf } from '../contract/layout.js';
import type { AxisVariant } from '../harness/types.js';

export interface Problem {
  /** Activations' dtype (x, dy). */
  dtype: DType;
  /** Per-channel arrays' dtype (gamma, beta, running statistics); default dtype. */
  paramDtype?: DType;
  shape: number[];
  axis: number;
  /** Plain numbers, exactly representable in dtype (per-channel arrays: in paramDtype). */
  x: number[];
  dy: number[];
  gamma: number[];
  beta: number[];
  eps: number;
  momentum: number;
  runningMean: number[];
  runningVar: number[];
}

export interface ProblemOptions {
  dtype: DType;
  paramDtype?: DType;
  axis: AxisVariant;
  /** Smallest m allowed (2 unless a check is about m = 1). */
  minM?: number;
  maxRank?: number;
  maxDim?: number;
  /** Largest log2 of offset / spread: conditioning up to ~2^maxLogRatio. */
  maxLogRatio?: number;
  /** eps values to draw from (positive unless the check handles 0). */
  eps?: number[];
  momentum?: number[];
  /** 'grid' (exact sums, exact shifts and scalings) or 'full' (full-mantissa values); default grid. */
  values?: 'grid' | 'full';
}

/** The axis a variant picks for a rank. */
export function axisFor(variant: AxisVariant, rank: number, seed: number): number {
  if (variant === 'first') return 1;
  if (variant === 'last') return rank - 1;
  return seed % rank;
}

/**
 * A 52-bit fraction uniform in value on (-1, 1): hi and lo 26 bits each (fc.double would be
 * uniform over bit patterns, mostly 1e-200 and the like, which vanish next to an integer).
 * Shrinks toward 0.
 */
const fullFraction = fc
  .tuple(fc.integer({ min: -(2 ** 26 - 1), max: 2 ** 26 - 1 }), fc.integer({ min: 0, max: 2 ** 26 - 1 }))
  .map(([hi, lo]) => (hi * 2 ** 26 + (hi < 0 ? -lo : lo)) / 2 ** 52);

const toDtype = (dtype: DType) => (v: number) => roundTo(dtype, v);

/**
 * Half dtypes: the grid must stay exact and finite. |offset + z| <= 2^r + 8 fits the significand
 * (11 bits float16, 8 bfloat16) when r <= precision - 1; float16's range (65504) caps the grid
 * scale at 2^4 (|x| <= 1032 * 16, and a spread of 8 * 16 keeps even a pure-float16 variance finite).
 * With full-mantissa values every value is rounded once to its dtype, so it is representable.
 */
const HALF_GRID: Record<string, { maxLogRatio: number; maxScale: number }> = {
  float16: { maxLogRatio: 10, maxScale: 4 },
  bfloat16: { maxLogRatio: 7, maxScale: 6 },
};

/** Grid values: (offset + z) * 2^scale with z small; exact in float32 when |offset + z| < 2^24. */
export function problemArb(opts: ProblemOptions): fc.Arbitrary<Problem> {
  const maxRank = opts.maxRank ?? 4;
  const maxDim = opts.maxDim ?? 4;
  const minM = opts.minM ?? 2;
  const half = HALF_GRID[opts.dtype] ?? HALF_GRID[opts.paramDtype ?? opts.dtype];
  const maxLogRatio = Math.min(opts.maxLogRatio ?? 20, 22, half?.maxLogRatio ?? 22);
  return fc
    .record({
      dims: fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 2, maxLength: maxRank }),
      axisSeed: fc.nat({ max: 16 }),
      eps: fc.constantFrom(...(opts.eps ?? [1e-3, 1e-5, 0.1, 1])),
      momentum: fc.constantFrom(...(opts.momentum ?? [0.9, 0.1, 0.5, 0.99, 0])),
      logRatio: fc.integer({ min: 0, max: maxLogRatio }),
      scale: fc.integer({ min: -6, max: half?.maxScale ?? 6 }),
      seed: fc.nat(),
    })
    .map((r) => {
      const axis = axisFor(opts.axis, r.dims.length, r.axisSeed);
      const dims = r.dims.slice();
      // make m >= minM by growing the first non-channel axis
      const L0 = layoutOf(dims, axis);
      if (L0.m < minM) {
        const k = axis === 0 ? 1 : 0;
        dims[k] = dims[k]! * Math.ceil(minM / L0.m);
      }
      return { ...r, dims, axis };
    })
    .chain((r) => {
      const L = layoutOf(r.dims, r.axis);
      const C = L.channels;
      const n = L.numel;
      const small = fc.integer({ min: -8, max: 8 });
      const full = opts.values === 'full';
      // the fraction of a full-mantissa value; 0 on the grid (and what shrinking goes to)
      const fraction = (max: number) => (full ? fullFraction.map((f) => f * max) : fc.constant(0));
      const fractions = (len: number, max = 1) => fc.array(fraction(max), { minLength: len, maxLength: len });
      return fc
        .record({
          fx: fractions(n),
          fdy: fractions(n),
          fgamma: fractions(C, 0.5),
          fbeta: fractions(C),
          z: fc.array(small, { minLength: n, maxLength: n }),
          offsets: fc.array(fc.integer({ min: -(2 ** r.logRatio), max: 2 ** r.logRatio }), { minLength: C, maxLength: C }),
          dy: fc.array(small, { minLength: n, maxLength: n }),
          gamma: fc.array(fc.integer({ min: -8, max: 8 }).filter((g) => g !== 0), { minLength: C, maxLength: C }),
          beta: fc.array(small, { minLength: C, maxLength: C }),
          runningMean: fc.array(small, { minLength: C, maxLength: C }),
          runningVar: fc.array(fc.integer({ min: 1, max: 16 }), { minLength: C, maxLength: C }),
        })
        .map((v) => {
          const f = toDtype(opts.dtype);
          // eps is a number, not an array: rounded to float32 at most (the compute precision of a half implementation)
          const fEps = toDtype(isHalf(opts.dtype) ? 'float32' : opts.dtype);
          const grid = 2 ** r.scale;
          const x = new Array<number>(n);
          for (let o = 0; o < L.outer; o++) {
            for (let c = 0; c < C; c++) {
              for (let i = 0; i < L.inner; i++) {
                const k = (o * C + c) * L.inner + i;
                x[k] = f((v.offsets[c]! + v.z[k]! + v.fx[k]!) * grid);
              }
            }
          }
          const problem: Problem = {
            dtype: opts.dtype,
            ...(opts.paramDtype && opts.paramDtype !== opts.dtype ? { paramDtype: opts.paramDtype } : {}),
            shape: r.dims,
            axis: r.axis,
            x,
            // |gamma| >= 1/8: g is a nonzero integer and its fraction is at most 1/2
            // (per-channel values rounded to the activations' dtype: representable in paramDtype too,
            // which is the same dtype or float32)
            dy: v.dy.map((d, i) => f((d + v.fdy[i]!) / 4)),
            gamma: v.gamma.map((g, i) => f((g + v.fgamma[i]!) / 4)),
            beta: v.beta.map((b, i) => f((b + v.fbeta[i]!) / 4)),
            eps: fEps(r.eps),
            momentum: r.momentum,
            runningMean: v.runningMean.map((m) => m / 2),
            runningVar: v.runningVar.map((m) => m / 4),
          };
          return problem;
        });
    });
}

/**
 * Numbers as the check-side array for dtype, each rounded once to dtype: Float32Array for
 * float32, Float64Array otherwise (half values as numbers; the guarded call sends them as bit
 * patterns, src/contract/dtypes.ts toContractRequest).
 */
export function typed(dtype: DType, v: ArrayLike<number>): Float32Array | Float64Array {
  if (dtype === 'float32') return Float32Array.from(v);
  return isHalf(dtype) ? Float64Array.from(v, toDtype(dtype)) : Float64Array.from(v);
}

const paramsOf = (q: Problem) => q.paramDtype ?? q.dtype;

export function trainRequest(p: Problem, over: Partial<Problem> = {}): ForwardTrainRequest {
  const q = { ...p, ...over };
  const pd = paramsOf(q);
  return {
    dtype: q.dtype,
    paramDtype: pd,
    x: typed(q.dtype, q.x),
    shape: q.shape.slice(),
    axis: q.axis,
    gamma: typed(pd, q.gamma),
    beta: typed(pd, q.beta),
    eps: q.eps,
    momentum: q.momentum,
    runningMean: typed(pd, q.runningMean),
    runningVar: typed(pd, q.runningVar),
  };
}

export function inferRequest(p: Problem, over: Partial<Problem> = {}): ForwardInferRequest {
  const { momentum: _momentum, ...infer } = trainRequest(p, over);
  return infer;
}

export function backwardRequest(p: Problem, training: boolean, over: Partial<Problem> = {}): BackwardRequest {
  const q = { ...p, ...over };
  const pd = paramsOf(q);
  return {
    dtype: q.dtype,
    paramDtype: pd,
    x: typed(q.dtype, q.x),
    dy: typed(q.dtype, q.dy),
    shape: q.shape.slice(),
    axis: q.axis,
    gamma: typed(pd, q.gamma),
    eps: q.eps,
    training,
    ...(training ? {} : { runningMean: typed(pd, q.runningMean), runningVar: typed(pd, q.runningVar) }),
  };
}

/**
 * A request as plain JSON (typed arrays as number lists), for counterexamples in reports; a
 * synchronized request's shards too (any nesting of arrays and objects).
 */
export function plainRequest(req: AnyRequest | AnySyncRequest): Record<string, unknown> {
  const plain = (v: unknown): unknown =>
    ArrayBuffer.isView(v)
      ? Array.from(v as unknown as ArrayLike<number>)
      : Array.isArray(v)
        ? v.map(plain)
        : typeof v === 'object' && v !== null
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
          : v;
  return plain(req) as Record<string, unknown>;
}
