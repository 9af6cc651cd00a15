/**
 * The high-precision reference: Batch Normalization in float64 with compensated sums and the
 * two-pass variance, implementing the contract for any rank, channel axis and profile.
 *
 * Accuracy design (proved against the BigNumber oracle in spec/reference/oracle.spec.ts):
 * - The channel sum is carried as a double-double (Neumaier), so the mean is known as
 *   mean = meanHi + meanLo to about u^2 relative, not just rounded to float64.
 * - Deviations d = (x - meanHi) - meanLo: x - meanHi is exact when x is within a factor 2 of
 *   the mean (Sterbenz), which is exactly the ill-conditioned case |mean| >> std; so d carries
 *   about one rounding however large |mean|/std is. A plain float64 mean would put an error of
 *   u * |mean| into every d, i.e. u * |mean|/std relative: 1e8 ulp at |mean|/std = 1e8.
 * - The variance is the corrected two-pass form (Sum d^2 - (Sum d)^2 / m) / m with compensated
 *   sums; a constant channel is detected exactly (min = max) and gets mean = x, variance = 0.
 * - float32 requests are computed on the exact float64 values of the inputs and rounded once.
 * - float16 / bfloat16 (Uint16Array bit patterns) likewise: inputs decoded exactly, every output
 *   rounded once to its own dtype (y, dx: dtype; the per-channel outputs: paramDtype), pure or mixed.
 */
import { numericRequest, toTyped } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import type {
  AnyRequest,
  Arr,
  BackwardRequest,
  BackwardResult,
  BatchNormImplementation,
  DType,
  ForwardInferRequest,
  ForwardInferResult,
  ForwardTrainRequest,
  ForwardTrainResult,
  Precision,
  Profile,
  ProfileName,
} from '../contract/contract.js';
import { SingleValuePerChannelError } from '../contract/errors.js';
import { type Layout, validateRequest } from '../contract/layout.js';
import { CompensatedSum, ddDivInt } from '../numerics/eft.js';
import { effectiveEps, emaWeights, resolveProfile, runningVarFactor } from '../contract/profiles.js';
import { referenceBackwardSync, referenceForwardTrainSync } from './sync.js';

/** Per-channel batch statistics, in float64 with the mean as a double-double. */
export interface ChannelStats {
  meanHi: Float64Array;
  meanLo: Float64Array;
  /** Biased (1/m) variance. */
  variance: Float64Array;
}

/** Calls fn(base, stride, count) for each contiguous run of channel c's values. */
function forEachRun(layout: Layout, c: number, fn: (base: number, count: number) => void): void {
  const { outer, channels, inner } = layout;
  for (let o = 0; o < outer; o++) fn((o * channels + c) * inner, inner);
}

/** Batch mean (double-double) and biased two-pass variance of every channel. */
export function channelStats(x: ArrayLike<number>, layout: Layout): ChannelStats {
  const C = layout.channels;
  const meanHi = new Float64Array(C);
  const meanLo = new Float64Array(C);
  const variance = new Float64Array(C);
  const sum = new CompensatedSum();
  const sumD = new CompensatedSum();
  const sumD2 = new CompensatedSum();
  const pair = new Float64Array(2);
  for (let c = 0; c < C; c++) {
    sum.reset();
    let min = Infinity;
    let max = -Infinity;
    forEachRun(layout, c, (base, count) => {
      for (let i = base; i < base + count; i++) {
        const v = x[i]!;
        sum.add(v);
        if (v < min) min = v;
        if (v > max) max = v;
      }
    });
    if (min === max) {
      // Constant channel: the exact answer, with no rounding residue that eps = 0 would amplify.
      meanHi[c] = min;
      meanLo[c] = 0;
      variance[c] = 0;
      continue;
    }
    if (!Number.isFinite(sum.sum)) {
      meanHi[c] = sum.sum / layout.m;
      meanLo[c] = 0;
      variance[c] = NaN;
      continue;
    }
    ddDivInt(sum.sum, sum.comp, layout.m, pair);
    const hi = pair[0]!;
    const lo = pair[1]!;
    meanHi[c] = hi;
    meanLo[c] = lo;
    sumD.reset();
    sumD2.reset();
    forEachRun(layout, c, (base, count) => {
      for (let i = base; i < base + count; i++) {
        const d = x[i]! - hi - lo;
        sumD.add(d);
        sumD2.add(d * d);
      }
    });
    const sd = sumD.value();
    variance[c] = Math.max(0, (sumD2.value() - (sd * sd) / layout.m) / layout.m);
  }
  return { meanHi, meanLo, variance };
}

function copyRounded(dtype: DType, values: Float64Array): Arr {
  return dtype === 'float64' ? values : toTyped(dtype, values);
}

/** Half arrays decoded to float64 numbers (exact); float32 / float64 requests as they are. */
function asNumbers<R extends AnyRequest>(req: R, dtype: DType, paramDtype: DType): R {
  return isHalf(dtype) || isHalf(paramDtype) ? numericRequest(req) : req;
}

/** Every precision the reference takes: each dtype pure, and half activations with float32 parameters. */
export const REFERENCE_PRECISIONS: Precision[] = [
  { dtype: 'float32', paramDtype: 'float32' },
  { dtype: 'float64', paramDtype: 'float64' },
  { dtype: 'float16', paramDtype: 'float32' },
  { dtype: 'bfloat16', paramDtype: 'float32' },
  { dtype: 'float16', paramDtype: 'float16' },
  { dtype: 'bfloat16', paramDtype: 'bfloat16' },
];

export interface ReferenceOptions {
  /** Name shown in reports; default 'reference'. */
  name?: string;
  /** Precisions to declare (checked against); default REFERENCE_PRECISIONS, all of them. */
  precisions?: Precision[];
}

/** The float64 compensated reference implementation of the contract. */
export function createReference(profile?: ProfileName | Profile, options: ReferenceOptions = {}): BatchNormImplementation {
  const p = resolveProfile(profile);
  const precisions = options.precisions ?? REFERENCE_PRECISIONS;
  return {
    name: options.name ?? 'reference',
    profile: p,
    dtypes: [...new Set(precisions.map((q) => q.dtype))],
    precisions,
    axes: 'any',
    accumulation: { dtype: 'float64', order: 'sequential', allReduce: 'tree' },
    forwardTrain: (req) => referenceForwardTrain(p, req),
    forwardInfer: (req) => referenceForwardInfer(p, req),
    backward: (req) => referenceBackward(p, req),
    // synchronized ops (0.2.0): per-replica partials merged by Chan's update (./sync.ts)
    forwardTrainSync: (req) => referenceForwardTrainSync(p, req),
    backwardSync: (req) => referenceBackwardSync(p, req),
  };
}

export function referenceForwardTrain(profile: Profile, request: ForwardTrainRequest): ForwardTrainResult {
  const { layout, dtype, paramDtype } = validateRequest('forwardTrain', request);
  const req = asNumbers(request, dtype, paramDtype);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const stats = channelStats(req.x, layout);
  const y = new Float64Array(layout.numel);
  const mean = new Float64Array(layout.channels);
  const runningMean = new Float64Array(layout.channels);
  const runningVar = new Float64Array(layout.channels);
  const { keep, take } = emaWeights(profile, req.momentum);
  const factor = runningVarFactor(profile, layout.m);
  for (let c = 0; c < layout.channels; c++) {
    const hi = stats.meanHi[c]!;
    const lo = stats.meanLo[c]!;
    const v = stats.variance[c]!;
    const s = Math.sqrt(v + eps);
    const g = req.gamma[c]!;
    const b = req.beta[c]!;
    forEachRun(layout, c, (base, count) => {
      for (let i = base; i < base + count; i++) y[i] = g * ((req.x[i]! - hi - lo) / s) + b;
    });
    mean[c] = hi;
    runningMean[c] = keep * req.runningMean[c]! + (take * hi + take * lo);
    runningVar[c] = keep * req.runningVar[c]! + take * (v * factor);
  }
  return {
    y: copyRounded(dtype, y),
    mean: copyRounded(paramDtype, mean),
    variance: copyRounded(paramDtype, stats.variance),
    runningMean: copyRounded(paramDtype, runningMean),
    runningVar: copyRounded(paramDtype, runningVar),
  };
}

export function referenceForwardInfer(profile: Profile, request: ForwardInferRequest): ForwardInferResult {
  const { layout, dtype, paramDtype } = validateRequest('forwardInfer', request);
  const req = asNumbers(request, dtype, paramDtype);
  const eps = effectiveEps(profile, req.eps);
  const y = new Float64Array(layout.numel);
  for (let c = 0; c < layout.channels; c++) {
    const mu = req.runningMean[c]!;
    const s = Math.sqrt(req.runningVar[c]! + eps);
    const g = req.gamma[c]!;
    const b = req.beta[c]!;
    forEachRun(layout, c, (base, count) => {
      for (let i = base; i < base + count; i++) y[i] = g * ((req.x[i]! - mu) / s) + b;
    });
  }
  return { y: copyRounded(dtype, y) };
}

export function referenceBackward(profile: Profile, request: BackwardRequest): BackwardResult {
  const { layout, dtype, paramDtype } = validateRequest('backward', request);
  const req = asNumbers(request, dtype, paramDtype);
  if (req.training && layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const dx = new Float64Array(layout.numel);
  const dgamma = new Float64Array(layout.channels);
  const dbeta = new Float64Array(layout.channels);
  const stats = req.training ? channelStats(req.x, layout) : undefined;
  const sumDy = new CompensatedSum();
  const sumDyXhat = new CompensatedSum();
  const m = layout.m;
  for (let c = 0; c < layout.channels; c++) {
    const hi = stats ? stats.meanHi[c]! : req.runningMean![c]!;
    const lo = stats ? stats.meanLo[c]! : 0;
    const s = Math.sqrt((stats ? stats.variance[c]! : req.runningVar![c]!) + eps);
    const g = req.gamma[c]!;
    sumDy.reset();
    sumDyXhat.reset();
    forEachRun(layout, c, (base, count) => {
      for (let i = base; i < base + count; i++) {
        sumDy.add(req.dy[i]!);
        sumDyXhat.add(req.dy[i]! * ((req.x[i]! - hi - lo) / s));
      }
    });
    dbeta[c] = sumDy.value();
    dgamma[c] = sumDyXhat.value();
    if (req.training) {
      const meanDy = dbeta[c]! / m;
      const meanDyXhat = dgamma[c]! / m;
      forEachRun(layout, c, (base, count) => {
        for (let i = base; i < base + count; i++) {
          const xhat = (req.x[i]! - hi - lo) / s;
          dx[i] = (g * (req.dy[i]! - meanDy - xhat * meanDyXhat)) / s;
        }
      });
    } else {
      forEachRun(layout, c, (base, count) => {
        for (let i = base; i < base + count; i++) dx[i] = (g * req.dy[i]!) / s;
      });
    }
  }
  return { dx: copyRounded(dtype, dx), dgamma: copyRounded(paramDtype, dgamma), dbeta: copyRounded(paramDtype, dbeta) };
}
