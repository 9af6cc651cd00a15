/**
 * The float64 reference for the normalization family (LayerNorm, RMSNorm, GroupNorm,
 * InstanceNorm): one forward and one backward for every op, over the op's grouping
 * (src/contract/grouping.ts FAMILY), computed by the same grouped core as BatchNorm (./grouped.ts).
 * Inputs are read exactly (half decoded), the computation is float64 with compensated sums, and
 * every output is rounded once to its dtype (y, dx: dtype; mean, invStdDev, dgamma, dbeta:
 * paramDtype). spec/reference/family.spec.ts proves it against the 60-digit oracle.
 */
import type { Arr, DType, FamilyOp, FamilyRequest, FamilyResult, LayerNormBackwardRequest, LayerNormRequest, Profile } from '../contract/contract.js';
import { numericRequest, toTyped } from '../contract/dtypes.js';
import { SingleValuePerChannelError } from '../contract/errors.js';
import { FAMILY, validateFamilyRequest } from '../contract/grouping.js';
import { effectiveEps } from '../contract/profiles.js';
import { isHalf } from '../numerics/half.js';
import { backwardGroups, groupScales, groupStats, normalizeGroups } from './grouped.js';

const rounded = (dtype: DType, v: Float64Array): Arr => (dtype === 'float64' ? v : toTyped(dtype, v));

/** Any family op (forward or backward) on the float64 reference. */
export function referenceFamily(profile: Profile, op: FamilyOp, request: FamilyRequest): FamilyResult {
  const f = FAMILY[op];
  const { grouping: G, dtype, paramDtype } = validateFamilyRequest(op, request);
  const req = (isHalf(dtype) || isHalf(paramDtype) ? numericRequest(request) : request) as LayerNormRequest & LayerNormBackwardRequest;
  if (f.singleValueRule && G.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = effectiveEps(profile, req.eps);
  const stats = groupStats(req.x, G, f.centred);
  const s = groupScales(stats, eps);
  if (f.backward) {
    const g = backwardGroups(req.x, req.dy, G, stats, s, req.gamma, { training: true, centred: f.centred });
    return {
      dx: rounded(dtype, g.dx),
      dgamma: rounded(paramDtype, g.dgamma),
      ...(f.hasBeta ? { dbeta: rounded(paramDtype, g.dbeta) } : {}),
    } as FamilyResult;
  }
  const y = normalizeGroups(req.x, G, stats, s, req.gamma, f.hasBeta ? req.beta : undefined);
  return {
    y: rounded(dtype, y),
    ...(f.centred ? { mean: rounded(paramDtype, stats.meanHi) } : {}),
    invStdDev: rounded(paramDtype, s.map((v) => 1 / v)),
  };
}
