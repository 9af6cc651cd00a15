/**
 * Arbitraries for BN problems with controlled conditioning, built so that counterexamples shrink
 * to a few small numbers: shapes shrink toward [2, 1].
 * - values: 'grid' (the default): small integers z on a grid, x = (offset + z) * 2^scale, so
 *   shifts by multiples of the grid and power-of-two scalings are exact in float32 and float64
 *   alike (the invariance checks rely on it). But most sums of such values are exact too, so an
 *   implementation with poor accumulation is rarely exercised on them.
 * - values: 'full': the same plus a full-mantissa fraction, x = (offset + z + f) * 2^scale with
 *   f a double in (-1, 1) rounded to the dtype (dy likewise; gamma, beta then to paramDtype), so sums and products
 *   round. f shrinks toward 0, so a counterexample still shrinks to the grid's small numbers
 *   whenever the grid alone shows the bug, and keeps a fraction only where rounding is the bug.
 */
import fc from 'fast-check';
import type { AnyRequest, AnySyncRequest, BackwardRequest, DType, ForwardInferRequest, ForwardTrainRequest } from '../contract/contract.js';
import { roundTo, UnrepresentableInputError } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import { layoutOf } from '../contract/layout.js';
import type { AxisVariant } from '../harness/types.js';
import { mulberry32 } from '../numerics/random.js';

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
  /** Smallest size of the first non-channel axis (the batch axis a permutation acts on); default 1. */
  minBatch?: number;
  /** Smallest channel count; default 1. */
  minChannels?: number;
  maxRank?: number;
  maxDim?: number;
  /** Largest log2 of offset / spread: conditioning up to ~2^maxLogRatio. */
  maxLogRatio?: number;
  /** eps values to draw from (positive unless the check handles 0). */
  eps?: number[];
  momentum?: number[];
  /** 'grid' (exact sums, exact shifts and scalings) or 'full' (full-mantissa values); default grid. */
  values?: 'grid' | 'full';
  /**
   * Mix in problems with large m (LARGE_M): default on for half dtypes (no other family takes
   * them past m = 64; bn:scale is float32/float64 only) unless the check bounds maxDim itself.
   */
  largeM?: boolean;
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
export const fullFraction = fc
  .tuple(fc.integer({ min: -(2 ** 26 - 1), max: 2 ** 26 - 1 }), fc.integer({ min: 0, max: 2 ** 26 - 1 }))
  .map(([hi, lo]) => (hi * 2 ** 26 + (hi < 0 ? -lo : lo)) / 2 ** 52);

const toDtype = (dtype: DType) => (v: number) => roundTo(dtype, v);

/**
 * Half dtypes: the grid must stay exact and finite. |offset + z| <= 2^r + 8 fits the significand
 * (11 bits float16, 8 bfloat16) when r <= precision - 1; float16's range (65504) caps the grid
 * scale at 2^4 (|x| <= 1032 * 16, and a spread of 8 * 16 keeps even a pure-float16 variance finite).
 * With full-mantissa values every value is rounded once to its dtype, so it is representable.
 */
export const HALF_GRID: Record<string, { maxLogRatio: number; maxScale: number }> = {
  float16: { maxLogRatio: 10, maxScale: 4 },
  bfloat16: { maxLogRatio: 7, maxScale: 6 },
};

/**
 * The grid limits for a precision: the activations' and the parameters' (whose dtype holds the
 * statistics), the tighter of each where both are half (bfloat16 data with float16 statistics:
 * bfloat16's ratio, float16's scale, so a variance stays below 65504); undefined for neither.
 */
export function halfGridOf(dtype: DType, paramDtype: DType = dtype): { maxLogRatio: number; maxScale: number } | undefined {
  const grids = [HALF_GRID[dtype], HALF_GRID[paramDtype]].filter((g) => g !== undefined);
  if (grids.length === 0) return undefined;
  return { maxLogRatio: Math.min(...grids.map((g) => g.maxLogRatio)), maxScale: Math.min(...grids.map((g) => g.maxScale)) };
}

/**
 * The large-m share of a half problem arbitrary: one run in LARGE_M.weight + 1 has m (values per
 * channel) in an octave (2^(o-1), 2^o]: o in 7..12 (m = 65..4096, the sizes no other half check
 * reaches) three times as often as o in 13..17 (up to m = 131072 >= 2^16), uniform within each
 * group and within the octave; 1 to 3 channels up to m = 4096, one channel beyond (two when a
 * check needs two). Cost: a value costs ~4 us through call, reference and comparison, and the
 * mixture averages ~4000 values per large problem, so ~0.5 ms per run on average, about what a
 * small run costs: the half checks take ~1.6x their small-only time. At the default 25 runs a
 * case meets a large problem with probability 1 - (31/32)^25 = 55%; one with m >= 2^16 comes
 * in 1 run of ~320 (about half the cases at --runs 200, and in every full half check).
 * The per-element values of a large problem come from a seeded generator (mulberry32), not from
 * fast-check element by element, so fast-check draws and shrinks the recipe (size, shape,
 * offsets, parameters, seed): shrinking the octave walks a failure back toward m = 65.
 */
export const LARGE_M = { weight: 31, minLog2: 7, midLog2: 12, maxLog2: 17, maxChannels: 3 } as const;

interface Recipe {
  dims: number[];
  axis: number;
  eps: number;
  momentum: number;
  logRatio: number;
  scale: number;
}

/** Per-element draws of a problem: integers z and dy on [-8, 8], and their fractions (0 on the grid). */
interface Elements {
  z: number[];
  dy: number[];
  fx: number[];
  fdy: number[];
}

/** The problem a recipe, its per-channel draws and its per-element draws describe. */
function buildProblem(
  opts: ProblemOptions,
  r: Recipe,
  v: { fgamma: number[]; fbeta: number[]; offsets: number[]; gamma: number[]; beta: number[]; runningMean: number[]; runningVar: number[] },
  e: Elements,
): Problem {
  const L = layoutOf(r.dims, r.axis);
  const C = L.channels;
  const n = L.numel;
  const f = toDtype(opts.dtype);
  const fp = (x: number) => roundTo(opts.paramDtype ?? opts.dtype, f(x));
  // eps is a number, not an array: rounded to float32 at most (the compute precision of a half implementation)
  const fEps = toDtype(isHalf(opts.dtype) ? 'float32' : opts.dtype);
  const grid = 2 ** r.scale;
  const x = new Array<number>(n);
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < L.inner; i++) {
        const k = (o * C + c) * L.inner + i;
        x[k] = f((v.offsets[c]! + e.z[k]! + e.fx[k]!) * grid);
      }
    }
  }
  return {
    dtype: opts.dtype,
    ...(opts.paramDtype && opts.paramDtype !== opts.dtype ? { paramDtype: opts.paramDtype } : {}),
    shape: r.dims,
    axis: r.axis,
    x,
    // |gamma| >= 1/8: g is a nonzero integer and its fraction is at most 1/2
    // (per-channel values rounded to the activations' dtype, then to paramDtype: the numbers the
    // request carries, which checks read from the problem; representable in both)
    dy: e.dy.map((d, i) => f((d + e.fdy[i]!) / 4)),
    gamma: v.gamma.map((g, i) => fp((g + v.fgamma[i]!) / 4)),
    beta: v.beta.map((b, i) => fp((b + v.fbeta[i]!) / 4)),
    eps: fEps(r.eps),
    momentum: r.momentum,
    runningMean: v.runningMean.map((m) => m / 2),
    runningVar: v.runningVar.map((m) => m / 4),
  };
}

/** Grid values: (offset + z) * 2^scale with z small; exact in float32 when |offset + z| < 2^24. */
export function problemArb(opts: ProblemOptions): fc.Arbitrary<Problem> {
  const maxRank = opts.maxRank ?? 4;
  const maxDim = opts.maxDim ?? 4;
  const minM = opts.minM ?? 2;
  const minBatch = opts.minBatch ?? 1;
  const minChannels = opts.minChannels ?? 1;
  const half = halfGridOf(opts.dtype, opts.paramDtype);
  const maxLogRatio = Math.min(opts.maxLogRatio ?? 20, 22, half?.maxLogRatio ?? 22);
  const full = opts.values === 'full';
  const small = fc.integer({ min: -8, max: 8 });
  // the fraction of a full-mantissa value; 0 on the grid (and what shrinking goes to)
  const fraction = (max: number) => (full ? fullFraction.map((f) => f * max) : fc.constant(0));
  const fractions = (len: number, max = 1) => fc.array(fraction(max), { minLength: len, maxLength: len });
  const common = {
    axisSeed: fc.nat({ max: 16 }),
    eps: fc.constantFrom(...(opts.eps ?? [1e-3, 1e-5, 0.1, 1])),
    momentum: fc.constantFrom(...(opts.momentum ?? [0.9, 0.1, 0.5, 0.99, 0])),
    logRatio: fc.integer({ min: 0, max: maxLogRatio }),
    scale: fc.integer({ min: -6, max: half?.maxScale ?? 6 }),
  };
  /** The shape's floors: m >= minM (the first non-channel axis grown), batch and channel counts. */
  const withFloors = (dims0: number[], axis: number): number[] => {
    const dims = dims0.slice();
    const k = axis === 0 ? 1 : 0; // the first non-channel axis
    dims[axis] = Math.max(dims[axis]!, minChannels);
    dims[k] = Math.max(dims[k]!, minBatch);
    const L0 = layoutOf(dims, axis);
    if (L0.m < minM) dims[k] = dims[k]! * Math.ceil(minM / L0.m);
    return dims;
  };
  /** Per-channel draws (C values each; small whatever m is). */
  const perChannel = (C: number, logRatio: number) =>
    fc.record({
      fgamma: fractions(C, 0.5),
      fbeta: fractions(C),
      offsets: fc.array(fc.integer({ min: -(2 ** logRatio), max: 2 ** logRatio }), { minLength: C, maxLength: C }),
      gamma: fc.array(fc.integer({ min: -8, max: 8 }).filter((g) => g !== 0), { minLength: C, maxLength: C }),
      beta: fc.array(small, { minLength: C, maxLength: C }),
      runningMean: fc.array(small, { minLength: C, maxLength: C }),
      runningVar: fc.array(fc.integer({ min: 1, max: 16 }), { minLength: C, maxLength: C }),
    });

  // (the draws in the order they always had, so a seed gives the problems it gave before)
  const smallProblems = fc
    .record({ dims: fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 2, maxLength: maxRank }), ...common, seed: fc.nat() })
    .map((r) => {
      const axis = axisFor(opts.axis, r.dims.length, r.axisSeed);
      return { ...r, dims: withFloors(r.dims, axis), axis };
    })
    .chain((r) => {
      const L = layoutOf(r.dims, r.axis);
      const C = L.channels;
      const n = L.numel;
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
        .map((v) => buildProblem(opts, r, v, v));
    });

  const large = opts.largeM ?? (isHalf(opts.dtype) && opts.maxDim === undefined);
  if (!large) return smallProblems;

  const largeProblems = fc
    .record({
      ...common,
      rank: fc.integer({ min: 2, max: Math.max(2, maxRank) }),
      octave: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: LARGE_M.minLog2, max: LARGE_M.midLog2 }) },
        { weight: 1, arbitrary: fc.integer({ min: LARGE_M.midLog2 + 1, max: LARGE_M.maxLog2 }) },
      ),
      within: fc.integer({ min: 0, max: 2 ** 16 - 1 }),
      // the other non-channel dims (rank 4: one of them), small; the first takes the rest of m
      side: fc.integer({ min: 1, max: 4 }),
      channels: fc.integer({ min: Math.max(1, minChannels), max: Math.max(LARGE_M.maxChannels, minChannels) }),
      seed: fc.nat(),
    })
    .map((r) => {
      // m in (2^(octave-1), 2^octave], log-uniform across octaves
      const lo = 2 ** (r.octave - 1);
      const m = lo + 1 + Math.floor((r.within * lo) / 2 ** 16);
      const others = r.rank - 1; // non-channel axes
      const rest = others >= 3 ? [r.side, 2] : others === 2 ? [r.side] : [];
      const first = Math.ceil(m / rest.reduce((a, b) => a * b, 1));
      const axis = axisFor(opts.axis, r.rank, r.axisSeed);
      const dims = [first, ...rest];
      dims.splice(axis, 0, r.octave > LARGE_M.midLog2 ? Math.max(1, minChannels) : r.channels);
      return { ...r, dims: withFloors(dims, axis), axis };
    })
    .chain((r) => {
      const L = layoutOf(r.dims, r.axis);
      return perChannel(L.channels, r.logRatio).map((v) => {
        const n = L.numel;
        const rnd = mulberry32(r.seed);
        const int = () => Math.floor(rnd() * 17) - 8; // uniform on [-8, 8], as `small`
        // uniform on (-1, 1) with 53 random bits, as fullFraction (0 on the grid)
        const frac = full ? () => 2 * (rnd() + rnd() * 2 ** -32) - 1 : () => 0;
        const e: Elements = { z: new Array(n), dy: new Array(n), fx: new Array(n), fdy: new Array(n) };
        for (let k = 0; k < n; k++) {
          e.z[k] = int();
          e.dy[k] = int();
          e.fx[k] = frac();
          e.fdy[k] = frac();
        }
        return buildProblem(opts, r, v, e);
      });
    });

  return fc.oneof({ weight: LARGE_M.weight, arbitrary: smallProblems }, { weight: 1, arbitrary: largeProblems });
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

/**
 * A request field's array, its numbers exactly representable in dtype: a check reads the problem's
 * numbers (gamma_j, x_i) in its derivation, so one rounded on the way to the implementation would
 * make the check judge a request it did not send. Such a value is a bug in the check, thrown as
 * UnrepresentableInputError, never rounded silently.
 */
export function exactTyped(dtype: DType, v: ArrayLike<number>, field: string): Float32Array | Float64Array {
  const out = typed(dtype, v);
  for (let i = 0; i < out.length; i++) {
    if (!Object.is(out[i], v[i]) && !(Number.isNaN(out[i]) && Number.isNaN(v[i]))) throw new UnrepresentableInputError(field, i, v[i]!, dtype);
  }
  return out;
}

const paramsOf = (q: Problem) => q.paramDtype ?? q.dtype;

export function trainRequest(p: Problem, over: Partial<Problem> = {}): ForwardTrainRequest {
  const q = { ...p, ...over };
  const pd = paramsOf(q);
  return {
    dtype: q.dtype,
    paramDtype: pd,
    x: exactTyped(q.dtype, q.x, 'x'),
    shape: q.shape.slice(),
    axis: q.axis,
    gamma: exactTyped(pd, q.gamma, 'gamma'),
    beta: exactTyped(pd, q.beta, 'beta'),
    eps: q.eps,
    momentum: q.momentum,
    runningMean: exactTyped(pd, q.runningMean, 'runningMean'),
    runningVar: exactTyped(pd, q.runningVar, 'runningVar'),
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
    x: exactTyped(q.dtype, q.x, 'x'),
    dy: exactTyped(q.dtype, q.dy, 'dy'),
    shape: q.shape.slice(),
    axis: q.axis,
    gamma: exactTyped(pd, q.gamma, 'gamma'),
    eps: q.eps,
    training,
    ...(training ? {} : { runningMean: exactTyped(pd, q.runningMean, 'runningMean'), runningVar: exactTyped(pd, q.runningVar, 'runningVar') }),
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
