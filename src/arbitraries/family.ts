/**
 * Arbitraries for the normalization family's problems (LayerNorm, RMSNorm, GroupNorm,
 * InstanceNorm; issue 23), built like BN's (./problem.ts) so counterexamples shrink to a few small
 * numbers, but over the op's grouping (src/contract/grouping.ts): conditioning is per statistics
 * group (each group its own offset), parameters are per the op's parameter index.
 *
 * The shape is drawn per op and axis variant:
 *   layerNorm / rmsNorm: variant = the first normalized axis: 'first' axis 1 (every axis but the
 *     batch), 'last' axis rank - 1 (the last axis only), 'other' a middle axis 2..rank-2 (rank >= 4);
 *   groupNorm / instanceNorm: variant = the channel axis, 'first' 1 or 'last' rank - 1.
 * Floors (m per group, samples, groups) grow an axis the floor is about, so a property that needs
 * them gets them by construction, never by a filter (docs/CONTRACT.md "No vacuous verdicts").
 * Values: 'grid' x = (offset_g + z) 2^scale (exact shifts and power-of-two scalings), or 'full'
 * (a full-mantissa fraction added, rounded once to the dtype: sums round). Half dtypes mix in large
 * groups (LARGE_GROUP), as BN's half problems do.
 */
import fc from 'fast-check';
import type { DType, FamilyOp, FamilyRequest } from '../contract/contract.js';
import { roundTo } from '../contract/dtypes.js';
import { FAMILY, groupingFor, groupOf, indicesOf, type Grouping } from '../contract/grouping.js';
import type { AxisVariant } from '../harness/types.js';
import { isHalf } from '../numerics/half.js';
import { mulberry32 } from '../numerics/random.js';
import { exactTyped, fullFraction, halfGridOf } from './problem.js';

/** The forward ops of the family; each check builds its backward request from the same problem. */
export type FamilyForwardOp = 'layerNorm' | 'rmsNorm' | 'groupNorm' | 'instanceNorm';

export interface FamilyProblem {
  /** The forward op this problem is for (its backward op takes the same problem). */
  op: FamilyForwardOp;
  /** x, dy (and y, dx). */
  dtype: DType;
  /** gamma, beta (and mean, invStdDev, dgamma, dbeta); default dtype. */
  paramDtype?: DType;
  shape: number[];
  /** The contract's axis: layerNorm / rmsNorm the first normalized axis, groupNorm / instanceNorm the channel axis. */
  axis: number;
  /** groupNorm only: G. */
  groups?: number;
  /** Plain numbers, exactly representable in dtype (gamma, beta: in paramDtype). */
  x: number[];
  dy: number[];
  gamma: number[];
  beta: number[];
  eps: number;
}

export interface FamilyProblemOptions {
  op: FamilyForwardOp;
  dtype: DType;
  paramDtype?: DType;
  axis: AxisVariant;
  /** Smallest group size m (default 2; 1 only for checks about one-value groups). */
  minM?: number;
  /** Smallest batch (axis 0) size; default 1. */
  minSamples?: number;
  /** Smallest number of statistics groups; default 1. */
  minGroups?: number;
  /** Smallest rank (default 2; instanceNorm 3, layerNorm's 'other' variant 4). */
  minRank?: number;
  maxRank?: number;
  maxDim?: number;
  /** Largest log2 of a group's offset / spread. */
  maxLogRatio?: number;
  eps?: number[];
  values?: 'grid' | 'full';
  /** groupNorm's G: any divisor of C drawn ('any', default), G = 1 ('one') or G = C ('all'). */
  groups?: 'any' | 'one' | 'all';
  /** Mix in large groups (LARGE_GROUP); default: on for half dtypes unless the check bounds maxDim. */
  largeM?: boolean;
}

/**
 * The large-group share of a half problem arbitrary (one run in weight + 1): m in an octave
 * (2^(o-1), 2^o], o in 7..12 three times as often as 13..14, one to three groups. Kept below BN's
 * 2^17 (LARGE_M): a layerNorm group of m values also has m parameters, and the half bug class the
 * family adds (sums and squares overflowing float16) is named by bn-style edge cases at m = 4096
 * (src/checks/family-edge.ts half-overflow). Cost ~4 us a value: ~0.5 ms a run on average.
 */
export const LARGE_GROUP = { weight: 31, minLog2: 7, midLog2: 12, maxLog2: 14, maxGroups: 3 } as const;

const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1);

interface ShapeDraw {
  rank: number;
  dims: number[];
  axisSeed: number;
  /** groupNorm: G and channels per group C / G. */
  g: number;
  cg: number;
}

/** The op's shape, axis (and G) for a draw, with the floors applied (see the file comment). */
export function familyShape(opts: FamilyProblemOptions, d: ShapeDraw): { shape: number[]; axis: number; groups?: number } {
  const kind = FAMILY[opts.op].kind;
  const minM = opts.minM ?? 2;
  const minSamples = opts.minSamples ?? 1;
  const minGroups = opts.minGroups ?? 1;
  if (kind === 'layer') {
    const rank = Math.max(d.rank, opts.axis === 'other' ? 4 : 2, opts.minRank ?? 2);
    const dims = Array.from({ length: rank }, (_, k) => d.dims[k] ?? 1);
    const axis = opts.axis === 'first' ? 1 : opts.axis === 'last' ? rank - 1 : 2 + (d.axisSeed % (rank - 3));
    const m = prod(dims.slice(axis));
    if (m < minM) dims[rank - 1] = dims[rank - 1]! * Math.ceil(minM / m);
    dims[0] = Math.max(dims[0]!, minSamples);
    const groups = prod(dims.slice(0, axis));
    if (groups < minGroups) dims[0] = dims[0]! * Math.ceil(minGroups / groups);
    return { shape: dims, axis };
  }
  // groupNorm / instanceNorm: a channel axis; instanceNorm (and G = C with m > 1) needs a spatial axis
  const needsSpatial = kind === 'instance' || (opts.groups === 'all' && minM > 1);
  const rank = Math.max(d.rank, needsSpatial ? 3 : 2, opts.minRank ?? 2);
  const dims = Array.from({ length: rank }, (_, k) => d.dims[k] ?? 1);
  const axis = opts.axis === 'last' ? rank - 1 : 1;
  let G = 0;
  if (kind === 'group') {
    let cg = opts.groups === 'all' ? 1 : d.cg;
    G = opts.groups === 'one' ? 1 : d.g;
    if (rank === 2 && cg < minM) cg = minM; // no spatial axis: the group grows through its channels
    dims[axis] = G * cg;
  }
  const C = dims[axis]!;
  const cg = kind === 'group' ? C / G : 1;
  const spatial = rank >= 3 ? (axis === 1 ? rank - 1 : 1) : -1;
  const m = (cg * prod(dims)) / (dims[0]! * C);
  if (m < minM && spatial >= 0) dims[spatial] = dims[spatial]! * Math.ceil(minM / m);
  dims[0] = Math.max(dims[0]!, minSamples);
  const count = dims[0]! * (kind === 'group' ? G : C);
  if (count < minGroups) dims[0] = dims[0]! * Math.ceil(minGroups / count);
  return kind === 'group' ? { shape: dims, axis, groups: G } : { shape: dims, axis };
}

const groupingOf = (p: Pick<FamilyProblem, 'op' | 'shape' | 'axis' | 'groups'>): Grouping => groupingFor(p.op, p);

/** The grouping a problem normalizes over. */
export const familyGrouping = groupingOf;

interface Draws {
  z: ArrayLike<number>;
  dy: ArrayLike<number>;
  fx: ArrayLike<number>;
  fdy: ArrayLike<number>;
  offsets: ArrayLike<number>;
  gamma: ArrayLike<number>;
  fgamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  fbeta: ArrayLike<number>;
}

function build(opts: FamilyProblemOptions, s: { shape: number[]; axis: number; groups?: number }, eps: number, scale: number, v: Draws): FamilyProblem {
  const G = groupingOf({ op: opts.op, ...s });
  const f = (x: number) => roundTo(opts.dtype, x);
  // eps is a number, not an array: rounded to float32 at most (a half implementation's compute precision)
  const fEps = (x: number) => roundTo(isHalf(opts.dtype) ? 'float32' : opts.dtype, x);
  const grid = 2 ** scale;
  const x = new Array<number>(G.numel);
  for (let i = 0; i < G.numel; i++) x[i] = f((v.offsets[groupOf(G, i)]! + v.z[i]! + v.fx[i]!) * grid);
  const dy = new Array<number>(G.numel);
  for (let i = 0; i < G.numel; i++) dy[i] = f((v.dy[i]! + v.fdy[i]!) / 4);
  // |gamma| >= 1/8: a nonzero integer and a fraction of at most 1/2; parameters rounded to the
  // activations' dtype, then to paramDtype: the numbers the request carries (checks read them from
  // the problem), representable in both (rounding a dtype number to fewer bits keeps it in range)
  const fp = (x: number) => roundTo(opts.paramDtype ?? opts.dtype, f(x));
  const gamma = Array.from({ length: G.params }, (_, j) => fp((v.gamma[j]! + v.fgamma[j]!) / 4));
  const beta = Array.from({ length: G.params }, (_, j) => fp((v.beta[j]! + v.fbeta[j]!) / 4));
  return {
    op: opts.op,
    dtype: opts.dtype,
    ...(opts.paramDtype && opts.paramDtype !== opts.dtype ? { paramDtype: opts.paramDtype } : {}),
    shape: s.shape,
    axis: s.axis,
    ...(s.groups !== undefined ? { groups: s.groups } : {}),
    x,
    dy,
    gamma,
    beta,
    eps: fEps(eps),
  };
}

/** Random problems for a family op (see the file comment). */
export function familyProblemArb(opts: FamilyProblemOptions): fc.Arbitrary<FamilyProblem> {
  const maxRank = Math.max(opts.maxRank ?? 4, FAMILY[opts.op].kind === 'instance' || opts.groups === 'all' ? 3 : 2, opts.axis === 'other' ? 4 : 2, opts.minRank ?? 2);
  const maxDim = opts.maxDim ?? 4;
  const half = halfGridOf(opts.dtype, opts.paramDtype);
  const maxLogRatio = Math.min(opts.maxLogRatio ?? 20, 22, half?.maxLogRatio ?? 22);
  const full = opts.values === 'full';
  const small = fc.integer({ min: -8, max: 8 });
  const fraction = (max: number) => (full ? fullFraction.map((x) => x * max) : fc.constant(0));
  const fractions = (len: number, max = 1) => fc.array(fraction(max), { minLength: len, maxLength: len });
  const ints = (len: number, arb: fc.Arbitrary<number>) => fc.array(arb, { minLength: len, maxLength: len });
  const common = {
    eps: fc.constantFrom(...(opts.eps ?? [1e-3, 1e-5, 0.1, 1])),
    logRatio: fc.integer({ min: 0, max: maxLogRatio }),
    scale: fc.integer({ min: -6, max: half?.maxScale ?? 6 }),
  };
  const nonzero = fc.integer({ min: -8, max: 8 }).filter((g) => g !== 0);
  const smallProblems = fc
    .record({
      rank: fc.integer({ min: 2, max: maxRank }),
      dims: fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: maxRank, maxLength: maxRank }),
      axisSeed: fc.nat({ max: 16 }),
      g: fc.integer({ min: 1, max: 4 }),
      cg: fc.integer({ min: 1, max: 3 }),
      ...common,
    })
    .chain((r) => {
      const s = familyShape(opts, r);
      const G = groupingOf({ op: opts.op, ...s });
      const n = G.numel;
      return fc
        .record({
          z: ints(n, small),
          dy: ints(n, small),
          fx: fractions(n),
          fdy: fractions(n),
          offsets: ints(G.groups, fc.integer({ min: -(2 ** r.logRatio), max: 2 ** r.logRatio })),
          gamma: ints(G.params, nonzero),
          fgamma: fractions(G.params, 0.5),
          beta: ints(G.params, small),
          fbeta: fractions(G.params),
        })
        .map((v) => build(opts, s, r.eps, r.scale, v));
    });
  const large = opts.largeM ?? (isHalf(opts.dtype) && opts.maxDim === undefined);
  if (!large) return smallProblems;
  const largeProblems = fc
    .record({
      ...common,
      octave: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: LARGE_GROUP.minLog2, max: LARGE_GROUP.midLog2 }) },
        { weight: 1, arbitrary: fc.integer({ min: LARGE_GROUP.midLog2 + 1, max: LARGE_GROUP.maxLog2 }) },
      ),
      within: fc.integer({ min: 0, max: 2 ** 16 - 1 }),
      count: fc.integer({ min: 1, max: LARGE_GROUP.maxGroups }),
      side: fc.integer({ min: 1, max: 4 }),
      axisSeed: fc.nat({ max: 16 }),
      seed: fc.nat(),
    })
    .map((r) => {
      const lo = 2 ** (r.octave - 1);
      const m = lo + 1 + Math.floor((r.within * lo) / 2 ** 16);
      return { ...r, ...largeShape(opts, m, r.octave > LARGE_GROUP.midLog2 ? 1 : r.count, r.side, r.axisSeed) };
    })
    .map((r) => {
      const s = { shape: r.shape, axis: r.axis, ...(r.groups !== undefined ? { groups: r.groups } : {}) };
      const G = groupingOf({ op: opts.op, ...s });
      const rnd = mulberry32(r.seed);
      const int = () => Math.floor(rnd() * 17) - 8; // uniform on [-8, 8], as `small`
      const frac = full ? () => 2 * (rnd() + rnd() * 2 ** -32) - 1 : () => 0;
      const arr = (len: number, fn: () => number) => Float64Array.from({ length: len }, fn);
      const span = 2 ** r.logRatio;
      const v: Draws = {
        z: arr(G.numel, int),
        dy: arr(G.numel, int),
        fx: arr(G.numel, frac),
        fdy: arr(G.numel, frac),
        offsets: arr(G.groups, () => Math.floor(rnd() * (2 * span + 1)) - span),
        gamma: arr(G.params, () => (int() || 1)),
        fgamma: arr(G.params, () => frac() / 2),
        beta: arr(G.params, int),
        fbeta: arr(G.params, frac),
      };
      return build(opts, s, r.eps, r.scale, v);
    });
  return fc.oneof({ weight: LARGE_GROUP.weight, arbitrary: smallProblems }, { weight: 1, arbitrary: largeProblems });
}

/** A shape with `count` groups of at least m values for the op and variant (large half problems). */
function largeShape(opts: FamilyProblemOptions, m: number, count: number, side: number, axisSeed: number): { shape: number[]; axis: number; groups?: number } {
  const kind = FAMILY[opts.op].kind;
  const rest = Math.ceil(m / side);
  if (kind === 'layer') {
    if (opts.axis === 'last') return { shape: [count, m], axis: 1 };
    if (opts.axis === 'first') return { shape: [count, side, rest], axis: 1 };
    return { shape: [count, 1 + (axisSeed % 2), side, rest], axis: 2 };
  }
  // groupNorm: G = count groups of C / G = side channels (G = 1, or C with side 1, as asked); instanceNorm: count channels
  const G = kind === 'group' ? (opts.groups === 'one' ? 1 : count) : count;
  const C = kind === 'group' ? G * (opts.groups === 'all' ? 1 : side) : count;
  const S = kind === 'group' ? Math.ceil(m / (C / G)) : m;
  const shape = opts.axis === 'last' ? [1, S, C] : [1, C, S];
  return kind === 'group' ? { shape, axis: opts.axis === 'last' ? 2 : 1, groups: G } : { shape, axis: opts.axis === 'last' ? 2 : 1 };
}

const paramsOf = (p: FamilyProblem) => p.paramDtype ?? p.dtype;

/** The forward request of a problem (beta only for the ops that take it, groups only for groupNorm). */
export function familyRequest(p: FamilyProblem, over: Partial<FamilyProblem> = {}): FamilyRequest {
  const q = { ...p, ...over };
  const pd = paramsOf(q);
  return {
    dtype: q.dtype,
    paramDtype: pd,
    x: exactTyped(q.dtype, q.x, 'x'),
    shape: q.shape.slice(),
    axis: q.axis,
    ...(q.groups !== undefined && q.op === 'groupNorm' ? { groups: q.groups } : {}),
    gamma: exactTyped(pd, q.gamma, 'gamma'),
    ...(FAMILY[q.op].hasBeta ? { beta: exactTyped(pd, q.beta, 'beta') } : {}),
    eps: q.eps,
  } as FamilyRequest;
}

/** The backward request of a problem (the training gradient; dy, no beta). */
export function familyBackwardRequest(p: FamilyProblem, over: Partial<FamilyProblem> = {}): FamilyRequest {
  const q = { ...p, ...over };
  const pd = paramsOf(q);
  return {
    dtype: q.dtype,
    paramDtype: pd,
    x: exactTyped(q.dtype, q.x, 'x'),
    dy: exactTyped(q.dtype, q.dy, 'dy'),
    shape: q.shape.slice(),
    axis: q.axis,
    ...(q.groups !== undefined && q.op === 'groupNorm' ? { groups: q.groups } : {}),
    gamma: exactTyped(pd, q.gamma, 'gamma'),
    eps: q.eps,
  } as FamilyRequest;
}

/** Every group's element indices, in group order. */
export function groupIndices(p: Pick<FamilyProblem, 'op' | 'shape' | 'axis' | 'groups'>): Int32Array[] {
  const G = groupingOf(p);
  return Array.from({ length: G.groups }, (_, g) => indicesOf(G, g));
}
