/**
 * The one tolerance function: how far an implementation's outputs may be from the exact answer,
 * per output, as a function of dtype, the reduction structure, m, and the channel's conditioning.
 *
 * Derivation (first-order rounding-error analysis, composed op by op like gpuweb/cts's
 * "inherited accuracy"). Notation, per channel, all exact values from the reference:
 *   u   unit roundoff of the output dtype (2^-24 float32, 2^-53 float64); elementwise ops are
 *       assumed done in that precision (a kernel that does them wider is only more accurate).
 *   ua  unit roundoff of the accumulation dtype (AccumulationInfo.dtype; default: the dtype).
 *   g   error factor of one m-term sum: |fl(sum) - sum| <= g * sum|terms|.
 *       depth k = the longest chain of additions a term goes through:
 *         sequential m - 1, pairwise ceil(log2 m), tiled (tile - 1) + ceil(log2 ceil(m / tile)).
 *       g = gamma(k), gamma(j) = j ua / (1 - j ua): Higham's deterministic bound (Accuracy and
 *       Stability, eq. 4.4 and §4.2: a term that goes through d additions carries at most
 *       gamma(d) of relative error, whatever the data and whatever the order within the tree).
 *       Not the probabilistic lambda sqrt(k) ua of Higham & Mary (SIAM J. Sci. Comput. 2019,
 *       Thm 2.4): it assumes the rounding errors are independent with mean zero, which the data
 *       decide, not the kernel. Same-sign data make a sequential sum stagnate and its errors
 *       correlate (issue 11: float32 sequential two-pass at m = 2^20, x = 0.1 +- 0.001, errors
 *       5.7x the probabilistic bound). Pairwise and tiled orders do not rescue it: each level of
 *       the tree sums same-sign partial sums of similar size, the same correlation again, so the
 *       deterministic bound is used on every level too (depth = the sum of the levels' depths).
 *       No order we accept carries a proof of independence (stochastic rounding would), so the
 *       probabilistic bound is never used. At k <= 100 both agreed anyway (min(k, 10 sqrt k) = k).
 *   mu, var (biased), s = sqrt(var + eps), A = mean|x|, D = max|x - mu|, xhat = (x - mu) / s.
 *
 * mean:      dmu  = g A + 2u|mu|                   (sum, divide by m, round to the dtype)
 * variance:  dvar = dmu^2 + 2 dmu D + 2(g + 3ua)(var + D^2) + u var
 *            Two-pass: var^ = mean((x - mu - e)^2)(1 + theta) = var + e^2 (the cross term sums
 *            to zero) with |e| <= dmu. Shifted or Welford-style updates, with the shift inside the
 *            data, add a term linear in dmu (2 dmu D) and errors on (x - K)^2 <= D^2. What is
 *            not allowed: the one-pass E[x^2] - E[x]^2, whose error is ~ g mu^2: larger than
 *            this bound by ~ |mu| / D, i.e. by the offset-to-spread ratio.
 * 1 / s:     not first order. The variance an honest kernel normalizes with may be anywhere the
 *            judge accepts a variance: within V = SAFETY (dvar + UNDERFLOW_STEPS tiny) of var (the
 *            doubling covers dvar's second-order terms, see SAFETY below). With r = V / s^2 the
 *            computed s^2 lies in [s^2 (1 - r), s^2 (1 + r)], so s / s^ <= inv = 1 / sqrt(1 - r) and
 *            |s / s^ - 1| <= c = inv - 1, exactly (c ~ r / 2 = SAFETY dvar / (2 s^2) when r is small,
 *            the old first-order term, doubled; it grows without bound as r -> 1). c is exact, so
 *            it enters the first-order sums below as c / SAFETY (the doubling restores it).
 *            Singular channel: r >= 1. The variance's own bound reaches var + eps, so an honest
 *            kernel may compute var + eps = 0 (float32 Welford on x = [776995.4375, 776995.375],
 *            eps = 0: |mean| / s = 2.5e7, the variance rounds to 0 and y = +-Infinity or NaN).
 *            No bound on x-hat, y, dx or dgamma exists there: they are Infinity (no claim; the
 *            comparators accept any value, NaN included: errorRatio), never a product like
 *            Infinity * 0 = NaN. mean, variance, dbeta and the running statistics keep their bounds.
 * xhat:      dxhat = alpha + beta |xhat| + inv u (|x| + |mu|) / s
 *            x^ = (x - mu^) / s^: |x^ - xhat| <= |xhat| c + inv dmu / s (both exact in r), then
 *            4u (1 + c) of rounding on |x^| (var + eps, sqrt, the division or reciprocal, and the
 *            product or quotient with x - mu: one u each, s's relative error halved by the root
 *            but its own rounding whole): alpha = inv dmu / s, beta = c / SAFETY + 4u inv. The last term
 *            admits the folded form x * inv - mu * inv (tf.nn.batch_normalization, TF.js), which
 *            rounds x * inv.
 * y:         dy_out = |gamma| dxhat + u (3 |gamma xhat| + 2 |y| + |gamma mu| / s)
 *            gamma xhat + beta: u |gamma xhat| (product) + u |y| (sum). The folded form
 *            y = x a + b', a = gamma inv, b' = beta - mu a (tf.nn.batch_normalization, TF.js) also
 *            rounds b': u |b'| <= u (|beta| + |gamma mu| / s) <= u (|y| + |gamma xhat| + |gamma mu| / s);
 *            without it the first-order bound was exceeded by that form (worst ratio 0.86 of the
 *            doubled bound at eps = 1, var << eps, scripts/tolerance-ratios.ts), SAFETY covering it.
 * running:   dRM = |take| dmu + 2u (|keep RM| + |take mu|) + u |RM'| + u |momentum| (|RM| + |mu|)
 *            dRV = |take| b dvar + 3u (|keep RV| + |take b var|) + u |RV'| + u |momentum| (|RV| + |b var|)
 *            (b: Bessel factor). The last term: an implementation may hold momentum in its dtype;
 *            fl(0.99) in float32 moves 1 - momentum by u * 0.99, i.e. 99u relative to 0.01.
 *            The difference form RM' = RM - take (RM - mu) (tf.compat.v1.assign_moving_average,
 *            tf-keras, TF.js layers) rounds RM - mu, the product and the subtraction:
 *            2u |take| (|RM| + |mu|) + u |RM'| (and one more u |take b var| for the Bessel product),
 *            which exceeds the keep/take form's terms when keep is small: TF.js at momentum 0.1 was
 *            9 ulp off with full-mantissa statistics (exactly this form's rounding, reproduced).
 *            The rounding term is the larger of the two forms'.
 * backward (training), Q = mean(dy), P = mean(dy xhat):
 *            dQ = g mean|dy| + u|Q|;  dP = mean(|dy| dxhat) + (g + u) mean|dy xhat|
 *            inner = dy - Q - xhat P;
 *            d(inner) = dQ + dxhat |P| + |xhat| dP + SAFETY dxhat dP + 3u(|dy| + |Q| + |xhat P|)
 *            (dxhat dP is second order, but both grow like c as r -> 1: kept, not left to SAFETY,
 *            and weighted by SAFETY once more, each factor carrying c / SAFETY)
 *            ddx = |gamma / s| (inv d(inner) + |inner| (c / SAFETY + 3u inv)) + u |dx|
 *            ddgamma = m dP + u|dgamma|;  ddbeta = g sum|dy| + u|dbeta|
 * inference: the same with the running statistics exact (dmu = dvar = 0).
 *
 * Relative error analysis stops at underflow: every bound also admits UNDERFLOW_STEPS roundings
 * of absolute size up to the smallest subnormal (a float32 variance of 7e-81 is 0), amplified by
 * what may follow them (a product underflowing before the multiplication by gamma / s), and
 * m times for the per-channel sums dgamma (products dy * (x - mu) summed, then scaled by 1/s).
 * An implementation that declares subnormals: 'flush-to-zero' may lose up to the smallest normal
 * at each underflow, inputs included: its unit is 2^-126 (float32), and the flushed inputs move
 * the mean by up to that unit and the variance by up to 2 (D + unit) unit.
 * The first-order bound is doubled (SAFETY = 2) to cover second-order terms (products of two
 * first-order relative errors, each at most g + 4u <= 1/16 + 4u at the largest m any check runs,
 * float32 sequential at m ~ 2^20: they add at most ~7% to the first-order sum), and the
 * reference's own error is added: at most 8 ulp(float64) of the same scales, an ulp being at
 * most 2u of its scale, and for dx 22u of |gamma / s| (|dy| + |Q| + |xhat| mean|dy xhat|) (P is
 * known only to u mean|dy xhat|, however much it cancels): spec/reference/oracle.spec.ts derives
 * both. It matters only for float64 implementations. (1 / s^'s own factor inv = 1 / sqrt(1 - r)
 * is exact, not first order, so SAFETY's argument needs only the other relative errors small.)
 */
import type { AccumulationInfo, DType } from '../contract/contract.js';
import { twoSum } from '../numerics/eft.js';
import { unitRoundoff } from '../numerics/ulp.js';
import { roundToHalf } from '../numerics/half.js';
import { InternalError } from '../contract/errors.js';
import { countComparison } from './tally.js';

export const SAFETY = 2;
/** The reference's error, in ulp(float64) of each output's scale (spec/reference/oracle.spec.ts derives it). */
const REF_ULPS = 8;
/** dx's, in u(float64) of |gamma / s| (|dy| + |Q| + |xhat| mean|dy xhat|): 21.25u (same spec). */
const REF_DX_U = 22;
const U64 = 2 ** -53;
/** Smallest subnormal: the absolute error of a rounding that underflows (gradual underflow). */
const TINY: Record<DType, number> = { float32: 2 ** -149, float64: 2 ** -1074, float16: 2 ** -24, bfloat16: 2 ** -133 };
/** Smallest normal: what a flush-to-zero implementation may lose to one underflow, input or result. */
const TINY_NORMAL: Record<DType, number> = { float32: 2 ** -126, float64: 2 ** -1022, float16: 2 ** -14, bfloat16: 2 ** -126 };
/** Roundings near underflow that one output can go through (squares, sums, the final cast). */
const UNDERFLOW_STEPS = 4;

/** Exact facts about one channel (from the reference), the input to the tolerance. */
export interface ChannelFacts {
  m: number;
  /** Batch statistics (training) or the running statistics used (inference). */
  mean: number;
  variance: number;
  eps: number;
  /** mean |x| and max |x - mean| over the channel. */
  absMean: number;
  maxDev: number;
  gamma: number;
  /** Statistics are batch statistics computed by the implementation (training) or given. */
  training: boolean;
  /** Backward only: mean |dy|, mean |dy * xhat| and mean |dy * x|. */
  meanAbsDy?: number;
  meanAbsDyXhat?: number;
  meanAbsDyX?: number;
  /**
   * Where x (and dy) lie on a power-of-two grid (issue 21; computed by src/judge/exact-sums.ts):
   * the facts that decide whether the accumulation's sums are exact (exactness below).
   */
  grid?: GridFacts;
  dyGrid?: GridFacts;
  /**
   * The normalization family (issue 23; derivation in the section NORMALIZATION FAMILY below).
   * centred: false for RMSNorm: nothing is subtracted (mean = 0, dmu = 0), `variance` is mean(x^2)
   * and `maxDev` max|x|. gammaPerElement: gamma varies within the group (the family's judge sets it
   * for every op): `gamma` is then the group's largest |gamma| (the underflow allowance), y's bound
   * takes each element's own gamma, and the backward facts (meanAbsDy, meanAbsDyXhat, meanAbsDyX)
   * and dx's dy, Q, P are those of dy' = gamma dy.
   */
  centred?: boolean;
  gammaPerElement?: boolean;
}

/**
 * The channel's values as integers times q = 2^e, the coarsest such q: Σ|x| / q, the range
 * (max - min) / q, and whether the exact mean is itself a multiple of q. Absent: not on a grid
 * (or not computed): no sum is assumed exact.
 */
export interface GridFacts {
  sumUnits: number;
  rangeUnits: number;
  meanOnGrid: boolean;
}

/** Significand bits, the implicit one included: every integer up to 2^p is exact. */
const SIGNIFICAND_BITS: Record<DType, number> = { float64: 53, float32: 24, float16: 11, bfloat16: 8 };

/**
 * Sums the data make exact, whatever the order (issue 21: at m ~ 2^20 in float32, g ~ 1/16 leaves
 * bounds too wide to see a kernel that drops values or divides by the wrong m).
 * - Sums of x: every value is an integer multiple of q, Σ|x| <= 2^p q (p = the accumulation's
 *   significand bits) and m is a power of two. Every partial sum of any subset is then a multiple
 *   of q of magnitude <= 2^p q, hence representable: a sequential, pairwise or tiled sum is exact,
 *   and so is each x / m of a form that divides first (it only moves the grid). The mean is one
 *   division at most (2u|mu| covers it and the cast).
 * - Sums of squared deviations: moreover the exact mean is a multiple of q (so the computed mean
 *   is exact, as above) and m R^2 <= 2^p, R = range / q. For any shift K among the data (two-pass
 *   K = mean; shifted sums K = one of the channel's values, src/kernels/cpu-f32) each x - K is a
 *   multiple of q with |x - K| <= R q, its square a multiple of q^2 at most R^2 q^2, and every
 *   partial sum of squares (and of x - K) is exact: the variance's summation term is 0, leaving
 *   the divisions, the subtraction of a shifted form (6 ua (var + D^2) covers it) and the cast.
 * - Sums of dy: as for x (Q = mean(dy) and dbeta = Σ dy exact); Σ dy x-hat never is (x-hat is not
 *   on a grid).
 * "Exact" leaves the merges of partial results: the factor is exactSumFactor, not g.
 * Order 'updates' (Welford-style running means) divides at every step: none of this applies.
 */
/**
 * What is left of a sum's error factor when the data make every partial sum exact (exactness):
 * the merges of partial results. A kernel may combine per-lane, per-tile or per-block statistics
 * (a block's mean and M2, Chan, Golub & LeVeque's update, as src/kernels/cpu-f32 does across its
 * lanes) instead of adding raw sums; each merge level rounds at most MERGE_MEAN_ROUNDINGS times
 * (the count derived for the synchronized merge, syncTolerance below), and a balanced tree of
 * blocks has at most ceil(log2 m) levels: gamma(7 ceil(log2 m)) at the accumulation's unit
 * roundoff, 8.8e-6 in float32 at m = 2^21, against the 1/16 of a sequential float32 sum. Small
 * enough that a kernel dropping values (an error of the dropped fraction), dividing by m - 1 at
 * m <= 2^17 or returning NaN still fails; wide enough that exact data never demand more than the
 * last bit from an honest merge.
 */
export function exactSumFactor(m: number, acc: AccumulationInfo): number {
  return depthErrorFactor(MERGE_MEAN_ROUNDINGS * Math.ceil(Math.log2(Math.max(m, 2))), acc);
}

export function exactness(f: Pick<ChannelFacts, 'm' | 'grid' | 'dyGrid'>, acc: AccumulationInfo): { sums: boolean; deviations: boolean; dy: boolean } {
  // m a power of two: x / m and x * (1 / m) are exact too, so the divide-first forms (TF.js's mean
  // sums fl(x / m)) are as exact as sum-then-divide; at other m they round every term
  const powerOfTwo = Number.isInteger(Math.log2(f.m));
  if (acc.order === 'updates' || !powerOfTwo) return { sums: false, deviations: false, dy: false };
  // p = 53: Σ|x| / q is itself a float64 sum of integers, exact only below 2^53: stay one bit under
  const limit = 2 ** Math.min(SIGNIFICAND_BITS[acc.dtype], 52);
  const fits = (gr: GridFacts | undefined) => gr !== undefined && gr.sumUnits <= limit;
  const sums = fits(f.grid);
  const deviations = sums && f.grid!.meanOnGrid && f.m * f.grid!.rangeUnits * f.grid!.rangeUnits <= limit;
  return { sums, deviations, dy: fits(f.dyGrid) };
}

export interface ToleranceInput {
  dtype: DType;
  /** Dtype of the per-channel outputs (mean, variance, running statistics, dgamma, dbeta); default dtype. */
  paramDtype?: DType;
  accumulation?: AccumulationInfo;
}

export interface ChannelBounds {
  /** Which term dominates, in words, for reports. */
  reason: string;
  /** Summation error factor g and the depth it came from. */
  g: number;
  depth: number;
  /**
   * Outputs whose bound for this channel can fail nothing (no smaller than the quantity's own
   * scale, or Infinity): counted as inconclusive (src/judge/tally.ts), never as a pass.
   */
  uninformative: ReadonlySet<string>;
  mean: number;
  variance: number;
  /** The group's 1 / sqrt(variance + eps) (the family's optional output invStdDev). */
  invStdDev: number;
  xhat(xhat: number, x: number): number;
  /** `gamma`: the element's own (gammaPerElement); default the group's. */
  y(xhat: number, x: number, y: number, gamma?: number): number;
  /**
   * running' = keep * old + take * batchStat (batchStat = mean, or bessel * variance);
   * momentum is the value given (keep in the decay convention, take in update-fraction).
   */
  runningMean(keep: number, take: number, momentum: number, old: number, result: number): number;
  runningVar(keep: number, take: number, momentum: number, old: number, bessel: number, result: number): number;
  /** xhat, dy and the exact dx at one element; Q = mean(dy), P = mean(dy * xhat). */
  dx(xhat: number, x: number, dy: number, Q: number, P: number, dx: number): number;
  dgamma(dgamma: number): number;
  dbeta(sumAbsDy: number, dbeta: number): number;
  /**
   * One element's share of a parameter gradient's first-order bound, |dy| dxhat + its underflow
   * allowance (not doubled): parameterTolerance sums it over the elements reading a parameter,
   * across groups (the family); BN's per-channel dgamma is m dP, the same sum over one group.
   */
  dgammaTerm(xhat: number, x: number, dy: number): number;
}

/**
 * An error against its bound as a verdict ratio (<= 1 passes). An Infinity bound makes no claim
 * (a singular channel, derivation above): any number passes, NaN and Infinity included. A NaN
 * bound is a defect of this suite, not of the implementation: InternalError, never a verdict.
 */
export function errorRatio(error: number, bound: number): number {
  if (Number.isNaN(bound)) throw new InternalError(`the tolerance produced a NaN bound (error ${error})`);
  if (bound === Infinity) return 0;
  if (Number.isNaN(error) || error === Infinity) return Infinity;
  return error === 0 ? 0 : bound > 0 ? error / bound : Infinity;
}

/**
 * |got - expected| within bound (errorRatio's rules), counted as one compared value in the running
 * check (src/judge/tally.ts): inconclusive when the bound is Infinity or the caller knows it to be
 * uninformative.
 */
export function withinBound(error: number, bound: number, informative = true): boolean {
  countComparison(informative && bound < Infinity);
  return errorRatio(error, bound) <= 1;
}

/** weight * bound for an allowance that sums bounds: an unbounded element stays unbounded at weight 0 (no Infinity * 0). */
export const scaleBound = (bound: number, weight: number): number => (bound === Infinity ? Infinity : bound * Math.abs(weight));

/** Depth of the longest addition chain of an n-term sum with the given structure. */
export function reductionDepth(n: number, acc: AccumulationInfo): number {
  if (n <= 1) return 0;
  // 'updates' (a running mean updated per value, Welford): a chain of n - 1 steps, as sequential
  if (acc.order === 'pairwise') return Math.ceil(Math.log2(n));
  if (acc.order === 'tiled') {
    const tile = Math.max(1, Math.min(acc.tile ?? 256, n));
    return tile - 1 + Math.ceil(Math.log2(Math.ceil(n / tile)));
  }
  return n - 1;
}

/** Error factor of an n-term sum: Higham's deterministic gamma(depth) (see the derivation above). */
export function sumErrorFactor(n: number, acc: AccumulationInfo): number {
  return depthErrorFactor(reductionDepth(n, acc), acc);
}

/** Higham's gamma(k) for an addition chain of depth k at the accumulation's unit roundoff (sumErrorFactor's formula). */
export function depthErrorFactor(k: number, acc: AccumulationInfo): number {
  const ua = unitRoundoff(acc.dtype);
  // k ua >= 1 (float32 sequential at m > 2^24): the analysis bounds nothing; no finite bound
  return k * ua < 1 ? (k * ua) / (1 - k * ua) : Infinity;
}

/** Per-channel error bounds for every output; see the derivation above (and below, for half dtypes). */
export function tolerance(input: ToleranceInput, f: ChannelFacts, merged?: MergedErrors): ChannelBounds {
  if (involvesHalf(input)) {
    // the merged (synchronized) bounds are derived for float32 / float64 only; the sync ops reject half dtypes
    if (merged) throw new Error(`synchronized statistics have no half-precision bound (${input.dtype} / ${input.paramDtype ?? input.dtype})`);
    return halfTolerance(input, f);
  }
  // float32 and float64 mixed (x float64, parameters float32 or the reverse): computed in either,
  // each output rounded once to its own dtype, as half precision is (section HALF PRECISION)
  if (!merged && isMixed(input)) return halfTolerance(input, f);
  return fullTolerance(input, f, merged);
}

function fullTolerance(input: ToleranceInput, f: ChannelFacts, merged?: MergedErrors): ChannelBounds {
  const u = unitRoundoff(input.dtype);
  const acc = input.accumulation ?? { dtype: input.dtype, order: 'sequential' };
  const ua = unitRoundoff(acc.dtype);
  const depth = merged?.depth ?? reductionDepth(f.m, acc);
  const g = merged?.g ?? sumErrorFactor(f.m, acc);
  // sums the data make exact (exactSums below): their summation term is 0, not g * sum|terms|
  // the family (section NORMALIZATION FAMILY): RMSNorm does not centre; dy' = gamma dy is not dy's grid
  const centred = f.centred !== false;
  const perElement = f.gammaPerElement === true;
  const exact = merged || !centred ? { sums: false, deviations: false, dy: false } : exactness(f, acc);
  if (perElement) exact.dy = false;
  const gExact = exactSumFactor(f.m, acc);
  const gMean = exact.sums ? gExact : g;
  const gVar = exact.deviations ? gExact : g;
  const gDy = exact.dy ? gExact : g;
  const s2 = f.variance + f.eps;
  const s = Math.sqrt(s2);
  const flush = acc.subnormals === 'flush-to-zero';
  const unit = flush ? TINY_NORMAL[input.dtype] : TINY[input.dtype];
  const flushedInputs = flush ? unit : 0;
  const dmu = merged ? merged.dmu : f.training && centred ? times(gMean, f.absMean) + 2 * u * Math.abs(f.mean) + flushedInputs : 0;
  const dvar = merged
    ? merged.dvar
    : !f.training
      ? 0
      : centred
        ? times(dmu, dmu) + 2 * times(dmu, f.maxDev) + 2 * times(gVar + 3 * ua, f.variance + f.maxDev * f.maxDev) + u * f.variance + 2 * (f.maxDev + unit) * flushedInputs
        : times(g + 2 * Math.max(u, ua), f.variance) + 2 * (f.maxDev + unit) * flushedInputs;
  // 1 / s^ exactly, not to first order, for any variance within its bound V (derivation above);
  // expm1/log1p keep c's digits at small r. Statistics given (inference): exact, r = 0.
  const V = f.training || merged ? SAFETY * (dvar + UNDERFLOW_STEPS * unit) : 0;
  const r = s2 > 0 ? V / s2 : V > 0 ? Infinity : 0;
  // The eps floor (issue 21): the variance a kernel normalizes with is >= 0 (docs/CONTRACT.md: a
  // formula that can go negative is clamped at 0, as every framework does), so s^2 = fl(var^ + fl(eps))
  // >= eps (1 - u)^2 >= eps (1 - 2u) however far var^ is from var: s^2 / s^2 >= max(1 - r, floor).
  // eps itself may be held in float32 whatever the dtype (ONNX attributes are float32, even in a
  // float64 model): fl32(eps) >= eps (1 - 2^-24), so the floor is eps (1 - 2^-24)(1 - 2u) >= eps (1 - 2^-23 - 2u).
  // With eps > 0 no channel is singular: c stays finite (large when the floor decides, and then
  // the comparison is reported inconclusive rather than passed: `uninformative` below).
  const floor = f.eps > 0 && s2 > 0 ? (f.eps * (1 - 2 ** -23 - 2 * u)) / s2 : 0;
  const lower = Math.max(1 - r, floor);
  const singular = !(lower > 0);
  // |s / s^ - 1| on both sides: s^ < s up to the floor (above), s^ > s up to s sqrt(1 + r), where
  // 1 - 1 / sqrt(1 + r) <= r / 2 is below the first whenever 1 - r >= floor, but not always when the
  // floor decides (eps ~ var, r > 1: var = eps, r = 3 gives 0.5 against 1 / sqrt(1/2) - 1 = 0.41)
  const cBelow = 1 - r >= floor ? Math.expm1(-0.5 * Math.log1p(-r)) : 1 / Math.sqrt(floor) - 1;
  const c = singular ? Infinity : Math.max(cBelow, -Math.expm1(-0.5 * Math.log1p(r)));
  const inv = 1 + c;
  const alpha = (inv * dmu) / s;
  const beta = c / SAFETY + 4 * u * inv;
  const refScale = (scale: number) => REF_ULPS * 2 * U64 * scale;
  // underflow: a rounding of absolute size TINY, possibly before a multiplication by |gamma| / s
  const tiny = UNDERFLOW_STEPS * unit * (1 + 1 / s) * Math.max(1, Math.abs(f.gamma));
  const bound = (firstOrder: number, scale: number, underflows = 1) => SAFETY * (firstOrder + underflows * tiny) + refScale(scale);
  const dxhat = (xhat: number, x: number) => alpha + beta * Math.abs(xhat) + (inv * u * (Math.abs(x) + Math.abs(f.mean))) / s;

  const meanAbsDy = f.meanAbsDy ?? 0;
  const meanAbsDyXhat = f.meanAbsDyXhat ?? 0;
  // dy' = fl(gamma dy) per element (gammaPerElement): one more rounding u |dy'| in every term of
  // Q', P' and dx's inner term (section NORMALIZATION FAMILY); RMSNorm has no Q term
  const uDy = perElement ? u : 0;
  const dQ = centred ? times(gDy, meanAbsDy) + uDy * meanAbsDy : 0;
  const meanAbsDyX = f.meanAbsDyX ?? 0;
  const dP =
    times(alpha, meanAbsDy) + times(beta, meanAbsDyXhat) + (inv * u * (meanAbsDyX + Math.abs(f.mean) * meanAbsDy)) / s + times(g + u + uDy, meanAbsDyXhat);
  // dx = gamma (dy - Q - xhat P) / s, or with gamma per element (dy' - Q' - xhat P') / s
  const gs = perElement ? 1 / s : Math.abs(f.gamma / s);

  // Which outputs' bounds can fail nothing (src/judge/tally.ts counts them as inconclusive): a
  // bound no smaller than the quantity's own scale. mean: SAFETY dmu >= mean|x|; variance: its
  // bound >= var; x-hat, y, dx: 1 / s^ or the centring known only within 100% (c >= 1, or the
  // mean's error alpha >= 1 in units of s: x-hat's error as large as x-hat); dgamma: dP >= mean|dy xhat|;
  // dbeta: SAFETY g >= 1. Infinity is always uninformative.
  const uninformative = new Set<string>();
  if (f.training || merged) {
    if (!(SAFETY * dmu < f.absMean) && f.absMean > 0) uninformative.add('mean').add('runningMean');
    if (!(bound(dvar, f.variance) < f.variance) && f.variance > 0) uninformative.add('variance').add('runningVar');
    if (singular || c >= 1 || alpha >= 1) uninformative.add('xhat').add('y').add('dx').add('invStdDev');
  }
  if (singular || (!(dP < meanAbsDyXhat) && meanAbsDyXhat > 0)) uninformative.add('dgamma');
  if (!(SAFETY * gDy < 1)) uninformative.add('dbeta');

  const ratio = Math.abs(f.mean) / s;
  const reason =
    `${input.dtype}, ${acc.dtype} ${acc.order} sums over m=${f.m} (depth ${depth}, g=${g.toExponential(2)}), ` +
    (merged ? `${merged.note}, ` : '') +
    `|mean|/sqrt(var+eps)=${ratio.toPrecision(3)}: ` +
    (f.training
      ? singular
        ? `singular channel: eps = 0 and the variance's error bound ${V.toExponential(2)} reaches var = ${s2.toExponential(2)}, so x-hat, y, dx and dgamma have no bound (inconclusive, never a pass)`
        : 1 - r < floor
        ? `the variance's error bound ${V.toExponential(2)} reaches var + eps = ${s2.toExponential(2)}: 1/sqrt(var + eps) is bounded only through eps (by 1/sqrt(eps)), x-hat within ${c.toExponential(2)} relative`
        : alpha > beta
        ? `the mean's summation error g*mean|x|/s=${alpha.toExponential(2)} dominates x-hat`
        : `variance and rounding (${beta.toExponential(2)} relative) dominate x-hat`
      : `elementwise rounding only (statistics given)`);

  return {
    reason: exact.sums
      ? `${reason}; the data make the sums exact (${exact.deviations ? 'sums of x and of squared deviations' : 'sums of x'}${exact.dy ? ' and of dy' : ''}), ` +
        `so only merges of partial results and the final roundings are allowed (a kernel that updates a running mean per value, Welford-style, is not exact here: it declares accumulation.order 'updates')`
      : reason,
    g,
    depth,
    uninformative,
    mean: bound(dmu, Math.abs(f.mean)),
    variance: bound(dvar, f.variance),
    // 1 / s^ within c / s of 1 / s (exact, so c / SAFETY inside the doubling), then var + eps, the
    // root and the reciprocal (or rsqrt): 3u of the computed value
    invStdDev: singular ? Infinity : bound((c / SAFETY + 3 * u * inv) / s, 1 / s),
    xhat: (xhat, x) => (singular ? Infinity : bound(dxhat(xhat, x), Math.abs(xhat))),
    y: (xhat, x, y, gamma = f.gamma) =>
      singular
        ? Infinity
        : bound(
            Math.abs(gamma) * dxhat(xhat, x) + u * (3 * Math.abs(gamma * xhat) + 2 * Math.abs(y) + Math.abs((gamma * f.mean) / s)),
            Math.abs(y) + Math.abs(gamma * xhat),
          ),
    runningMean: (keep, take, momentum, old, result) => {
      const scale = Math.abs(keep * old) + Math.abs(take * f.mean);
      const heldMomentum = u * Math.abs(momentum) * (Math.abs(old) + Math.abs(f.mean));
      const rounding = 2 * u * Math.max(scale, Math.abs(take) * (Math.abs(old) + Math.abs(f.mean)));
      return bound(Math.abs(take) * dmu + rounding + u * Math.abs(result) + heldMomentum, scale);
    },
    runningVar: (keep, take, momentum, old, bessel, result) => {
      const scale = Math.abs(keep * old) + Math.abs(take * bessel * f.variance);
      const heldMomentum = u * Math.abs(momentum) * (Math.abs(old) + Math.abs(bessel * f.variance));
      const rounding = 3 * u * Math.max(scale, Math.abs(take) * (Math.abs(old) + Math.abs(bessel * f.variance)));
      return bound(Math.abs(take) * bessel * dvar + rounding + u * Math.abs(result) + heldMomentum, scale);
    },
    dx: (xhat, x, dy, Q, P, dx) => {
      const inner = dy - Q - xhat * P;
      if (!f.training) return bound(4 * u * Math.abs(dx), Math.abs(dx));
      if (singular) return Infinity;
      const dXhat = dxhat(xhat, x);
      const dInner =
        dQ + dXhat * Math.abs(P) + Math.abs(xhat) * dP + SAFETY * dXhat * dP + 3 * u * (Math.abs(dy) + Math.abs(Q) + Math.abs(xhat * P)) + uDy * Math.abs(dy);
      const scale = gs * (Math.abs(dy) + Math.abs(Q) + Math.abs(xhat) * meanAbsDyXhat);
      return SAFETY * (gs * (inv * dInner + Math.abs(inner) * (c / SAFETY + 3 * u * inv)) + u * Math.abs(dx) + tiny) + REF_DX_U * U64 * scale;
    },
    dgamma: (dgamma) => (singular ? Infinity : bound(f.m * dP + u * Math.abs(dgamma), f.m * meanAbsDyXhat, f.m)),
    dbeta: (sumAbsDy, dbeta) => bound(times(gDy, sumAbsDy) + u * Math.abs(dbeta), sumAbsDy, f.m),
    dgammaTerm: (xhat, x, dy) => (singular ? Infinity : times(Math.abs(dy), dxhat(xhat, x)) + tiny),
  };
}

/** g * v for a sum's error term: a sum of zeros is exact in any precision (0, never Infinity * 0 = NaN). */
const times = (g: number, v: number) => (v === 0 || g === 0 ? 0 : g * v);

// ---------------------------------------------------------------------------------------------
// Synchronized (cross-replica) statistics: issue 13, owner "sync". A separate section on purpose.
// ---------------------------------------------------------------------------------------------

/** Statistics merged across replicas: replaces the single-device dmu, dvar and sum factor. */
export interface MergedErrors {
  g: number;
  depth: number;
  dmu: number;
  dvar: number;
  /** For reports: the all-reduce structure. */
  note: string;
}

/** What the merged bound needs beyond ChannelFacts (whose m, mean, variance, absMean, maxDev are global). */
export interface SyncFacts {
  /** R, replicas taking part in the all-reduce (empty ones included). */
  replicas: number;
  /** Largest per-replica m: the longest local summation. */
  maxLocalM: number;
  /** max over non-empty replicas of |local mean|: the scale of the merge's roundings. */
  maxReplicaAbsMean: number;
}

/** Depth of the all-reduce over R replicas: tree ceil(log2 R); ring and sequential R - 1. */
export function allReduceDepth(replicas: number, acc: AccumulationInfo): number {
  if (replicas <= 1) return 0;
  return acc.allReduce === 'tree' ? Math.ceil(Math.log2(replicas)) : replicas - 1;
}

/** Roundings of one Chan merge of the mean, in units of ua * max|local mean| (derivation below). */
export const MERGE_MEAN_ROUNDINGS = 7;
/** Roundings of one Chan merge of M2, relative to the merged M2 (derivation below). */
export const MERGE_M2_ROUNDINGS = 7;

/**
 * Bounds for statistics merged across R replicas (forwardTrainSync, backwardSync).
 * Notation as above; globals over the concatenated batch (m = N, mu, var, A, D), kl = the
 * longest local sum's depth reductionDepth(maxLocalM), d = allReduceDepth(R), Mr = max |mu_r|.
 *   gs = gamma(kl + d) (Higham's deterministic factor, as sumErrorFactor): a local sum with the
 *   all-reduce's additions on top.
 *   It bounds every sum that is all-reduced by adding partial sums (sum x, sum dy, sum dy xhat).
 * mean:  either sum x all-reduced (gs A), or Chan merges: the local means (gl A_r + ua |mu_r|,
 *        weights n_r / N sum to 1, so at most gs A + ua Mr), then per merge level
 *        mu_ab = mu_a + fl(fl(delta) * fl(nb / n)) rounds delta (|delta| <= 2 Mr), the quotient,
 *        the product and the sum (|mu_ab| <= Mr): <= 7 ua Mr; merging averages errors, never
 *        amplifies them.  dmu = gs A + (7 d + 1) ua Mr + 2u|mu| (+ flushed inputs).
 * M2:    local M2_r as the single-device two-pass term with D_r <= 2D (a local deviation is at
 *        most D + |mu_r - mu|) and sum m_r var_r <= N var, sum m_r D_r^2 <= 4 N D^2:
 *          dmu^2 + 4 dmu D + 2(gs + 3ua)(var + 4 D^2)     (per N; covers a global two-pass too)
 *        per merge level: delta's error |Δδ| <= 2 dmu on the term w delta^2, w = na nb / n
 *        <= n / 4 (the groups of a level partition N, so sum w <= N / 4), |delta| <= 2D:
 *          N (2 D dmu + dmu^2); and 7 roundings (delta, square, two products, quotient, two
 *          additions) of non-negative terms whose sum over a level is <= N var: 7 ua N var.
 *        dvar = [local] + d (2 D dmu + dmu^2) + 7 d ua var + u var (+ flushed inputs).
 *        Merging E[x^2] - E[x]^2 instead errs by ~ gs mu^2: above this by ~ |mu| / D.
 * backward: Q, P and dbeta are all-reduced sums: g = gs; dgamma = N dP as before.
 * Everything after the statistics (x-hat, y, running statistics with the global Bessel factor,
 * dx) is the single-device derivation with these dmu, dvar and g.
 */
export function syncTolerance(input: ToleranceInput, f: ChannelFacts, s: SyncFacts): ChannelBounds {
  const u = unitRoundoff(input.dtype);
  const acc = input.accumulation ?? { dtype: input.dtype, order: 'sequential' };
  const ua = unitRoundoff(acc.dtype);
  const d = allReduceDepth(s.replicas, acc);
  const k = reductionDepth(s.maxLocalM, acc) + d;
  // the same deterministic factor as every single-device sum (sumErrorFactor), at depth kl + d
  const gs = depthErrorFactor(k, acc);
  const flush = acc.subnormals === 'flush-to-zero';
  const unit = flush ? TINY_NORMAL[input.dtype] : TINY[input.dtype];
  const flushed = flush ? unit : 0;
  const D = f.maxDev;
  const dmu = gs * f.absMean + (MERGE_MEAN_ROUNDINGS * d + 1) * ua * s.maxReplicaAbsMean + 2 * u * Math.abs(f.mean) + flushed;
  const local = dmu * dmu + 4 * dmu * D + 2 * (gs + 3 * ua) * (f.variance + 4 * D * D);
  const dvar = local + d * (2 * D * dmu + dmu * dmu) + MERGE_M2_ROUNDINGS * d * ua * f.variance + u * f.variance + 2 * (D + unit) * flushed;
  const note = `merged over ${s.replicas} replicas (${acc.allReduce ?? 'sequential'} all-reduce, depth ${d}; largest replica m=${s.maxLocalM})`;
  return tolerance(input, f, { g: gs, depth: k, dmu, dvar, note });
}

// ---------------------------------------------------------------------------------------------
// NORMALIZATION FAMILY (issue 23): LayerNorm, RMSNorm, GroupNorm, InstanceNorm.
//
// Every family op normalizes statistics groups (src/contract/grouping.ts): each group is one
// "channel" of the derivation above, with its own m, mu, var, A, D, so `tolerance` is called per
// group unchanged, half precision and the singular-group rule included (both follow from the
// group's m and conditioning). What differs, derived here:
//
// gamma per element (gammaPerElement; LayerNorm / RMSNorm: one gamma per normalized position;
// GroupNorm: per channel, C / G channels a group; the judge sets it for InstanceNorm too, whose
// groups read one gamma, since it covers both ways a kernel may arrange the product):
//   y:   the derivation of y above holds element by element with that element's gamma
//        (|gamma| dxhat + u (3 |gamma xhat| + 2 |y| + |gamma mu| / s)); the underflow allowance
//        uses the group's largest |gamma|.
//   dx:  dx = (dy' - Q' - xhat P') / s with dy' = gamma dy, Q' = mean(dy'), P' = mean(dy' xhat)
//        (gamma no longer factors out of the group's sums). The kernel forms dy' = fl(gamma dy):
//        one more rounding u |dy'| per element, which enters
//          Q':  its m terms each off by u |dy'|:        dQ' = (g + u) mean|dy'| + u |Q'| (as dQ);
//          P':  each term dy' x^ off by u |dy' xhat| more: dP' = ... + (g + 2u) mean|dy' xhat|;
//          the inner term dy' - Q' - xhat P':              d(inner) += u |dy'|;
//        and the factor |gamma / s| becomes 1 / s. With gamma constant in a group every term is
//        |gamma| times BN's plus these u's: the bound covers the factored form gamma (dy - Q -
//        xhat P) / s as well. The reference's own dx error is 22u of (|dy'| + |Q'| + |xhat|
//        mean|dy' xhat|) / s (spec/reference/family.spec.ts derives it, BN's 22u).
// RMSNorm (centred: false): nothing is subtracted, so dmu = 0 and Q' = 0 (no dQ); the "variance"
//   ms = mean(x^2): m squares, each rounded once (u, or ua when squared in the accumulation), an
//   m-term sum (g) and the division:  dms = (g + 2 max(u, ua)) ms  (+ 2 (max|x| + unit) unit for
//   flushed inputs). Everything after it is the derivation above with var := ms, mu := 0.
// invStdDev = 1 / s, one per group: 1 / s^ is within c / s of 1 / s, c exact (1 / s^'s factor
//   inv above, both sides), then var + eps, the root and the reciprocal (or an rsqrt): 3u inv / s.
// Parameter gradients across groups (parameterTolerance): parameter j's dgamma = sum dy x-hat and
//   dbeta = sum dy run over the n elements reading j, which lie in different groups for
//   LayerNorm / RMSNorm (one per row: n = the number of rows) and GroupNorm / InstanceNorm (one
//   per sample: n = N S). Each term dy_i x^_i carries its own group's x-hat error |dy_i| dxhat_i
//   (dgammaTerm, with the group's underflow allowance) and the product's u |dy_i xhat_i|; the
//   n-term sum adds g_n sum|dy xhat| (g_n = sumErrorFactor(n), the declared order), the cast
//   u |dgamma|:
//     ddgamma_j = sum_i |dy_i| dxhat_i + (g_n + u) sum|dy xhat| + u |dgamma_j|
//     ddbeta_j  = g_n sum|dy| + u |dbeta_j|   (g_n = 0 where dy's grid makes the sum exact)
//   For one group (BN) this is m dP + u |dgamma| above, term for term. Doubled (SAFETY) with the
//   reference's 8 ulp of sum|dy xhat| (sum|dy|) added; half parameters: the sum in the compute
//   precision, rounded once to paramDtype (HALF PRECISION below), Infinity when n's depth times
//   ua reaches 1.
// ---------------------------------------------------------------------------------------------

/** What the bound of one parameter's gradients needs: sums over the elements reading it (across groups). */
export interface ParameterFacts {
  /** Elements reading the parameter: the terms of dgamma and dbeta. */
  n: number;
  /** Sum over those elements of their group's dgammaTerm(xhat, x, dy). */
  sumTerms: number;
  /** Sum |dy xhat| and sum |dy| over them. */
  sumAbsDyXhat: number;
  sumAbsDy: number;
  /** dy's grid facts over them (exactness of dbeta's sum). */
  dyGrid?: GridFacts;
}

export interface ParameterBounds {
  reason: string;
  /** 'dgamma' / 'dbeta' when that bound can fail nothing (src/judge/tally.ts). */
  uninformative: ReadonlySet<string>;
  dgamma(dgamma: number): number;
  dbeta(dbeta: number): number;
}

/** Bounds on one parameter's dgamma and dbeta summed across groups (derivation above). */
export function parameterTolerance(input: ToleranceInput, p: ParameterFacts): ParameterBounds {
  // half or mixed precision: computed in halfComputeDtype, the sum rounded once to paramDtype
  const half = involvesHalf(input) || isMixed(input);
  const acc = input.accumulation ?? { dtype: involvesHalf(input) ? 'float32' : input.dtype, order: 'sequential' };
  const compute = half ? halfComputeDtype(acc, input) : input.dtype;
  const u = unitRoundoff(compute);
  const g = sumErrorFactor(p.n, acc);
  const gDy = exactness({ m: p.n, ...(p.dyGrid ? { dyGrid: p.dyGrid } : {}) }, acc).dy ? exactSumFactor(p.n, acc) : g;
  const unit = acc.subnormals === 'flush-to-zero' ? TINY_NORMAL[compute] : 0;
  const ref = (scale: number) => REF_ULPS * 2 * U64 * scale;
  const dgamma = (d: number) => SAFETY * (p.sumTerms + times(g + u, p.sumAbsDyXhat) + u * Math.abs(d)) + ref(p.sumAbsDyXhat);
  // flushed dy (flush-to-zero): each term may lose up to the smallest normal
  const dbeta = (d: number) => SAFETY * (times(gDy, p.sumAbsDy) + u * Math.abs(d) + p.n * unit) + ref(p.sumAbsDy);
  const unbounded = !(g < Infinity) || !(p.sumTerms < Infinity);
  const uninformative = new Set<string>();
  if (unbounded || (!(p.sumTerms + times(g + u, p.sumAbsDyXhat) < p.sumAbsDyXhat) && p.sumAbsDyXhat > 0)) uninformative.add('dgamma');
  if (!(SAFETY * gDy < 1)) uninformative.add('dbeta');
  const reason = `parameter gradient summed over ${p.n} elements across groups (${acc.dtype} ${acc.order} sums, g=${g.toExponential(2)})`;
  if (!half) return { reason, uninformative, dgamma, dbeta };
  const once = roundedOnce(input.paramDtype ?? input.dtype, acc);
  return {
    reason: `${reason}, computed in ${compute}, rounded once to ${input.paramDtype ?? input.dtype}`,
    uninformative,
    dgamma: (d) => (unbounded ? Infinity : once(dgamma(d), d)),
    dbeta: (d) => (g < Infinity ? once(dbeta(d), d) : Infinity),
  };
}

// ---------------------------------------------------------------------------------------------
// HALF PRECISION (issue 12; owner: half). Kept apart from the float32/float64 derivation above,
// which it calls unchanged.
//
// Model (what every framework does for float16 / bfloat16: PyTorch CPU and CUDA, Keras mixed
// policies, TF fused_batch_norm, ONNX Runtime): inputs are exact (half values are float32 values);
// the computation runs in a compute precision c; each output is rounded once to its own dtype
// (y, dx to dtype; mean, variance, running statistics, dgamma, dbeta to paramDtype).
//   c = float32, unless the declared accumulation is narrower (float16 / bfloat16: an
//       implementation that computes in half says so, and is held to half arithmetic); sums use
//       the declared accumulation as above (default for half dtypes: float32 sequential,
//       src/contract/declaration.ts accumulationOf).
//   b_c = the float32/float64 bound above with dtype := c (elementwise ops at u_c, sums at u_a).
//   One final rounding of a value v~ with |v~ - v| <= b_c to the output dtype (unit roundoff
//   u_o = 2^-11 float16, 2^-8 bfloat16, 2^-24 float32; absolute tiny_o = the smallest subnormal
//   in the subnormal range): |fl(v~) - v| <= b_c + u_o (|v| + b_c) + tiny_o.
//   Overflow: a v~ beyond the largest finite value rounds to ±Infinity; src/judge/compare.ts accepts
//   ±Infinity of the right sign exactly when |v| + bound reaches the overflow threshold.
// Not allowed (the bug class, each rejected in spec/gallery): parameters cast to half (inf at a
// running variance > 65504), sums in half (overflow past 65504, lost mean digits), Bessel's
// m / (m - 1) formed in half (NaN for m > 65504), eps rounded to half (1e-8 -> 0: 0 / 0 on a
// constant channel), the centring x - mean done in bfloat16 (|mean| / std = 100 loses the result).
// ---------------------------------------------------------------------------------------------

const HALF_DTYPES: readonly DType[] = ['float16', 'bfloat16'];
const involvesHalf = (input: ToleranceInput) => HALF_DTYPES.includes(input.dtype) || HALF_DTYPES.includes(input.paramDtype ?? input.dtype);
/** Activations and parameters in different dtypes (float32 with float64 included). */
const isMixed = (input: ToleranceInput) => (input.paramDtype ?? input.dtype) !== input.dtype;

/**
 * The precision an implementation computes in: its declared half accumulation; float32 when a
 * half dtype is involved; for float32 mixed with float64, the narrower, float32 (the kernel may
 * compute in either: torch's rms_norm with x float64 and weight float32 computes in float64 and
 * rounds dgamma to float32, another kernel may compute in float32; the bound must admit both).
 */
export function halfComputeDtype(acc: AccumulationInfo, input?: ToleranceInput): DType {
  if (HALF_DTYPES.includes(acc.dtype)) return acc.dtype;
  if (input && !involvesHalf(input) && input.dtype === 'float64' && (input.paramDtype ?? input.dtype) === 'float64') return 'float64';
  return 'float32';
}

function halfTolerance(input: ToleranceInput, f: ChannelFacts): ChannelBounds {
  const acc = input.accumulation ?? { dtype: 'float32', order: 'sequential' };
  const compute = halfComputeDtype(acc, input);
  const inner = fullTolerance({ dtype: compute, accumulation: acc }, f);
  const paramDtype = input.paramDtype ?? input.dtype;
  // A sum whose factor k u_a reaches 1 has no relative bound at all (m-term sums in half): no
  // finite bound (Infinity, never an Infinity * 0 = NaN from the inner formulas), for the outputs
  // that come from a reduction only (issue 21): the statistics, the parameter gradients, and in
  // training y, x-hat and dx (they use the batch statistics). Inference y and dx use the given
  // statistics and no sum: they keep their own bound at any m.
  const k = reductionDepth(f.m, acc);
  const unbounded = k * unitRoundoff(acc.dtype) >= 1;
  const round = (dtype: DType, reduces: boolean) => {
    const once = roundedOnce(dtype, acc);
    return (bc: number, v: number) => (unbounded && reduces ? Infinity : once(bc, v));
  };
  const act = round(input.dtype, f.training);
  const par = round(paramDtype, true);
  const uninformative = new Set(inner.uninformative);
  if (unbounded) for (const o of ['mean', 'variance', 'runningMean', 'runningVar', 'dgamma', 'dbeta', ...(f.training ? ['xhat', 'y', 'dx', 'invStdDev'] : [])]) uninformative.add(o);
  return {
    reason: `${input.dtype} activations, ${paramDtype} parameters, computed in ${compute}, rounded once to each output's dtype; ${inner.reason}`,
    g: unbounded ? Infinity : inner.g,
    depth: inner.depth,
    uninformative,
    mean: par(inner.mean, f.mean),
    variance: par(inner.variance, f.variance),
    invStdDev: par(inner.invStdDev, 1 / Math.sqrt(f.variance + f.eps)),
    xhat: (xhat, x) => act(inner.xhat(xhat, x), xhat),
    y: (xhat, x, y, gamma) => act(inner.y(xhat, x, y, gamma), y),
    runningMean: (keep, take, momentum, old, result) => par(inner.runningMean(keep, take, momentum, old, result), result),
    runningVar: (keep, take, momentum, old, bessel, result) => par(inner.runningVar(keep, take, momentum, old, bessel, result), result),
    dx: (xhat, x, dy, Q, P, dx) => act(inner.dx(xhat, x, dy, Q, P, dx), dx),
    dgamma: (dgamma) => par(inner.dgamma(dgamma), dgamma),
    dbeta: (sumAbsDy, dbeta) => par(inner.dbeta(sumAbsDy, dbeta), dbeta),
    // a share of a sum computed in the compute precision: parameterTolerance rounds the sum once
    dgammaTerm: (xhat, x, dy) => (unbounded ? Infinity : inner.dgammaTerm(xhat, x, dy)),
  };
}

/** One final rounding to dtype of a value known within bc: |fl(v~) - v| <= bc + u_o (|v| + bc) + tiny_o (derivation above). */
export function roundedOnce(dtype: DType, acc: AccumulationInfo): (bc: number, v: number) => number {
  const uo = unitRoundoff(dtype);
  const tinyO = acc.subnormals === 'flush-to-zero' ? TINY_NORMAL[dtype] : TINY[dtype];
  return (bc, v) => bc + uo * (Math.abs(v) + bc) + tinyO;
}
// --------------------------------------------- END HALF PRECISION ----------------------------

/**
 * Central differences, for checking a float64 implementation's backward against its own forward
 * (gradcheck style). Derivation of the step:
 * - Scale. The loss L = sum w y is a function of x_i through x-hat = (x - mu) / s, so its n-th
 *   derivative in x_i is ~ |gamma| sum|w| / s^n: the natural length is s = sqrt(var + eps) of the
 *   statistics the forward uses (batch in training, running in inference), not |x| (issue 11:
 *   x = [-832.008, -832], s = 0.005 and a step of 4e-3 ~ s made D(h) meaningless).
 *   In training, var + eps as a function of x_i + t is a quadratic with complex roots at
 *   |t| = s m / sqrt(m - 1) >= 2s, so L's Taylor series in x_i converges for |t| < R >= 2s
 *   (Cauchy: |L^(n) / n!| <= M / R^n); in inference L is linear in x_i, gamma and beta (training:
 *   linear in gamma and beta), and any step has zero truncation.
 * - Balance. Truncation ~ (h / s)^2 |L'| against rounding e_L / h, where the forward's y carries
 *   a relative noise ~ u (1 + kappa), kappa = (|x| + |mu|) / s (the tolerance's u (|x| + |mu|) / s
 *   term of x-hat): e_L / h ~ u (1 + kappa) s |L'| / h. Equal at h* = s cbrt(u (1 + kappa)).
 *   Capped at s 2^-10 (so h / R <= 2^-11: each further Taylor term is 2^-22 of the one before),
 *   and rounded down to a power of two.
 * - Representable. The step actually taken is the perturbation fl(v + j h) - v; a check uses the
 *   step only where it is exact for j = +-1, +-2 (exactStencil), otherwise it picks another
 *   element. |v| matters only there (h must be a multiple of v's ulp, or v's bits would be lost).
 */
export function finiteDifferenceStep(dtype: DType, s: number, magnitude: number): number {
  const u = unitRoundoff(dtype);
  const kappa = magnitude / s;
  const target = s * Math.min(Math.cbrt(u * (1 + kappa)), 2 ** -10);
  return 2 ** Math.floor(Math.log2(target));
}

const ROUND: Record<DType, (v: number) => number> = {
  float32: Math.fround,
  float64: (v) => v,
  float16: (v) => roundToHalf(v, 'float16'),
  bfloat16: (v) => roundToHalf(v, 'bfloat16'),
};

/** True when v + j h (j = -2, -1, 1, 2) are exact in dtype: the perturbations are exactly j h. */
export function exactStencil(dtype: DType, v: number, h: number): boolean {
  const pair = new Float64Array(2);
  for (const j of [-2, -1, 1, 2]) {
    const p = ROUND[dtype](v + j * h);
    if (!Number.isFinite(p)) return false;
    // p - v exactly, as an unevaluated pair: the perturbation is j h iff the pair is (j h, 0)
    twoSum(p, -v, pair);
    if (pair[0] !== j * h || pair[1] !== 0) return false;
  }
  return true;
}

/**
 * Bound on |D(h) - f'| for the central difference D(h) = (L(v + h) - L(v - h)) / 2h.
 * Truncation: D(h) = f' + c2 h^2 + c4 h^4 + ..., so D(h) - D(2h) = -3 c2 h^2 - 15 c4 h^4 - ...;
 * with h / R <= 2^-11 (finiteDifferenceStep) the series after c2 is below 2^-20 of it, and
 * |c2 h^2| <= (|D(h) - D(2h)| + rounding of D(h) and D(2h)) / 3. Rounding: each loss is known
 * to lossError (the largest of the four points), so D(h) to lossError / h and D(2h) to
 * lossError / 2h. Sum: |D(h) - f'| <= 2 (|D(h) - D(2h)| + 1.5 e / h) / 3 + e / h, the factor 2
 * on the truncation covering the O(h^4) remainder, = 2 |D(h) - D(2h)| / 3 + 2 e / h.
 * Where c2 h^2 and the c4 term cancel in D(h) - D(2h) (|c2| ~ 5 |c4| h^2), the truncation left is
 * ~ 4 |c4| h^4 <= (h / s)^4 |L'| ~ (u (1 + kappa))^(4/3) |L'|, below the rounding term
 * 2 e / h >= ~ (u (1 + kappa))^(2/3) |L'| whenever u (1 + kappa) < 1: it is covered too.
 */
export function finiteDifferenceBound(dh: number, d2h: number, h: number, lossError: number): number {
  // a loss through a singular channel has no bound (its y may be anything): neither has D(h)
  if (lossError === Infinity) return Infinity;
  return (2 * Math.abs(dh - d2h)) / 3 + (2 * lossError) / h;
}
