/**
 * The small-tensor fast path (numel <= TINY_NUMEL): plain loops in index order over the
 * (o, c, i) view, with per-channel values in one module-level float64 scratch addressed by
 * offset. No lane tables, no subarray views, no closures: for a few hundred elements the fixed
 * cost of those (each typed-array view is an allocation) was most of a call.
 *
 * Numerics: textbook two-pass statistics, sequential float64 sums per channel (mean first, then
 * Σ(x - mean)²), outputs computed in float64 and rounded once: within the declared
 * { dtype: 'float64', order: 'sequential' } accumulation.
 */
import type { EngineLayout, GradSums, StatsOut } from './ts-engine.js';

export const TINY_NUMEL = 1024;

let s = new Float64Array(256);
function scratch(n: number): Float64Array {
  if (s.length < n) s = new Float64Array(Math.max(n, 2 * s.length));
  return s;
}

/** Per-channel means (sequential float64 sums), the first of two passes; variances zeroed for the second. */
function tinyMeans(x: Float32Array, L: EngineLayout, stats: StatsOut): void {
  const { outer, channels: C, inner, m } = L;
  const mean = stats.mean;
  for (let c = 0; c < C; c++) { mean[c] = 0; stats.variance[c] = 0; }
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) mean[c] = mean[c]! + x[k++]!;
  for (let c = 0; c < C; c++) mean[c] = mean[c]! / m;
}

/** mean → stats.mean, biased variance → stats.variance (two passes, sequential float64). */
export function tinyStats(x: Float32Array, L: EngineLayout, stats: StatsOut): void {
  const { outer, channels: C, inner, m } = L;
  const mean = stats.mean, vr = stats.variance;
  tinyMeans(x, L, stats);
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
    const mu = mean[c]!;
    let q = vr[c]!;
    for (let i = 0; i < inner; i++) { const d = x[k++]! - mu; q += d * d; }
    vr[c] = q;
  }
  for (let c = 0; c < C; c++) vr[c] = vr[c]! / m;
}

/** y = (x - center[c])·scale[c] + offset[c], in float64, for per-channel values at offsets of t. */
function normalize(x: Float32Array, y: Float32Array, L: EngineLayout, t: Float64Array, cOff: number, aOff: number, bOff: number): void {
  const { outer, channels: C, inner } = L;
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
    const mu = t[cOff + c]!, a = t[aOff + c]!, b = t[bOff + c]!;
    for (let i = 0; i < inner; i++, k++) y[k] = (x[k]! - mu) * a + b;
  }
}

/** Training forward for m > 1 (m = 1 keeps the engines' exact y = beta rule). */
export function tinyForwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void {
  const C = L.channels;
  tinyStats(x, L, stats);
  const t = scratch(3 * C);
  for (let c = 0; c < C; c++) {
    t[c] = stats.mean[c]!;
    t[C + c] = gamma[c]! / Math.sqrt(stats.variance[c]! + eps);
    t[2 * C + c] = beta[c]!;
  }
  normalize(x, y, L, t, 0, C, 2 * C);
}

/** Inference forward: y = (x - center)·scale + offset with per-channel float64 tables. */
export function tinyAffine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const C = L.channels;
  const t = scratch(3 * C);
  for (let c = 0; c < C; c++) {
    t[c] = center[c]!;
    t[C + c] = scale[c]!;
    t[2 * C + c] = offset[c]!;
  }
  normalize(x, y, L, t, 0, C, 2 * C);
}

/** Σdy and Σdy·(x - mean[c]) per channel, sequential float64. */
export function tinyGradSums(x: Float32Array, dy: Float32Array, L: EngineLayout, mean: ArrayLike<number>, g: GradSums): void {
  const { outer, channels: C, inner } = L;
  for (let c = 0; c < C; c++) { g.sumDy[c] = 0; g.sumDyCentered[c] = 0; }
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
    const mu = mean[c]!;
    let a = g.sumDy[c]!, b = g.sumDyCentered[c]!;
    for (let i = 0; i < inner; i++, k++) { const d = dy[k]!; a += d; b += d * (x[k]! - mu); }
    g.sumDy[c] = a;
    g.sumDyCentered[c] = b;
  }
}

/**
 * Training backward's statistics and sums in two passes, not three: the mean first, then
 * Σ(x - mean)², Σdy and Σdy·(x - mean) together (each the same sequential float64 chain as
 * tinyStats and tinyGradSums compute apart, so the results are bit for bit theirs).
 */
export function tinyBackwardSums(x: Float32Array, dy: Float32Array, L: EngineLayout, stats: StatsOut, g: GradSums): void {
  const { outer, channels: C, inner, m } = L;
  const mean = stats.mean, vr = stats.variance;
  tinyMeans(x, L, stats);
  for (let c = 0; c < C; c++) { g.sumDy[c] = 0; g.sumDyCentered[c] = 0; }
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
    const mu = mean[c]!;
    let q = vr[c]!, a = g.sumDy[c]!, b = g.sumDyCentered[c]!;
    for (let i = 0; i < inner; i++, k++) { const d = x[k]! - mu; const e = dy[k]!; q += d * d; a += e; b += e * d; }
    vr[c] = q;
    g.sumDy[c] = a;
    g.sumDyCentered[c] = b;
  }
  for (let c = 0; c < C; c++) vr[c] = vr[c]! / m;
}

/** dx = A·dy + B·(x - mean) + D per channel, in float64. */
export function tinyDx(x: Float32Array, dy: Float32Array, dx: Float32Array, L: EngineLayout, mean: Float64Array, A: Float64Array, B: Float64Array, D: Float64Array): void {
  const { outer, channels: C, inner } = L;
  let k = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
    const mu = mean[c]!, a = A[c]!, b = B[c]!, d = D[c]!;
    for (let i = 0; i < inner; i++, k++) dx[k] = dy[k]! * a + (x[k]! - mu) * b + d;
  }
}
