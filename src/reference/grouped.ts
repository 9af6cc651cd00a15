/**
 * The float64 reference's numerical core, written once over a grouping (src/contract/grouping.ts):
 * the group statistics, the normalization, and the training / inference gradients. BatchNorm
 * (./reference.ts, the batch grouping), synchronized BatchNorm (./sync.ts, the same grouping of
 * the concatenated rows) and the normalization family (./family.ts) all call these functions.
 *
 * Accuracy design (proved against the BigNumber oracle: spec/reference/oracle.spec.ts for BN,
 * spec/reference/family.spec.ts for the family):
 * - The group sum is carried as a double-double (Neumaier), so the mean is known as
 *   mean = meanHi + meanLo to about u^2 relative, not just rounded to float64.
 * - Deviations d = (x - meanHi) - meanLo: x - meanHi is exact when x is within a factor 2 of
 *   the mean (Sterbenz), which is exactly the ill-conditioned case |mean| >> std; so d carries
 *   about one rounding however large |mean|/std is. A plain float64 mean would put an error of
 *   u * |mean| into every d, i.e. u * |mean|/std relative: 1e8 ulp at |mean|/std = 1e8.
 * - The variance is the corrected two-pass form (Sum d^2 - (Sum d)^2 / m) / m with compensated
 *   sums; a constant group is detected exactly (min = max) and gets mean = x, variance = 0.
 * - Uncentred (RMSNorm): the "variance" is mean(x^2), each square formed exactly (TwoProduct) and
 *   summed compensated: one rounding of the sum, one of the division.
 * - Gradients: a group whose elements all read one parameter (BN, InstanceNorm) factors gamma out,
 *   dx = gamma (dy - Q - xhat P) / s with Q = mean(dy), P = mean(dy xhat), exactly BN's formula;
 *   otherwise (LayerNorm, GroupNorm) dy' = gamma dy per element, dx = (dy' - Q' - xhat P') / s,
 *   with Q' summed from the exact products (TwoProduct) so it is known to ~u |Q'| like BN's Q.
 *   The parameter gradients (dgamma = sum dy xhat, dbeta = sum dy) sum over every element that
 *   reads the parameter, across groups for LayerNorm; for BN they are the group sums themselves.
 */
import type { Grouping } from '../contract/grouping.js';
import { groupBase, paramOf } from '../contract/grouping.js';
import { CompensatedSum, ddDivInt, twoProd } from '../numerics/eft.js';

/** Per-group statistics, in float64 with the mean as a double-double. */
export interface GroupStats {
  meanHi: Float64Array;
  meanLo: Float64Array;
  /** Biased (1/m) variance; uncentred groupings: mean(x^2). */
  variance: Float64Array;
}

const pair = new Float64Array(2);

/** Mean (double-double) and biased two-pass variance of every group; uncentred: mean 0 and mean(x^2). */
export function groupStats(x: ArrayLike<number>, G: Grouping, centred = true): GroupStats {
  const n = G.groups;
  const meanHi = new Float64Array(n);
  const meanLo = new Float64Array(n);
  const variance = new Float64Array(n);
  const { runs, runStride, runLength, m } = G;
  const sum = new CompensatedSum();
  const sumD = new CompensatedSum();
  const sumD2 = new CompensatedSum();
  for (let g = 0; g < n; g++) {
    const base = groupBase(G, g);
    if (!centred) {
      sum.reset();
      for (let r = 0; r < runs; r++) {
        const start = base + r * runStride;
        for (let i = start; i < start + runLength; i++) {
          twoProd(x[i]!, x[i]!, pair);
          sum.add(pair[0]!);
          sum.add(pair[1]!);
        }
      }
      variance[g] = sum.value() / m;
      continue;
    }
    sum.reset();
    let min = Infinity;
    let max = -Infinity;
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      for (let i = start; i < start + runLength; i++) {
        const v = x[i]!;
        sum.add(v);
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    if (min === max) {
      // Constant group: the exact answer, with no rounding residue that eps = 0 would amplify.
      meanHi[g] = min;
      meanLo[g] = 0;
      variance[g] = 0;
      continue;
    }
    if (!Number.isFinite(sum.sum)) {
      meanHi[g] = sum.sum / m;
      meanLo[g] = 0;
      variance[g] = NaN;
      continue;
    }
    ddDivInt(sum.sum, sum.comp, m, pair);
    const hi = pair[0]!;
    const lo = pair[1]!;
    meanHi[g] = hi;
    meanLo[g] = lo;
    sumD.reset();
    sumD2.reset();
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      for (let i = start; i < start + runLength; i++) {
        const d = x[i]! - hi - lo;
        sumD.add(d);
        sumD2.add(d * d);
      }
    }
    const sd = sumD.value();
    variance[g] = Math.max(0, (sumD2.value() - (sd * sd) / m) / m);
  }
  return { meanHi, meanLo, variance };
}

/** s = sqrt(variance + eps) per group. */
export const groupScales = (st: GroupStats, eps: number): Float64Array => st.variance.map((v) => Math.sqrt(v + eps));

/**
 * y = gamma[p] ((x - meanHi) - meanLo) / s + beta[p] for every element (beta absent: no term),
 * with the statistics computed (training) or given (BN inference: meanLo = 0).
 */
export function normalizeGroups(
  x: ArrayLike<number>,
  G: Grouping,
  st: GroupStats,
  s: Float64Array,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number> | undefined,
): Float64Array {
  const y = new Float64Array(G.numel);
  const { runs, runStride, runLength } = G;
  for (let g = 0; g < G.groups; g++) {
    const hi = st.meanHi[g]!;
    const lo = st.meanLo[g]!;
    const sg = s[g]!;
    const base = groupBase(G, g);
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      if (G.paramConstantInGroup) {
        const p = paramOf(G, start);
        const gm = gamma[p]!;
        if (beta) {
          const b = beta[p]!;
          for (let i = start; i < start + runLength; i++) y[i] = gm * ((x[i]! - hi - lo) / sg) + b;
        } else for (let i = start; i < start + runLength; i++) y[i] = gm * ((x[i]! - hi - lo) / sg);
      } else {
        for (let i = start; i < start + runLength; i++) {
          const p = paramOf(G, i);
          y[i] = beta ? gamma[p]! * ((x[i]! - hi - lo) / sg) + beta[p]! : gamma[p]! * ((x[i]! - hi - lo) / sg);
        }
      }
    }
  }
  return y;
}

export interface GroupGradients {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * The gradients of y = gamma xhat + beta. training: through the group statistics (centred: mean
 * and variance; uncentred: mean(x^2), so no Q term); otherwise the statistics are constants
 * (BN inference): dx = gamma dy / s.
 */
export function backwardGroups(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  G: Grouping,
  st: GroupStats,
  s: Float64Array,
  gamma: ArrayLike<number>,
  opts: { training: boolean; centred: boolean },
): GroupGradients {
  const { runs, runStride, runLength, m } = G;
  const dx = new Float64Array(G.numel);
  const dgamma = new Float64Array(G.params);
  const dbeta = new Float64Array(G.params);
  // parameter sums across groups (Neumaier pairs), unless they are the group sums (BN)
  const across = !G.paramIsGroup;
  const dgComp = across ? new Float64Array(G.params) : undefined;
  const dbComp = across ? new Float64Array(G.params) : undefined;
  const sumDy = new CompensatedSum();
  const sumDyXhat = new CompensatedSum();
  const factored = G.paramConstantInGroup;
  for (let g = 0; g < G.groups; g++) {
    const hi = st.meanHi[g]!;
    const lo = st.meanLo[g]!;
    const sg = s[g]!;
    const base = groupBase(G, g);
    const gf = factored ? gamma[paramOf(G, base)]! : 1;
    sumDy.reset();
    sumDyXhat.reset();
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      for (let i = start; i < start + runLength; i++) {
        const xhat = (x[i]! - hi - lo) / sg;
        const d = dy[i]!;
        if (factored) {
          sumDy.add(d);
          sumDyXhat.add(d * xhat);
        } else {
          // dy' = gamma dy, exactly as a pair: Q' = mean(dy') keeps BN's Q accuracy
          twoProd(gamma[paramOf(G, i)]!, d, pair);
          sumDy.add(pair[0]!);
          sumDy.add(pair[1]!);
          sumDyXhat.add(pair[0]! * xhat);
        }
        if (across) {
          const p = paramOf(G, i);
          neumaier(dbeta, dbComp!, p, d);
          neumaier(dgamma, dgComp!, p, d * xhat);
        }
      }
    }
    if (!across) {
      dbeta[g] = sumDy.value();
      dgamma[g] = sumDyXhat.value();
    }
    const Q = opts.centred ? sumDy.value() / m : 0;
    const P = sumDyXhat.value() / m;
    for (let r = 0; r < runs; r++) {
      const start = base + r * runStride;
      for (let i = start; i < start + runLength; i++) {
        if (!opts.training) {
          dx[i] = ((factored ? gf : gamma[paramOf(G, i)]!) * dy[i]!) / sg;
        } else {
          const xhat = (x[i]! - hi - lo) / sg;
          dx[i] = factored ? (gf * (dy[i]! - Q - xhat * P)) / sg : (gamma[paramOf(G, i)]! * dy[i]! - Q - xhat * P) / sg;
        }
      }
    }
  }
  if (across) {
    for (let p = 0; p < G.params; p++) {
      dbeta[p] = dbeta[p]! + dbComp![p]!;
      dgamma[p] = dgamma[p]! + dgComp![p]!;
    }
  }
  return { dx, dgamma, dbeta };
}

/** One Neumaier step on (sum[k], comp[k]), the CompensatedSum update on array slots. */
function neumaier(sum: Float64Array, comp: Float64Array, k: number, v: number): void {
  const a = sum[k]!;
  const t = a + v;
  comp[k] = comp[k]! + (Math.abs(a) >= Math.abs(v) ? a - t + v : v - t + a);
  sum[k] = t;
}
