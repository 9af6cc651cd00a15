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
  ForwardInferRequest,
  ForwardTrainRequest,
  Op,
  Profile,
} from './contract.js';
import { type Layout, layoutOf } from './layout.js';
import { effectiveEps, emaWeights, runningVarFactor } from './profiles.js';
import { channelStats, referenceBackward, referenceForwardInfer, referenceForwardTrain } from './reference/reference.js';
import { type ChannelBounds, type ChannelFacts, tolerance } from './tolerance.js';

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

export function accumulationFor(impl: Pick<BatchNormImplementation, 'accumulation'>, dtype: DType): AccumulationInfo {
  const a = impl.accumulation;
  if (!a) return { dtype, order: 'sequential' };
  if ('order' in a && typeof a.order === 'string') return a as AccumulationInfo;
  return (a as Partial<Record<DType, AccumulationInfo>>)[dtype] ?? { dtype, order: 'sequential' };
}

export const toFloat64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

const channelOf = (L: Layout, i: number) => Math.floor(i / L.inner) % L.channels;

function forChannel(L: Layout, c: number, fn: (i: number) => void): void {
  for (let o = 0; o < L.outer; o++) {
    const base = (o * L.channels + c) * L.inner;
    for (let i = base; i < base + L.inner; i++) fn(i);
  }
}

/** Exact per-channel facts for the tolerance, and x-hat per element. */
function facts(
  L: Layout,
  x: Float64Array,
  eps: number,
  gamma: Float64Array,
  stats: { mean: Float64Array; variance: Float64Array },
  training: boolean,
  dy?: Float64Array,
): { perChannel: ChannelFacts[]; xhat: Float64Array } {
  const xhat = new Float64Array(L.numel);
  const perChannel: ChannelFacts[] = [];
  for (let c = 0; c < L.channels; c++) {
    const mu = stats.mean[c]!;
    const v = stats.variance[c]!;
    const s = Math.sqrt(v + eps);
    let absSum = 0;
    let maxDev = 0;
    let sDy = 0;
    let sDyXhat = 0;
    let sDyX = 0;
    forChannel(L, c, (i) => {
      const d = x[i]! - mu;
      xhat[i] = d / s;
      absSum += Math.abs(x[i]!);
      maxDev = Math.max(maxDev, Math.abs(d));
      if (dy) {
        sDy += Math.abs(dy[i]!);
        sDyXhat += Math.abs(dy[i]! * xhat[i]!);
        sDyX += Math.abs(dy[i]! * x[i]!);
      }
    });
    perChannel.push({
      m: L.m,
      mean: mu,
      variance: v,
      eps,
      absMean: absSum / L.m,
      maxDev,
      gamma: gamma[c]!,
      training,
      ...(dy ? { meanAbsDy: sDy / L.m, meanAbsDyXhat: sDyXhat / L.m, meanAbsDyX: sDyX / L.m } : {}),
    });
  }
  return { perChannel, xhat };
}

/** Collects the worst element over several outputs. */
class Worst {
  ratios: Record<string, number> = {};
  worst?: ElementReport;
  worstRatio = -1;
  check(output: string, index: number, channel: number, expected: number, got: unknown, bound: number): void {
    const g = typeof got === 'number' ? got : NaN;
    let ratio: number;
    let error: number;
    if (Number.isNaN(expected) || !Number.isFinite(expected)) {
      const same = Object.is(expected, g) || (Number.isNaN(expected) && Number.isNaN(g));
      error = same ? 0 : Infinity;
      ratio = same ? 0 : Infinity;
    } else {
      error = Math.abs(g - expected);
      ratio = Number.isNaN(error) ? Infinity : bound > 0 ? error / bound : error === 0 ? 0 : Infinity;
    }
    this.ratios[output] = Math.max(this.ratios[output] ?? 0, ratio);
    if (ratio > this.worstRatio) {
      this.worstRatio = ratio;
      this.worst = { output, index, channel, expected, got: g, error, bound };
    }
  }
}

function finish(w: Worst, bounds: ChannelBounds[]): Comparison {
  const ok = w.worstRatio <= 1;
  return {
    ok,
    ratios: w.ratios,
    ...(w.worst ? { worst: w.worst } : {}),
    reason: w.worst ? (bounds[w.worst.channel]?.reason ?? '') : '',
  };
}

export interface CompareOptions {
  accumulation: AccumulationInfo;
}

/** forwardTrain: y, mean, variance, runningMean, runningVar against the reference. */
export function compareForwardTrain(
  profile: Profile,
  req: ForwardTrainRequest,
  got: { y: ArrayLike<number>; mean: ArrayLike<number>; variance: ArrayLike<number>; runningMean: ArrayLike<number>; runningVar: ArrayLike<number> },
  opts: CompareOptions,
): Comparison {
  const dtype: DType = req.x instanceof Float32Array ? 'float32' : 'float64';
  const L = layoutOf(req.shape, req.axis);
  const x = toFloat64(req.x);
  const r64 = { ...req, x, gamma: toFloat64(req.gamma), beta: toFloat64(req.beta), runningMean: toFloat64(req.runningMean), runningVar: toFloat64(req.runningVar) };
  const exp = referenceForwardTrain(profile, r64);
  const st = channelStats(x, L);
  const eps = effectiveEps(profile, req.eps);
  const { perChannel, xhat } = facts(L, x, eps, r64.gamma, { mean: exp.mean as Float64Array, variance: st.variance }, true);
  const bounds = perChannel.map((f) => tolerance({ dtype, accumulation: opts.accumulation }, f));
  const { keep, take } = emaWeights(profile, req.momentum);
  const bessel = runningVarFactor(profile, L.m);
  const w = new Worst();
  for (let i = 0; i < L.numel; i++) {
    const c = channelOf(L, i);
    w.check('y', i, c, exp.y[i]!, got.y[i], bounds[c]!.y(xhat[i]!, x[i]!, exp.y[i]!));
  }
  for (let c = 0; c < L.channels; c++) {
    const b = bounds[c]!;
    w.check('mean', c, c, exp.mean[c]!, got.mean[c], b.mean);
    w.check('variance', c, c, exp.variance[c]!, got.variance[c], b.variance);
    w.check('runningMean', c, c, exp.runningMean[c]!, got.runningMean[c], b.runningMean(keep, take, r64.runningMean[c]!, exp.runningMean[c]!));
    w.check('runningVar', c, c, exp.runningVar[c]!, got.runningVar[c], b.runningVar(keep, take, r64.runningVar[c]!, bessel, exp.runningVar[c]!));
  }
  return finish(w, bounds);
}

export function compareForwardInfer(profile: Profile, req: ForwardInferRequest, got: { y: ArrayLike<number> }, opts: CompareOptions): Comparison {
  const dtype: DType = req.x instanceof Float32Array ? 'float32' : 'float64';
  const L = layoutOf(req.shape, req.axis);
  const x = toFloat64(req.x);
  const r64 = { ...req, x, gamma: toFloat64(req.gamma), beta: toFloat64(req.beta), runningMean: toFloat64(req.runningMean), runningVar: toFloat64(req.runningVar) };
  const exp = referenceForwardInfer(profile, r64);
  const eps = effectiveEps(profile, req.eps);
  const { perChannel, xhat } = facts(L, x, eps, r64.gamma, { mean: r64.runningMean, variance: r64.runningVar }, false);
  const bounds = perChannel.map((f) => tolerance({ dtype, accumulation: opts.accumulation }, f));
  const w = new Worst();
  for (let i = 0; i < L.numel; i++) {
    const c = channelOf(L, i);
    w.check('y', i, c, exp.y[i]!, got.y[i], bounds[c]!.y(xhat[i]!, x[i]!, exp.y[i]!));
  }
  return finish(w, bounds);
}

export function compareBackward(
  profile: Profile,
  req: BackwardRequest,
  got: { dx: ArrayLike<number>; dgamma: ArrayLike<number>; dbeta: ArrayLike<number> },
  opts: CompareOptions,
): Comparison {
  const dtype: DType = req.x instanceof Float32Array ? 'float32' : 'float64';
  const L = layoutOf(req.shape, req.axis);
  const x = toFloat64(req.x);
  const dy = toFloat64(req.dy);
  const r64: BackwardRequest = {
    ...req,
    x,
    dy,
    gamma: toFloat64(req.gamma),
    ...(req.runningMean ? { runningMean: toFloat64(req.runningMean) } : {}),
    ...(req.runningVar ? { runningVar: toFloat64(req.runningVar) } : {}),
  };
  const exp = referenceBackward(profile, r64);
  const eps = effectiveEps(profile, req.eps);
  const stats = req.training
    ? (() => {
        const st = channelStats(x, L);
        return { mean: st.meanHi.map((h, c) => h + st.meanLo[c]!), variance: st.variance };
      })()
    : { mean: r64.runningMean as Float64Array, variance: r64.runningVar as Float64Array };
  const { perChannel, xhat } = facts(L, x, eps, r64.gamma as Float64Array, stats, req.training, dy);
  const bounds = perChannel.map((f) => tolerance({ dtype, accumulation: opts.accumulation }, f));
  const w = new Worst();
  for (let i = 0; i < L.numel; i++) {
    const c = channelOf(L, i);
    const Q = exp.dbeta[c]! / L.m;
    const P = exp.dgamma[c]! / L.m;
    w.check('dx', i, c, exp.dx[i]!, got.dx[i], bounds[c]!.dx(xhat[i]!, x[i]!, dy[i]!, Q, P, exp.dx[i]!));
  }
  for (let c = 0; c < L.channels; c++) {
    const f = perChannel[c]!;
    w.check('dgamma', c, c, exp.dgamma[c]!, got.dgamma[c], bounds[c]!.dgamma(exp.dgamma[c]!));
    w.check('dbeta', c, c, exp.dbeta[c]!, got.dbeta[c], bounds[c]!.dbeta(f.meanAbsDy! * L.m, exp.dbeta[c]!));
  }
  return finish(w, bounds);
}

/** Dispatch on the op. `got` is the implementation's result for `req`. */
export function compareWithReference(
  op: Op,
  profile: Profile,
  req: ForwardTrainRequest | ForwardInferRequest | BackwardRequest,
  got: Record<string, ArrayLike<number>>,
  opts: CompareOptions,
): Comparison {
  if (op === 'forwardTrain') return compareForwardTrain(profile, req as ForwardTrainRequest, got as never, opts);
  if (op === 'forwardInfer') return compareForwardInfer(profile, req as ForwardInferRequest, got as never, opts);
  return compareBackward(profile, req as BackwardRequest, got as never, opts);
}
