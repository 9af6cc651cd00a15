/**
 * The reference for synchronized (cross-replica) BatchNorm, two ways:
 *
 * - exact: the statistics of the concatenated global batch, by the proven channelStats
 *   (double-double mean, compensated two-pass variance) over every shard's values at once.
 *   This is what the judge compares against (src/judge/compare.ts expectationForSync).
 * - merged: what a real implementation does, and what createReference's sync ops run: each
 *   replica reduces its own shard to (count, mean, M2) and the partials are combined by Chan,
 *   Golub & LeVeque's pairwise update (1979)
 *       n = na + nb,  delta = mean_b - mean_a,
 *       mean = mean_a + delta * nb / n,  M2 = M2_a + M2_b + delta^2 * na * nb / n,
 *   over a balanced tree of replicas, with the means as double-doubles and delta, delta * nb
 *   formed by error-free transformations. Unlike merging sums of squares (E[x^2] - E[x]^2), it
 *   never subtracts two large nearly equal numbers: delta is a difference of means, M2 a sum of
 *   non-negative terms. spec/reference/sync.spec.ts checks it against the exact statistics and
 *   the 60-digit oracle.
 */
import type {
  Arr,
  BackwardSyncRequest,
  BackwardSyncResult,
  DType,
  ForwardTrainSyncRequest,
  ForwardTrainSyncResult,
  Profile,
} from '../contract/contract.js';
import { SingleValuePerChannelError, UnsupportedDTypeError } from '../contract/errors.js';
import type { Layout } from '../contract/layout.js';
import { concatenatedRows, shardRows, validateSyncRequest, type ShardLayout, type SyncLayout } from '../contract/layout-sync.js';
import { CompensatedSum, ddDivInt, twoProd, twoSum } from '../numerics/eft.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../contract/profiles.js';
import { channelStats, type ChannelStats } from './reference.js';
import { syncGrouping } from '../contract/grouping.js';
import { groupStats } from './grouped.js';

/** One replica's (or a merged group's) statistics of one channel. */
export interface Partial {
  n: number;
  meanHi: number;
  meanLo: number;
  /** Sum of squared deviations from the mean. */
  m2: number;
}

const rowsLayout = (m: number, C: number): Layout => ({ outer: m, channels: C, inner: 1, m, numel: m * C });

/** Exact statistics of the global batch: the sync grouping (BN's, of the concatenated rows). */
export function concatenatedStats(xs: ArrayLike<number>[], layout: SyncLayout): ChannelStats {
  return groupStats(concatenatedRows(xs, layout), syncGrouping(layout));
}

/** One replica's partials, channel by channel (n = 0 for an empty shard). */
export function localPartials(x: ArrayLike<number>, L: ShardLayout): Partial[] {
  if (L.m === 0) return Array.from({ length: L.channels }, () => ({ n: 0, meanHi: 0, meanLo: 0, m2: 0 }));
  const st = channelStats(shardRows(x, L), rowsLayout(L.m, L.channels));
  return Array.from({ length: L.channels }, (_, c) => ({ n: L.m, meanHi: st.meanHi[c]!, meanLo: st.meanLo[c]!, m2: st.variance[c]! * L.m }));
}

const s2 = new Float64Array(2);
const p2 = new Float64Array(2);

/** Chan's pairwise merge, with the means as double-doubles (see the file comment). */
export function chanMerge(a: Partial, b: Partial): Partial {
  if (a.n === 0) return b;
  if (b.n === 0) return a;
  const n = a.n + b.n;
  // delta = mean_b - mean_a as a double-double
  twoSum(b.meanHi, -a.meanHi, s2);
  const dHi0 = s2[0]!;
  const dLo0 = s2[1]! + (b.meanLo - a.meanLo);
  twoSum(dHi0, dLo0, s2);
  const dHi = s2[0]!;
  const dLo = s2[1]!;
  // t = delta * nb / n
  twoProd(dHi, b.n, p2);
  ddDivInt(p2[0]!, p2[1]! + dLo * b.n, n, s2);
  const tHi = s2[0]!;
  const tLo = s2[1]!;
  twoSum(a.meanHi, tHi, s2);
  const hi0 = s2[0]!;
  const lo0 = s2[1]! + a.meanLo + tLo;
  twoSum(hi0, lo0, s2);
  // M2 = M2_a + M2_b + delta^2 * na * nb / n (na * nb < 2^53 for any batch that fits in memory)
  twoProd(dHi, dHi, p2);
  const sq = p2[0]! + (p2[1]! + 2 * dHi * dLo);
  const m2 = new CompensatedSum();
  m2.add(a.m2);
  m2.add(b.m2);
  m2.add((sq * (a.n * b.n)) / n);
  return { n, meanHi: s2[0]!, meanLo: s2[1]!, m2: m2.value() };
}

/** Merge replica partials over a balanced tree (neighbours first), as a tree all-reduce does. */
export function treeMerge(parts: Partial[]): Partial {
  let level = parts.slice();
  while (level.length > 1) {
    const next: Partial[] = [];
    for (let k = 0; k < level.length; k += 2) next.push(k + 1 < level.length ? chanMerge(level[k]!, level[k + 1]!) : level[k]!);
    level = next;
  }
  return level[0]!;
}

/** Global statistics by merging every replica's partials (the realistic path). */
export function mergedStats(xs: ArrayLike<number>[], layout: SyncLayout): ChannelStats {
  const C = layout.channels;
  const perReplica = layout.shards.map((L, r) => localPartials(xs[r]!, L));
  const meanHi = new Float64Array(C);
  const meanLo = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const g = treeMerge(perReplica.map((p) => p[c]!));
    meanHi[c] = g.meanHi;
    meanLo[c] = g.meanLo;
    variance[c] = Number.isNaN(g.m2) ? NaN : Math.max(0, g.m2 / g.n);
  }
  return { meanHi, meanLo, variance };
}

function rounded(dtype: DType, v: Float64Array): Arr {
  if (dtype === 'float32') return Float32Array.from(v);
  if (dtype === 'float64') return v;
  throw new UnsupportedDTypeError(dtype, ['float32', 'float64']);
}

/** The synchronized reference is float32 / float64 only (so is syncTolerance): half dtypes are refused by name, before any work. */
function rejectHalf(req: { dtype: DType; paramDtype: DType }): void {
  for (const d of [req.dtype, req.paramDtype]) if (d !== 'float32' && d !== 'float64') throw new UnsupportedDTypeError(d, ['float32', 'float64']);
}

function forEachChannelValue(L: ShardLayout, fn: (i: number, c: number) => void): void {
  for (let o = 0; o < L.outer; o++) for (let c = 0; c < L.channels; c++) for (let i = 0; i < L.inner; i++) fn((o * L.channels + c) * L.inner + i, c);
}

export function referenceForwardTrainSync(profile: Profile, req: ForwardTrainSyncRequest): ForwardTrainSyncResult {
  const layout = validateSyncRequest('forwardTrainSync', req);
  rejectHalf(req);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shards[0]!.shape, req.axis);
  const C = layout.channels;
  const eps = effectiveEps(profile, req.eps);
  const st = mergedStats(req.shards.map((s) => s.x), layout);
  const { keep, take } = emaWeights(profile, req.momentum);
  const factor = runningVarFactor(profile, layout.m);
  const mean = new Float64Array(C);
  const runningMean = new Float64Array(C);
  const runningVar = new Float64Array(C);
  const s = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    mean[c] = st.meanHi[c]!;
    s[c] = Math.sqrt(st.variance[c]! + eps);
    runningMean[c] = keep * req.runningMean[c]! + (take * st.meanHi[c]! + take * st.meanLo[c]!);
    runningVar[c] = keep * req.runningVar[c]! + take * (st.variance[c]! * factor);
  }
  const replicas = req.shards.map((shard, r) => {
    const L = layout.shards[r]!;
    const y = new Float64Array(L.numel);
    forEachChannelValue(L, (i, c) => {
      y[i] = req.gamma[c]! * ((shard.x[i]! - st.meanHi[c]! - st.meanLo[c]!) / s[c]!) + req.beta[c]!;
    });
    // every replica gets its own copy of the one all-reduced result
    return { y: rounded(req.dtype, y), runningMean: rounded(req.paramDtype, runningMean.slice()), runningVar: rounded(req.paramDtype, runningVar.slice()) };
  });
  return { replicas, mean: rounded(req.paramDtype, mean), variance: rounded(req.paramDtype, st.variance) };
}

export function referenceBackwardSync(profile: Profile, req: BackwardSyncRequest): BackwardSyncResult {
  const layout = validateSyncRequest('backwardSync', req);
  rejectHalf(req);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shards[0]!.shape, req.axis);
  const C = layout.channels;
  const m = layout.m;
  const eps = effectiveEps(profile, req.eps);
  const st = mergedStats(req.shards.map((s) => s.x), layout);
  const s = Float64Array.from(st.variance, (v) => Math.sqrt(v + eps));
  const xhat = (x: number, c: number) => (x - st.meanHi[c]! - st.meanLo[c]!) / s[c]!;
  // each replica's compensated partial sums, then all-reduced as double-doubles
  const sumDy = Array.from({ length: C }, () => new CompensatedSum());
  const sumDyXhat = Array.from({ length: C }, () => new CompensatedSum());
  req.shards.forEach((shard, r) => {
    const local = Array.from({ length: C }, () => [new CompensatedSum(), new CompensatedSum()] as const);
    forEachChannelValue(layout.shards[r]!, (i, c) => {
      local[c]![0].add(shard.dy[i]!);
      local[c]![1].add(shard.dy[i]! * xhat(shard.x[i]!, c));
    });
    local.forEach(([a, b], c) => {
      sumDy[c]!.add(a.sum);
      sumDy[c]!.add(a.comp);
      sumDyXhat[c]!.add(b.sum);
      sumDyXhat[c]!.add(b.comp);
    });
  });
  const dbeta = Float64Array.from(sumDy, (v) => v.value());
  const dgamma = Float64Array.from(sumDyXhat, (v) => v.value());
  const replicas = req.shards.map((shard, r) => {
    const L = layout.shards[r]!;
    const dx = new Float64Array(L.numel);
    forEachChannelValue(L, (i, c) => {
      dx[i] = (req.gamma[c]! * (shard.dy[i]! - dbeta[c]! / m - xhat(shard.x[i]!, c) * (dgamma[c]! / m))) / s[c]!;
    });
    return { dx: rounded(req.dtype, dx) };
  });
  return { replicas, dgamma: rounded(req.paramDtype, dgamma), dbeta: rounded(req.paramDtype, dbeta) };
}
