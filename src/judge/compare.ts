/**
 * Compare an implementation's result with the reference under the tolerance function, and
 * describe the worst element the way a failure report needs it: which output, where, expected,
 * got, error, allowed bound, and why the bound is what it is.
 */
import type {
  AccumulationInfo,
  BackwardRequest,
  BatchNormImplementation,
  DType,
  FamilyOp,
  FamilyRequest,
  ForwardInferRequest,
  ForwardTrainRequest,
  Op,
  Precision,
  Profile,
  BackwardSyncRequest,
  ForwardTrainSyncRequest,
  SyncOp,
} from '../contract/contract.js';
import { concatenatedRows, shardFromRows, shardRows, validateSyncRequest, type SyncLayout } from '../contract/layout-sync.js';
import { fieldDtype, numericRequest, overflowThresholdOf, precisionOfRequest } from '../contract/dtypes.js';
import { accumulationOf } from '../contract/declaration.js';
import { type Layout, layoutOf } from '../contract/layout.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../contract/profiles.js';
import { channelStats, referenceBackward, referenceForwardInfer, referenceForwardTrain } from '../reference/reference.js';
import { referenceFamily } from '../reference/family.js';
import { groupStats } from '../reference/grouped.js';
import {
  batchGroupingOf,
  describeGroup,
  describePosition,
  FAMILY,
  groupBase,
  groupOf,
  isFamilyOp,
  paramOf,
  paramOfGroup,
  validateFamilyRequest,
  type Grouping,
} from '../contract/grouping.js';
import { type ChannelBounds, type ChannelFacts, errorRatio, parameterTolerance, syncTolerance, tolerance } from './tolerance.js';
import { GridAccumulator } from './exact-sums.js';
import { countComparison } from './tally.js';

export interface ElementReport {
  output: string;
  index: number;
  channel: number;
  expected: number;
  got: number;
  error: number;
  bound: number;
}

export interface Comparison {
  ok: boolean;
  /** The element with the largest error / bound over all outputs (or the first non-finite mismatch). */
  worst?: ElementReport;
  /** Per output, the worst error / bound ratio (<= 1 passes). */
  ratios: Record<string, number>;
  /** The tolerance's reason for the worst element's channel. */
  reason: string;
}

/**
 * The accumulation the tolerance assumes for a dtype (src/contract/declaration.ts: the declared one, or
 * sequential sums in the dtype; float32 for half dtypes).
 */
export function accumulationFor(impl: Pick<BatchNormImplementation, 'accumulation'>, dtype: DType): AccumulationInfo {
  return accumulationOf(impl, dtype).info;
}

export const toFloat64 = (a: ArrayLike<number>): Float64Array => {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
};

/** Float64Array.from({ length: n }, fn) without the iterator protocol (5-10x faster at m = 2^20). */
function build(n: number, fn: (i: number) => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = fn(i);
  return out;
}

const channelOf = (L: Layout, i: number) => Math.floor(i / L.inner) % L.channels;

/**
 * Exact per-group facts for the tolerance, and x-hat per element, over a grouping (BN: the batch
 * grouping, one group per channel). `family` (the normalization family's ops): gamma is per
 * element (ChannelFacts.gammaPerElement: the facts' gamma is the group's largest |gamma|, the
 * backward facts are of dy' = gamma dy, and Q' = mean(dy'), P' = mean(dy' xhat) come back per
 * group), and RMSNorm does not centre (its stats: mean 0, variance mean(x^2)).
 */
function groupFacts(
  G: Grouping,
  x: Float64Array,
  eps: number,
  gamma: ArrayLike<number>,
  stats: { mean: Float64Array; variance: Float64Array },
  training: boolean,
  dy?: Float64Array,
  family?: { centred: boolean },
): { perChannel: ChannelFacts[]; xhat: Float64Array; Q: Float64Array; P: Float64Array } {
  const xhat = new Float64Array(G.numel);
  const perChannel: ChannelFacts[] = [];
  const Q = new Float64Array(family && dy ? G.groups : 0);
  const P = new Float64Array(family && dy ? G.groups : 0);
  const { runs, runStride, runLength } = G;
  for (let c = 0; c < G.groups; c++) {
    const mu = stats.mean[c]!;
    const v = stats.variance[c]!;
    const s = Math.sqrt(v + eps);
    let absSum = 0;
    let maxDev = 0;
    let sDy = 0;
    let sDyXhat = 0;
    let sDyX = 0;
    let maxGamma = 0;
    let sumDyp = 0;
    let sumDypXhat = 0;
    // grid facts decide which of the kernel's sums are exact (tolerance.ts exactness); only batch
    // statistics (training) are sums the kernel computes; RMSNorm's are sums of squares (none)
    const grid = training && (!family || family.centred) ? new GridAccumulator() : undefined;
    const dyGrid = dy && !family ? new GridAccumulator() : undefined;
    const base = groupBase(G, c);
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      for (let i = start; i < start + runLength; i++) {
        grid?.add(x[i]!);
        dyGrid?.add(dy![i]!);
        const d = x[i]! - mu;
        xhat[i] = d / s;
        absSum += Math.abs(x[i]!);
        maxDev = Math.max(maxDev, Math.abs(d));
        if (family) {
          const gm = gamma[paramOf(G, i)]!;
          maxGamma = Math.max(maxGamma, Math.abs(gm));
          if (dy) {
            const dyp = gm * dy[i]!;
            sDy += Math.abs(dyp);
            sDyXhat += Math.abs(dyp * xhat[i]!);
            sDyX += Math.abs(dyp * x[i]!);
            sumDyp += dyp;
            sumDypXhat += dyp * xhat[i]!;
          }
        } else if (dy) {
          sDy += Math.abs(dy[i]!);
          sDyXhat += Math.abs(dy[i]! * xhat[i]!);
          sDyX += Math.abs(dy[i]! * x[i]!);
        }
      }
    }
    if (family && dy) {
      Q[c] = family.centred ? sumDyp / G.m : 0;
      P[c] = sumDypXhat / G.m;
    }
    perChannel.push({
      m: G.m,
      mean: mu,
      variance: v,
      eps,
      absMean: absSum / G.m,
      maxDev,
      gamma: family ? maxGamma : gamma[paramOfGroup(G, c)]!,
      training,
      ...(dy ? { meanAbsDy: sDy / G.m, meanAbsDyXhat: sDyXhat / G.m, meanAbsDyX: sDyX / G.m } : {}),
      ...gridFields(grid, dyGrid),
      ...(family ? { gammaPerElement: true, ...(family.centred ? {} : { centred: false }) } : {}),
    });
  }
  return { perChannel, xhat, Q, P };
}

/** BN's facts: the batch grouping's. */
const facts = (L: Layout, x: Float64Array, eps: number, gamma: Float64Array, stats: { mean: Float64Array; variance: Float64Array }, training: boolean, dy?: Float64Array) =>
  groupFacts(batchGroupingOf(L), x, eps, gamma, stats, training, dy);

/** The optional grid facts of a channel (absent when not computed or not on a grid). */
export function gridFields(grid?: GridAccumulator, dyGrid?: GridAccumulator): Pick<ChannelFacts, 'grid' | 'dyGrid'> {
  const g = grid?.facts();
  const d = dyGrid?.facts();
  return { ...(g ? { grid: g } : {}), ...(d ? { dyGrid: d } : {}) };
}

/**
 * Whether the tolerance admits `got` without measuring its error, for an element whose exact value
 * is `expected` (finite) with this bound: a singular channel (bound Infinity: no claim on any
 * value, finite or not, src/judge/tolerance.ts), or a
 * half or float32 output whose exact value is within its bound of the overflow threshold, rounded
 * to ±Infinity of the right sign (an honest rounding: 65,597 is +Infinity in float16, a mean of
 * 1e150 +Infinity in float32).
 */
export function admitsNonFinite(expected: number, got: number, bound: number, overflowAt = Infinity): boolean {
  if (bound === Infinity) return true;
  return Math.abs(got) === Infinity && Number.isFinite(expected) && Math.sign(got) === Math.sign(expected) && Math.abs(expected) + bound >= overflowAt;
}

/** Collects the worst element over several outputs. */
class Worst {
  ratios: Record<string, number> = {};
  worst?: ElementReport;
  worstRatio = -1;
  /** Set when the worst element broke a rule rather than a bound (a negative variance). */
  rule?: string;
  check(output: string, index: number, channel: number, expected: number, got: unknown, bound: number, overflowAt = Infinity, informative = true): void {
    const g = typeof got === 'number' ? got : NaN;
    countComparison(informative && bound < Infinity);
    let ratio: number;
    let error: number;
    let rule: string | undefined;
    if (output === 'variance' && g < 0) {
      // never within any bound: the y, x-hat and dx bounds assume the kernel normalizes with a
      // variance >= 0 (tolerance.ts, the eps floor), and docs/CONTRACT.md requires it
      error = Math.abs(g - expected);
      ratio = Infinity;
      rule = 'a batch variance is never negative: a formula that can round below 0 must clamp at 0 (docs/CONTRACT.md)';
    } else if (typeof got === 'number' && admitsNonFinite(expected, g, bound, overflowAt)) {
      // a singular channel (no claim), or an honest overflow to ±Infinity: admitsNonFinite
      error = Number.isFinite(g) ? Math.abs(g - expected) : 0;
      ratio = 0;
    } else if (Number.isNaN(expected) || !Number.isFinite(expected)) {
      const same = Object.is(expected, g) || (Number.isNaN(expected) && Number.isNaN(g));
      error = same ? 0 : Infinity;
      ratio = same ? 0 : Infinity;
    } else {
      error = Math.abs(g - expected);
      ratio = typeof got === 'number' ? errorRatio(error, bound) : Infinity;
    }
    this.ratios[output] = Math.max(this.ratios[output] ?? 0, ratio);
    if (ratio > this.worstRatio) {
      this.worstRatio = ratio;
      this.worst = { output, index, channel, expected, got: g, error, bound: rule ? 0 : bound };
      this.rule = rule;
    }
  }
}

export interface CompareOptions {
  accumulation: AccumulationInfo;
  /** The implementation's precision; default: read from the request (its fields, else its arrays). */
  precision?: Precision;
}

/** The reference's answer and, per element, the bound the tolerance allows around it. */
export interface Expectation {
  expected: Record<string, Float64Array>;
  bounds: Record<string, Float64Array>;
  /** Per output, per element, the channel it belongs to. */
  channelOf: (output: string, index: number) => number;
  /** Per channel, the tolerance's reason. */
  reasons: string[];
  /** Per channel, the outputs whose bound can fail nothing there (tolerance.ts `uninformative`): counted as inconclusive. */
  uninformative?: ReadonlySet<string>[];
  /**
   * Per output, the magnitude at which its dtype overflows to ±Infinity (outputs narrower than
   * float64: half ones, and float32 statistics of float64 data, whose 1e150 mean is +Infinity).
   */
  overflowAt?: Record<string, number>;
  /** Outputs checked only when the result has them (the family's mean and invStdDev). */
  optional?: ReadonlySet<string>;
  /** An element's position in words, for reports (the family: its indices, group and parameter). */
  where?: (output: string, index: number) => string;
}

/** The request as float64 numbers (half decoded), for the float64 reference. */
const f64Request = <T extends ForwardTrainRequest | ForwardInferRequest | BackwardRequest>(req: T, p: Precision): T =>
  ({ ...numericRequest({ ...req, dtype: req.dtype ?? p.dtype, paramDtype: req.paramDtype ?? p.paramDtype }), dtype: 'float64', paramDtype: 'float64' }) as T;

/** Expected outputs (reference, float64) and per-element bounds for an implementation of `dtype`. */
export function expectationFor(
  op: Op | FamilyOp,
  profile: Profile,
  request: ForwardTrainRequest | ForwardInferRequest | BackwardRequest | FamilyRequest,
  opts: CompareOptions,
): Expectation {
  if (isFamilyOp(op)) return familyExpectation(op, profile, request as FamilyRequest, opts);
  return batchNormExpectation(op, profile, request as ForwardTrainRequest | ForwardInferRequest | BackwardRequest, opts);
}

/**
 * BatchNorm's expectation over the batch grouping. `channelTolerance` replaces the per-channel
 * `tolerance` where the kernel's statistics are merged from partial results (synchronized BN:
 * syncTolerance, expectationForSync below); everything else is the same derivation.
 */
function batchNormExpectation(
  op: Op,
  profile: Profile,
  req: ForwardTrainRequest | ForwardInferRequest | BackwardRequest,
  opts: CompareOptions,
  channelTolerance?: (f: ChannelFacts, c: number) => ChannelBounds,
): Expectation {
  const precision = opts.precision ?? precisionOfRequest(req);
  const { dtype, paramDtype } = precision;
  const L = layoutOf(req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const perElement = (o: string) => o === 'y' || o === 'dx';
  const channelOfOutput = (o: string, i: number) => (perElement(o) ? channelOf(L, i) : i);
  const tol = (fs: ChannelFacts[]) => fs.map((f, c) => (channelTolerance ? channelTolerance(f, c) : tolerance({ dtype, paramDtype, accumulation: opts.accumulation }, f)));
  const overflowAt = (outputs: string[]) => {
    const out: Record<string, number> = {};
    for (const o of outputs) {
      const t = overflowThresholdOf(fieldDtype(o, precision));
      if (t < Infinity) out[o] = t;
    }
    return { overflowAt: out };
  };

  if (op === 'forwardTrain') {
    const r = f64Request(req as ForwardTrainRequest, precision);
    const exp = referenceForwardTrain(profile, r);
    const st = channelStats(r.x, L);
    const { perChannel, xhat } = facts(L, r.x as Float64Array, eps, r.gamma as Float64Array, { mean: exp.mean as Float64Array, variance: st.variance }, true);
    const b = tol(perChannel);
    const { keep, take } = emaWeights(profile, r.momentum);
    const bessel = runningVarFactor(profile, L.m);
    const C = L.channels;
    return {
      expected: { y: exp.y, mean: exp.mean, variance: exp.variance, runningMean: exp.runningMean, runningVar: exp.runningVar } as Record<string, Float64Array>,
      bounds: {
        y: build(L.numel, (i) => b[channelOf(L, i)]!.y(xhat[i]!, r.x[i]!, exp.y[i]!)),
        mean: build(C, (c) => b[c]!.mean),
        variance: build(C, (c) => b[c]!.variance),
        runningMean: build(C, (c) => b[c]!.runningMean(keep, take, r.momentum, r.runningMean[c]!, exp.runningMean[c]!)),
        runningVar: build(C, (c) => b[c]!.runningVar(keep, take, r.momentum, r.runningVar[c]!, bessel, exp.runningVar[c]!)),
      },
      channelOf: channelOfOutput,
      reasons: b.map((x) => x.reason),
      uninformative: b.map((x) => x.uninformative),
      ...overflowAt(['y', 'mean', 'variance', 'runningMean', 'runningVar']),
    };
  }
  if (op === 'forwardInfer') {
    const r = f64Request(req as ForwardInferRequest, precision);
    const exp = referenceForwardInfer(profile, r);
    const { perChannel, xhat } = facts(L, r.x as Float64Array, eps, r.gamma as Float64Array, { mean: r.runningMean as Float64Array, variance: r.runningVar as Float64Array }, false);
    const b = tol(perChannel);
    return {
      expected: { y: exp.y as Float64Array },
      bounds: { y: build(L.numel, (i) => b[channelOf(L, i)]!.y(xhat[i]!, r.x[i]!, exp.y[i]!)) },
      channelOf: channelOfOutput,
      reasons: b.map((x) => x.reason),
      uninformative: b.map((x) => x.uninformative),
      ...overflowAt(['y']),
    };
  }
  const r = f64Request(req as BackwardRequest, precision);
  const x = r.x as Float64Array;
  const exp = referenceBackward(profile, r);
  const stats = r.training
    ? (() => {
        const st = channelStats(x, L);
        return { mean: st.meanHi.map((h, c) => h + st.meanLo[c]!), variance: st.variance };
      })()
    : { mean: r.runningMean as Float64Array, variance: r.runningVar as Float64Array };
  const { perChannel, xhat } = facts(L, x, eps, r.gamma as Float64Array, stats, r.training, r.dy as Float64Array);
  const b = tol(perChannel);
  return {
    expected: { dx: exp.dx as Float64Array, dgamma: exp.dgamma as Float64Array, dbeta: exp.dbeta as Float64Array },
    bounds: {
      dx: build(L.numel, (i) => {
        const c = channelOf(L, i);
        return b[c]!.dx(xhat[i]!, x[i]!, r.dy[i]!, exp.dbeta[c]! / L.m, exp.dgamma[c]! / L.m, exp.dx[i]!);
      }),
      dgamma: build(L.channels, (c) => b[c]!.dgamma(exp.dgamma[c]!)),
      dbeta: build(L.channels, (c) => b[c]!.dbeta(perChannel[c]!.meanAbsDy! * L.m, exp.dbeta[c]!)),
    },
    channelOf: channelOfOutput,
    reasons: b.map((x) => x.reason),
    uninformative: b.map((x) => x.uninformative),
    ...overflowAt(['dx', 'dgamma', 'dbeta']),
  };
}

/**
 * The normalization family's expectation (issue 23), over the op's grouping: the float64
 * reference's outputs, and per element the bound of its group's tolerance (src/judge/tolerance.ts,
 * section NORMALIZATION FAMILY): y and dx with gamma per element (the element's own gamma, dx on
 * dy' = gamma dy); mean and invStdDev per group, checked when returned; dgamma and dbeta per
 * parameter by parameterTolerance, summed over the elements reading it across groups. Reasons and
 * the uninformative flags are per group, then per parameter (channelOf: groups + j for dgamma[j]).
 */
function familyExpectation(op: FamilyOp, profile: Profile, req: FamilyRequest, opts: CompareOptions): Expectation {
  const precision = opts.precision ?? precisionOfRequest(req);
  const { dtype, paramDtype } = precision;
  const f = FAMILY[op];
  type Numbers = { x: Float64Array; gamma: Float64Array; dy: Float64Array };
  const r = { ...numericRequest({ ...req, dtype: req.dtype ?? dtype, paramDtype: req.paramDtype ?? paramDtype }), dtype: 'float64', paramDtype: 'float64' } as FamilyRequest & Numbers;
  const { grouping: G } = validateFamilyRequest(op, r);
  const eps = effectiveEps(profile, r.eps);
  const exp = referenceFamily(profile, op, r) as unknown as Record<string, Float64Array>;
  const st = groupStats(r.x, G, f.centred);
  const mean = st.meanHi.map((h, g) => h + st.meanLo[g]!);
  const fx = groupFacts(G, r.x, eps, r.gamma, { mean, variance: st.variance }, true, f.backward ? r.dy : undefined, { centred: f.centred });
  const input = { dtype, paramDtype, accumulation: opts.accumulation };
  const b = fx.perChannel.map((fa) => tolerance(input, fa));
  const overflowAt: Record<string, number> = {};
  for (const o of [...f.outputs, ...f.optionalOutputs]) {
    const t = overflowThresholdOf(fieldDtype(o, precision));
    if (t < Infinity) overflowAt[o] = t;
  }
  const perElement = (o: string) => o === 'y' || o === 'dx';
  const perGroup = (o: string) => o === 'mean' || o === 'invStdDev';
  const where = (o: string, i: number) =>
    perElement(o) ? `${o}${describePosition(G, i)}` : perGroup(o) ? `${o}[${i}] (${describeGroup(G, i)})` : `${o}[${i}] (every element reading gamma[${i}])`;
  const common = { overflowAt, optional: new Set(f.optionalOutputs), where };
  if (!f.backward) {
    return {
      expected: { y: exp.y!, ...(f.centred ? { mean: exp.mean! } : {}), invStdDev: exp.invStdDev! },
      bounds: {
        y: build(G.numel, (i) => b[groupOf(G, i)]!.y(fx.xhat[i]!, r.x[i]!, exp.y![i]!, r.gamma[paramOf(G, i)]!)),
        ...(f.centred ? { mean: build(G.groups, (g) => b[g]!.mean) } : {}),
        invStdDev: build(G.groups, (g) => b[g]!.invStdDev),
      },
      channelOf: (o, i) => (perElement(o) ? groupOf(G, i) : i),
      reasons: b.map((x) => x.reason),
      uninformative: b.map((x) => x.uninformative),
      ...common,
    };
  }
  // per parameter, over the elements reading it (across groups)
  const n = new Float64Array(G.params);
  const sumTerms = new Float64Array(G.params);
  const sumAbsDyXhat = new Float64Array(G.params);
  const sumAbsDy = new Float64Array(G.params);
  const grids = Array.from({ length: G.params }, () => new GridAccumulator());
  for (let g = 0; g < G.groups; g++) {
    const base = groupBase(G, g);
    for (let k = 0; k < G.runs; k++) {
      const start = base + k * G.runStride;
      for (let i = start; i < start + G.runLength; i++) {
        const p = paramOf(G, i);
        const dy = r.dy[i]!;
        n[p]!++;
        sumTerms[p]! += b[g]!.dgammaTerm(fx.xhat[i]!, r.x[i]!, dy);
        sumAbsDyXhat[p]! += Math.abs(dy * fx.xhat[i]!);
        sumAbsDy[p]! += Math.abs(dy);
        grids[p]!.add(dy);
      }
    }
  }
  const pb = Array.from({ length: G.params }, (_, p) =>
    parameterTolerance(input, { n: n[p]!, sumTerms: sumTerms[p]!, sumAbsDyXhat: sumAbsDyXhat[p]!, sumAbsDy: sumAbsDy[p]!, ...gridFields(undefined, grids[p]) }),
  );
  return {
    expected: { dx: exp.dx!, dgamma: exp.dgamma!, ...(f.hasBeta ? { dbeta: exp.dbeta! } : {}) },
    bounds: {
      dx: build(G.numel, (i) => {
        const g = groupOf(G, i);
        return b[g]!.dx(fx.xhat[i]!, r.x[i]!, r.gamma[paramOf(G, i)]! * r.dy[i]!, fx.Q[g]!, fx.P[g]!, exp.dx![i]!);
      }),
      dgamma: build(G.params, (p) => pb[p]!.dgamma(exp.dgamma![p]!)),
      ...(f.hasBeta ? { dbeta: build(G.params, (p) => pb[p]!.dbeta(exp.dbeta![p]!)) } : {}),
    },
    channelOf: (o, i) => (perElement(o) ? groupOf(G, i) : G.groups + i),
    reasons: [...b.map((x) => x.reason), ...pb.map((x) => x.reason)],
    uninformative: [...b.map((x) => x.uninformative), ...pb.map((x) => x.uninformative)],
    ...common,
  };
}

/** A synchronized op's expectation: outputs named as a report shows them (replicas[2].y, mean, dgamma, …). */
export interface SyncExpectation extends Expectation {
  layout: SyncLayout;
}

/**
 * The synchronized ops (forwardTrainSync, backwardSync): single-device BatchNorm's expectation
 * (batchNormExpectation) of the concatenated global batch, as rows [m, C], with the merged
 * statistics' bounds of syncTolerance per channel (replicas, the largest replica's m and the
 * largest |local mean|: the merge's rounding, src/judge/tolerance.ts), split back replica by
 * replica. The reference answer is the concatenation's (channelStats), not the merge a kernel does,
 * so a kernel is never compared with its own algorithm.
 */
export function expectationForSync(
  op: SyncOp,
  profile: Profile,
  req: ForwardTrainSyncRequest | BackwardSyncRequest,
  opts: { accumulation: AccumulationInfo },
): SyncExpectation {
  const layout = validateSyncRequest(op, req);
  const C = layout.channels;
  const m = layout.m;
  const x = concatenatedRows(req.shards.map((s) => s.x), layout);
  const maxReplicaAbsMean = new Float64Array(C);
  layout.shards.forEach((L, r) => {
    if (L.m === 0) return;
    const local = channelStats(shardRows(req.shards[r]!.x, L), { outer: L.m, channels: C, inner: 1, m: L.m, numel: L.m * C });
    for (let c = 0; c < C; c++) maxReplicaAbsMean[c] = Math.max(maxReplicaAbsMean[c]!, Math.abs(local.meanHi[c]! + local.meanLo[c]!));
  });
  const precision = { dtype: req.dtype, paramDtype: req.paramDtype };
  const merged = (f: ChannelFacts, c: number) =>
    syncTolerance({ ...precision, accumulation: opts.accumulation }, f, { replicas: layout.shards.length, maxLocalM: layout.maxLocalM, maxReplicaAbsMean: maxReplicaAbsMean[c]! });
  const rows = { ...precision, x, shape: [m, C], axis: 1 };
  const single =
    op === 'forwardTrainSync'
      ? (() => {
          const r = req as ForwardTrainSyncRequest;
          const fwd: ForwardTrainRequest = { ...rows, gamma: r.gamma, beta: r.beta, eps: r.eps, momentum: r.momentum, runningMean: r.runningMean, runningVar: r.runningVar };
          return batchNormExpectation('forwardTrain', profile, fwd, { ...opts, precision }, merged);
        })()
      : (() => {
          const r = req as BackwardSyncRequest;
          const dy = concatenatedRows(r.shards.map((s) => s.dy), layout);
          const bwd: BackwardRequest = { ...rows, dy, gamma: r.gamma, eps: r.eps, training: true };
          return batchNormExpectation('backward', profile, bwd, { ...opts, precision }, merged);
        })();
  // per-element outputs split by replica (each in its shard's layout); per-channel ones as they are:
  // the running statistics once per replica (each replica updates its own copy), the rest global
  const expected: Record<string, Float64Array> = {};
  const bounds: Record<string, Float64Array> = {};
  const overflowAt: Record<string, number> = {};
  const channelOfOutput: Record<string, (i: number) => number> = {};
  const replicaOutputs = op === 'forwardTrainSync' ? ['y', 'runningMean', 'runningVar'] : ['dx'];
  let row = 0;
  layout.shards.forEach((L, rep) => {
    for (const o of replicaOutputs) {
      const name = `replicas[${rep}].${o}`;
      const perElement = o === 'y' || o === 'dx';
      expected[name] = perElement ? shardFromRows(single.expected[o]!, L, row) : single.expected[o]!;
      bounds[name] = perElement ? shardFromRows(single.bounds[o]!, L, row) : single.bounds[o]!;
      if (single.overflowAt?.[o] !== undefined) overflowAt[name] = single.overflowAt[o]!;
      if (perElement) channelOfOutput[name] = (i) => Math.floor(i / L.inner) % L.channels;
    }
    row += L.m;
  });
  for (const o of op === 'forwardTrainSync' ? ['mean', 'variance'] : ['dgamma', 'dbeta']) {
    expected[o] = single.expected[o]!;
    bounds[o] = single.bounds[o]!;
    if (single.overflowAt?.[o] !== undefined) overflowAt[o] = single.overflowAt[o]!;
  }
  return {
    layout,
    expected,
    bounds,
    channelOf: (output, i) => (channelOfOutput[output] ? channelOfOutput[output]!(i) : i),
    reasons: single.reasons,
    ...(single.uninformative ? { uninformative: single.uninformative.map((u) => new Set([...u].flatMap((o) => (replicaOutputs.includes(o) ? layout.shards.map((_, r) => `replicas[${r}].${o}`) : [o])))) } : {}),
    overflowAt,
  };
}

/** Flatten a synchronized result to the expectation's output names (replicas[r].y, mean, …). */
export function flattenSyncResult(result: { replicas: Array<Record<string, ArrayLike<number>>> } & Record<string, unknown>): Record<string, ArrayLike<number>> {
  const out: Record<string, ArrayLike<number>> = {};
  result.replicas.forEach((rep, r) => {
    for (const [k, v] of Object.entries(rep)) out[`replicas[${r}].${k}`] = v;
  });
  for (const [k, v] of Object.entries(result)) if (k !== 'replicas' && ArrayBuffer.isView(v)) out[k] = v as unknown as ArrayLike<number>;
  return out;
}

export function checkSync(e: SyncExpectation, got: Parameters<typeof flattenSyncResult>[0]): Comparison {
  return checkAgainst(e, flattenSyncResult(got));
}

/** Check an implementation's result against an expectation; outputs absent from `got` fail (optional ones are skipped). */
export function checkAgainst(e: Expectation, got: Record<string, ArrayLike<number> | undefined>): Comparison {
  const w = new Worst();
  for (const [output, expected] of Object.entries(e.expected)) {
    const bounds = e.bounds[output]!;
    const g = got[output];
    if (g === undefined && e.optional?.has(output)) continue;
    const overflowAt = e.overflowAt?.[output];
    for (let i = 0; i < expected.length; i++) {
      const channel = e.channelOf(output, i);
      w.check(output, i, channel, expected[i]!, g?.[i], bounds[i]!, overflowAt, !e.uninformative?.[channel]?.has(output));
    }
  }
  const ok = w.worstRatio <= 1;
  const reason = w.worst ? (w.rule ?? e.reasons[w.worst.channel] ?? '') : '';
  return { ok, ratios: w.ratios, ...(w.worst ? { worst: w.worst } : {}), reason };
}

/** Compare an implementation's result for `req` with the reference under the tolerance. */
export function compareWithReference(
  op: Op | FamilyOp,
  profile: Profile,
  req: ForwardTrainRequest | ForwardInferRequest | BackwardRequest | FamilyRequest,
  got: Record<string, ArrayLike<number> | undefined>,
  opts: CompareOptions,
): Comparison {
  return checkAgainst(expectationFor(op, profile, req, opts), got);
}

export const compareForwardTrain = (profile: Profile, req: ForwardTrainRequest, got: object, opts: CompareOptions) =>
  compareWithReference('forwardTrain', profile, req, got as Record<string, ArrayLike<number>>, opts);
