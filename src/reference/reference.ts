/**
 * The high-precision reference: Batch Normalization in float64 with compensated sums and the
 * two-pass variance, implementing the contract for any rank, channel axis and profile.
 *
 * BN is the batch grouping (src/contract/grouping.ts): its statistics, normalization and
 * gradients are the grouping's, written once in ./grouped.ts (the accuracy design is there,
 * proved against the BigNumber oracle in spec/reference/oracle.spec.ts); only the running
 * statistics are BN's own.
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
import { batchGroupingOf } from '../contract/grouping.js';
import { backwardGroups, groupScales, groupStats, normalizeGroups, type GroupStats } from './grouped.js';
import { effectiveEps, emaWeights, resolveProfile, runningVarFactor } from '../contract/profiles.js';
import { referenceBackwardSync, referenceForwardTrainSync } from './sync.js';
import { referenceFamily } from './family.js';
import { FAMILY_OPS, type NormalizationFamilyOps } from '../contract/contract.js';

/** Per-channel batch statistics, in float64 with the mean as a double-double (./grouped.ts). */
export type ChannelStats = GroupStats;

/** Batch mean (double-double) and biased two-pass variance of every channel: the BN grouping's groupStats. */
export function channelStats(x: ArrayLike<number>, layout: Layout): ChannelStats {
  return groupStats(x, batchGroupingOf(layout));
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

/** Every family op, each the one referenceFamily over its grouping. */
function familyOps(p: Profile): NormalizationFamilyOps {
  return Object.fromEntries(FAMILY_OPS.map((op) => [op, (req: never) => referenceFamily(p, op, req)])) as NormalizationFamilyOps;
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
    // the normalization family (0.3.0): every op over its grouping (./family.ts)
    ...familyOps(p),
  };
}

export function referenceForwardTrain(profile: Profile, request: ForwardTrainRequest): ForwardTrainResult {
  const { layout, dtype, paramDtype } = validateRequest('forwardTrain', request);
  const req = asNumbers(request, dtype, paramDtype);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const G = batchGroupingOf(layout);
  const stats = groupStats(req.x, G);
  const y = normalizeGroups(req.x, G, stats, groupScales(stats, eps), req.gamma, req.beta);
  const mean = new Float64Array(layout.channels);
  const runningMean = new Float64Array(layout.channels);
  const runningVar = new Float64Array(layout.channels);
  const { keep, take } = emaWeights(profile, req.momentum);
  const factor = runningVarFactor(profile, layout.m);
  for (let c = 0; c < layout.channels; c++) {
    const hi = stats.meanHi[c]!;
    const lo = stats.meanLo[c]!;
    mean[c] = hi;
    runningMean[c] = keep * req.runningMean[c]! + (take * hi + take * lo);
    runningVar[c] = keep * req.runningVar[c]! + take * (stats.variance[c]! * factor);
  }
  return {
    y: copyRounded(dtype, y),
    mean: copyRounded(paramDtype, mean),
    variance: copyRounded(paramDtype, stats.variance),
    runningMean: copyRounded(paramDtype, runningMean),
    runningVar: copyRounded(paramDtype, runningVar),
  };
}

/** The running statistics as given statistics (inference): mean exact (meanLo = 0). */
function givenStats(runningMean: ArrayLike<number>, runningVar: ArrayLike<number>): GroupStats {
  return { meanHi: Float64Array.from(runningMean), meanLo: new Float64Array(runningMean.length), variance: Float64Array.from(runningVar) };
}

export function referenceForwardInfer(profile: Profile, request: ForwardInferRequest): ForwardInferResult {
  const { layout, dtype, paramDtype } = validateRequest('forwardInfer', request);
  const req = asNumbers(request, dtype, paramDtype);
  const eps = effectiveEps(profile, req.eps);
  const G = batchGroupingOf(layout);
  const stats = givenStats(req.runningMean, req.runningVar);
  return { y: copyRounded(dtype, normalizeGroups(req.x, G, stats, groupScales(stats, eps), req.gamma, req.beta)) };
}

export function referenceBackward(profile: Profile, request: BackwardRequest): BackwardResult {
  const { layout, dtype, paramDtype } = validateRequest('backward', request);
  const req = asNumbers(request, dtype, paramDtype);
  if (req.training && layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const G = batchGroupingOf(layout);
  const stats = req.training ? groupStats(req.x, G) : givenStats(req.runningMean!, req.runningVar!);
  const { dx, dgamma, dbeta } = backwardGroups(req.x, req.dy, G, stats, groupScales(stats, eps), req.gamma, { training: req.training, centred: true });
  return { dx: copyRounded(dtype, dx), dgamma: copyRounded(paramDtype, dgamma), dbeta: copyRounded(paramDtype, dbeta) };
}
