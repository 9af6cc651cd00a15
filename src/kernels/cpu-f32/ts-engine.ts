/**
 * The readable TypeScript engine of the float32 CPU kernel.
 *
 * Numerics (the same in every layout):
 * - Statistics are a shifted single pass in float64: per channel, d = x - K with K one of the
 *   channel's own values, s1 = Σd, s2 = Σd², mean = K + s1/m, var = (s2 - s1·(s1/m))/m.
 *   Why this keeps two-pass accuracy: for float32 inputs d is exact in float64, and since K is a
 *   sample of the channel, (K - mean)² <= m·var, so the cancellation in s2 - s1²/m amplifies the
 *   float64 rounding by at most ~m; m·2⁻⁵³ stays far below float32's 2⁻²⁴ for any m < 2²⁹.
 *   The one-pass E[x²] - E[x]² (shift 0) is exactly what this avoids.
 * - Sums are sequential per accumulator in float64 (JS numbers); unrolled loops split a channel's
 *   sum over 2-4 interleaved accumulators, which only shortens the chains.
 * - Outputs are computed in float64 and rounded once to float32 on store.
 *
 * Layouts (see src/contract/layout.ts: element (o, c, i) at (o*C + c)*inner + i):
 * - runs:  inner >= RUN_MIN (NCHW, NCL...): channel c is `outer` contiguous runs of `inner` values.
 *          Each channel is reduced and then normalized at once, while its runs are still in cache.
 * - rows:  inner < RUN_MIN (NHWC, NC, and short runs): the data is `outer` rows of W = C·inner
 *          "lanes"; every lane gets float64 accumulators that sweep down the rows, then the
 *          `inner` lanes of a channel are merged with the exact pairwise-merge (Chan) formula.
 *
 * Scratch is module-level and grown on demand, so a call allocates nothing but its outputs.
 */

/** Shortest contiguous run for which the per-channel "runs" path beats the lane path. */
export const RUN_MIN = 16;

/** Shape of the data as the engine sees it. */
export interface EngineLayout {
  outer: number;
  channels: number;
  inner: number;
  m: number;
}

/** Per-channel results written by the engine (length >= C). */
export interface StatsOut {
  mean: Float64Array;
  variance: Float64Array;
}

let scratch = new Float64Array(0);
/** Module-level float64 scratch of at least n values (contents unspecified). */
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2, 1024));
  return scratch;
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** Shifted sums of one channel's contiguous runs; returns [s1, s2] through `out`. */
function runSums(x: Float32Array, L: EngineLayout, c: number, K: number, out: Float64Array): void {
  const { outer, channels: C, inner } = L;
  let s1a = 0, s1b = 0, s1c = 0, s1d = 0;
  let s2a = 0, s2b = 0, s2c = 0, s2d = 0;
  const inner4 = inner & ~3;
  for (let o = 0; o < outer; o++) {
    const base = (o * C + c) * inner;
    const end4 = base + inner4;
    const end = base + inner;
    let i = base;
    for (; i < end4; i += 4) {
      const d0 = x[i]! - K, d1 = x[i + 1]! - K, d2 = x[i + 2]! - K, d3 = x[i + 3]! - K;
      s1a += d0; s1b += d1; s1c += d2; s1d += d3;
      s2a += d0 * d0; s2b += d1 * d1; s2c += d2 * d2; s2d += d3 * d3;
    }
    for (; i < end; i++) {
      const d = x[i]! - K;
      s1a += d;
      s2a += d * d;
    }
  }
  out[0] = s1a + s1b + (s1c + s1d);
  out[1] = s2a + s2b + (s2c + s2d);
}

/** mean and biased variance from shifted sums; clamps the (rounding-only) negative case to 0. */
export function finishStats(K: number, s1: number, s2: number, m: number, stats: StatsOut, c: number): void {
  const mu = s1 / m;
  const v = (s2 - s1 * mu) / m;
  stats.mean[c] = K + mu;
  stats.variance[c] = v > 0 ? v : 0;
}

/**
 * Lane sums for the rows path: for each lane w in [0, W), s1[w] = Σ_r (x[r·W+w] - K[w]) and
 * s2[w] = Σ (…)², with K[w] = x[w] (row 0). Two rows per sweep halve the accumulator traffic.
 */
function laneSums(x: Float32Array, rows: number, W: number, K: Float64Array, s1: Float64Array, s2: Float64Array, off: number): void {
  for (let w = 0; w < W; w++) {
    K[off + w] = x[w]!;
    s1[off + w] = 0;
    s2[off + w] = 0;
  }
  let r = 0;
  for (; r + 1 < rows; r += 2) {
    const b0 = r * W;
    const b1 = b0 + W;
    for (let w = 0; w < W; w++) {
      const k = K[off + w]!;
      const d0 = x[b0 + w]! - k;
      const d1 = x[b1 + w]! - k;
      s1[off + w] = s1[off + w]! + (d0 + d1);
      s2[off + w] = s2[off + w]! + (d0 * d0 + d1 * d1);
    }
  }
  if (r < rows) {
    const b0 = r * W;
    for (let w = 0; w < W; w++) {
      const d0 = x[b0 + w]! - K[off + w]!;
      s1[off + w] = s1[off + w]! + d0;
      s2[off + w] = s2[off + w]! + d0 * d0;
    }
  }
}

/**
 * Merge the `inner` lanes of each channel (each lane: `rows` values with shifted sums) into the
 * channel's mean and biased variance (Chan et al.: M2 = Σ M2_lane + rows·Σ (mean_lane - mean)²).
 */
export function mergeLanes(L: EngineLayout, K: Float64Array, s1: Float64Array, s2: Float64Array, stats: StatsOut): void {
  const { outer: rows, channels: C, inner } = L;
  for (let c = 0; c < C; c++) {
    const lane0 = c * inner;
    if (inner === 1) {
      finishStats(K[lane0]!, s1[lane0]!, s2[lane0]!, rows, stats, c);
      continue;
    }
    let meanSum = 0;
    let m2 = 0;
    for (let i = 0; i < inner; i++) {
      const w = lane0 + i;
      const mu = s1[w]! / rows;
      meanSum += K[w]! + mu;
      m2 += s2[w]! - s1[w]! * mu;
    }
    const mean = meanSum / inner;
    for (let i = 0; i < inner; i++) {
      const w = lane0 + i;
      const dm = K[w]! + s1[w]! / rows - mean;
      m2 += rows * dm * dm;
    }
    stats.mean[c] = mean;
    const v = m2 / (rows * inner);
    stats.variance[c] = v > 0 ? v : 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise passes

/** y = x·a + b over [start, end). */
function affineRun(x: Float32Array, y: Float32Array, start: number, end: number, a: number, b: number): void {
  const end4 = start + ((end - start) & ~3);
  let i = start;
  for (; i < end4; i += 4) {
    y[i] = x[i]! * a + b;
    y[i + 1] = x[i + 1]! * a + b;
    y[i + 2] = x[i + 2]! * a + b;
    y[i + 3] = x[i + 3]! * a + b;
  }
  for (; i < end; i++) y[i] = x[i]! * a + b;
}

/** Per-lane y = x·a[w] + b[w] over all rows (a, b of length W in scratch at offsets). */
function affineRows(x: Float32Array, y: Float32Array, rows: number, W: number, s: Float64Array, aOff: number, bOff: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * W;
    for (let w = 0; w < W; w++) y[base + w] = x[base + w]! * s[aOff + w]! + s[bOff + w]!;
  }
}

/** Expand per-channel (a, b) to per-lane tables in scratch (lane w = c·inner + i). */
export function expandToLanes(C: number, inner: number, s: Float64Array, aOff: number, bOff: number, a: (c: number) => number, b: (c: number) => number): void {
  for (let c = 0; c < C; c++) {
    const ac = a(c), bc = b(c);
    for (let i = 0; i < inner; i++) {
      s[aOff + c * inner + i] = ac;
      s[bOff + c * inner + i] = bc;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Public engine operations. Inputs are validated float32 arrays; outputs are preallocated.

/**
 * Training forward: batch statistics into `stats`, y = gamma·(x - mean)/sqrt(var + eps) + beta.
 * `singleValue` (m = 1): y = beta exactly, variance 0 (the formula would give NaN with eps = 0).
 */
export function forwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void {
  const { outer, channels: C, inner, m } = L;
  if (m === 1) {
    for (let c = 0; c < C; c++) {
      stats.mean[c] = x[c]!;
      stats.variance[c] = 0;
      y[c] = beta[c]!;
    }
    return;
  }
  if (inner >= RUN_MIN) {
    const pair = scratchOf(2);
    for (let c = 0; c < C; c++) {
      const K = x[c * inner]!;
      runSums(x, L, c, K, pair);
      finishStats(K, pair[0]!, pair[1]!, m, stats, c);
      const a = gamma[c]! / Math.sqrt(stats.variance[c]! + eps);
      const b = beta[c]! - stats.mean[c]! * a;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        affineRun(x, y, base, base + inner, a, b);
      }
    }
    return;
  }
  const W = C * inner;
  const s = scratchOf(3 * W);
  laneSums(x, outer, W, s, s.subarray(W, 2 * W), s.subarray(2 * W, 3 * W), 0);
  mergeLanes(L, s, s.subarray(W, 2 * W), s.subarray(2 * W, 3 * W), stats);
  expandToLanes(C, inner, s, 0, W,
    (c) => gamma[c]! / Math.sqrt(stats.variance[c]! + eps),
    (c) => beta[c]! - stats.mean[c]! * (gamma[c]! / Math.sqrt(stats.variance[c]! + eps)));
  affineRows(x, y, outer, W, s, 0, W);
}

/**
 * y = (x - center[c])·scale[c] + offset[c] (inference), evaluated in float64 as
 * x·scale + (offset - center·scale): the cancellation costs 2⁻⁵³·|center·scale|, invisible in float32.
 */
export function affine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const { outer, channels: C, inner } = L;
  const shiftOf = (c: number) => offset[c]! - center[c]! * scale[c]!;
  if (inner >= RUN_MIN) {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < C; c++) {
        const base = (o * C + c) * inner;
        affineRun(x, y, base, base + inner, scale[c]!, shiftOf(c));
      }
    }
    return;
  }
  const W = C * inner;
  const s = scratchOf(2 * W);
  expandToLanes(C, inner, s, 0, W, (c) => scale[c]!, shiftOf);
  affineRows(x, y, outer, W, s, 0, W);
}

/** Per-channel sums the training backward needs, besides the statistics. */
export interface GradSums {
  /** Σ dy */
  sumDy: Float64Array;
  /** Σ dy·(x - mean) */
  sumDyCentered: Float64Array;
}

/**
 * Shifted sums the training backward needs, per channel (channel-contiguous layouts, inner >=
 * RUN_MIN) or per lane w = c·inner + i (the rows layout): s1 = Σ(x - K), s2 = Σ(x - K)²,
 * gd = Σdy, gh = Σdy·(x - K), all float64. Parts of a tensor with the same K merge by adding.
 */
export interface BackwardPartial {
  s1: Float64Array;
  s2: Float64Array;
  gd: Float64Array;
  gh: Float64Array;
}

/** The shifts backwardSums uses: per channel x at (0, c, 0), or per lane x at row 0. */
export function backwardShifts(x: Float32Array, L: EngineLayout, K: Float64Array): void {
  const { channels: C, inner } = L;
  if (inner >= RUN_MIN) for (let c = 0; c < C; c++) K[c] = x[c * inner]!;
  else for (let w = 0; w < C * inner; w++) K[w] = x[w]!;
}

/** Pass 1 over x and dy (all of a tensor, or one part: a range of whole outer slices). */
export function backwardPartialSums(x: Float32Array, dy: Float32Array, L: EngineLayout, K: Float64Array, out: BackwardPartial): void {
  const { outer, channels: C, inner } = L;
  if (inner >= RUN_MIN) {
    const inner2 = inner & ~1;
    for (let c = 0; c < C; c++) {
      const k = K[c]!;
      let s1a = 0, s1b = 0, s2a = 0, s2b = 0, ga = 0, gb = 0, ha = 0, hb = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        const end2 = base + inner2;
        let i = base;
        for (; i < end2; i += 2) {
          const d0 = x[i]! - k, d1 = x[i + 1]! - k;
          const g0 = dy[i]!, g1 = dy[i + 1]!;
          s1a += d0; s1b += d1;
          s2a += d0 * d0; s2b += d1 * d1;
          ga += g0; gb += g1;
          ha += g0 * d0; hb += g1 * d1;
        }
        if (i < base + inner) {
          const d0 = x[i]! - k, g0 = dy[i]!;
          s1a += d0; s2a += d0 * d0; ga += g0; ha += g0 * d0;
        }
      }
      out.s1[c] = s1a + s1b;
      out.s2[c] = s2a + s2b;
      out.gd[c] = ga + gb;
      out.gh[c] = ha + hb;
    }
    return;
  }
  const W = C * inner;
  const { s1, s2, gd, gh } = out;
  for (let w = 0; w < W; w++) {
    s1[w] = 0; s2[w] = 0; gd[w] = 0; gh[w] = 0;
  }
  for (let r = 0; r < outer; r++) {
    const base = r * W;
    for (let w = 0; w < W; w++) {
      const d = x[base + w]! - K[w]!;
      const gv = dy[base + w]!;
      s1[w] = s1[w]! + d;
      s2[w] = s2[w]! + d * d;
      gd[w] = gd[w]! + gv;
      gh[w] = gh[w]! + gv * d;
    }
  }
}

/**
 * From the (merged) sums to the statistics of x, Σdy and Σdy·(x - mean) per channel:
 * Σdy·(x-mean) = Σdy·(x-K) - (mean-K)·Σdy; |mean-K| <= sqrt(m)·std keeps that subtraction at
 * float64 accuracy. `L` is the whole tensor's layout.
 */
export function finishBackwardSums(L: EngineLayout, K: Float64Array, sums: BackwardPartial, stats: StatsOut, g: GradSums): void {
  const { channels: C, inner, m } = L;
  if (inner >= RUN_MIN) {
    for (let c = 0; c < C; c++) {
      finishStats(K[c]!, sums.s1[c]!, sums.s2[c]!, m, stats, c);
      const sumDy = sums.gd[c]!;
      g.sumDy[c] = sumDy;
      g.sumDyCentered[c] = sums.gh[c]! - (stats.mean[c]! - K[c]!) * sumDy;
    }
    return;
  }
  mergeLanes(L, K, sums.s1, sums.s2, stats);
  for (let c = 0; c < C; c++) {
    let sumDy = 0, centered = 0;
    const mean = stats.mean[c]!;
    for (let i = 0; i < inner; i++) {
      const w = c * inner + i;
      sumDy += sums.gd[w]!;
      centered += sums.gh[w]! - (mean - K[w]!) * sums.gd[w]!;
    }
    g.sumDy[c] = sumDy;
    g.sumDyCentered[c] = centered;
  }
}

/**
 * Training backward, pass 1: statistics of x plus Σdy and Σdy·(x - mean), fused in one sweep
 * with the same shift K (see finishBackwardSums). Pass 2 is `backwardDx`.
 */
export function backwardSums(x: Float32Array, dy: Float32Array, L: EngineLayout, stats: StatsOut, g: GradSums): void {
  const P = L.inner >= RUN_MIN ? L.channels : L.channels * L.inner;
  const s = scratchOf(5 * P);
  const K = s.subarray(0, P);
  const sums = { s1: s.subarray(P, 2 * P), s2: s.subarray(2 * P, 3 * P), gd: s.subarray(3 * P, 4 * P), gh: s.subarray(4 * P, 5 * P) };
  backwardShifts(x, L, K);
  backwardPartialSums(x, dy, L, K, sums);
  finishBackwardSums(L, K, sums, stats, g);
}

/**
 * dx = A·dy + B·(x - mean) + D per channel, with (A, B, D) precomputed in float64:
 * training:  A = gamma·invstd, B = -gamma·invstd³·Σdy(x-mean)/m, D = -gamma·invstd·Σdy/m;
 * inference: A = gamma/sqrt(runningVar + eps), B = D = 0.
 */
export function backwardDx(x: Float32Array, dy: Float32Array, dx: Float32Array, L: EngineLayout, mean: Float64Array, A: Float64Array, B: Float64Array, D: Float64Array): void {
  const { outer, channels: C, inner } = L;
  if (inner >= RUN_MIN) {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < C; c++) {
        const a = A[c]!, b = B[c]!, d = D[c]! - b * mean[c]!;
        const base = (o * C + c) * inner;
        const end = base + inner;
        // x·b + d folds the centring into the constant: in float64 the cancellation costs
        // 2⁻⁵³·|mean|/std, invisible after the float32 rounding.
        for (let i = base; i < end; i++) dx[i] = dy[i]! * a + x[i]! * b + d;
      }
    }
    return;
  }
  const W = C * inner;
  const s = scratchOf(3 * W);
  for (let c = 0; c < C; c++) {
    const a = A[c]!, b = B[c]!, d = D[c]! - b * mean[c]!;
    for (let i = 0; i < inner; i++) {
      s[c * inner + i] = a;
      s[W + c * inner + i] = b;
      s[2 * W + c * inner + i] = d;
    }
  }
  for (let r = 0; r < outer; r++) {
    const base = r * W;
    for (let w = 0; w < W; w++) dx[base + w] = dy[base + w]! * s[w]! + x[base + w]! * s[W + w]! + s[2 * W + w]!;
  }
}

/** Inference backward's reduction: Σdy and Σdy·(x - runningMean) per channel. */
export function inferGradSums(x: Float32Array, dy: Float32Array, L: EngineLayout, runningMean: Float32Array | Float64Array, g: GradSums): void {
  const { outer, channels: C, inner } = L;
  for (let c = 0; c < C; c++) {
    g.sumDy[c] = 0;
    g.sumDyCentered[c] = 0;
  }
  if (inner >= RUN_MIN) {
    for (let c = 0; c < C; c++) {
      const mu = runningMean[c]!;
      let ga = 0, gb = 0, ha = 0, hb = 0;
      const inner2 = inner & ~1;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        const end2 = base + inner2;
        let i = base;
        for (; i < end2; i += 2) {
          const g0 = dy[i]!, g1 = dy[i + 1]!;
          ga += g0; gb += g1;
          ha += g0 * (x[i]! - mu); hb += g1 * (x[i + 1]! - mu);
        }
        if (i < base + inner) {
          ga += dy[i]!;
          ha += dy[i]! * (x[i]! - mu);
        }
      }
      g.sumDy[c] = ga + gb;
      g.sumDyCentered[c] = ha + hb;
    }
    return;
  }
  for (let r = 0; r < outer; r++) {
    for (let c = 0; c < C; c++) {
      const mu = runningMean[c]!;
      const base = (r * C + c) * inner;
      let gs = 0, hs = 0;
      for (let i = 0; i < inner; i++) {
        const gv = dy[base + i]!;
        gs += gv;
        hs += gv * (x[base + i]! - mu);
      }
      g.sumDy[c] = g.sumDy[c]! + gs;
      g.sumDyCentered[c] = g.sumDyCentered[c]! + hs;
    }
  }
}
