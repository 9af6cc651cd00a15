/**
 * The gpu.js kernel bodies. gpu.js parses each function's source text and translates it to GLSL
 * (or WGSL / JS for its other backends), so these bodies are written in the small subset of
 * JavaScript it understands: no closures, no local arrays, shape facts via `this.constants`
 * (baked into the shader as literals, so every loop bound is a compile-time constant).
 *
 * Layout: x is viewed as [outer, C, inner]; element (o, c, i) sits at (o*C + c)*inner + i, and
 * channel c's j-th value (j = o*inner + i, 0 <= j < m) is at that index.
 *
 * Index arithmetic: WebGL 1 has float-only shader arithmetic in practice, so every index is an
 * integer held exactly in a float32 (the caller guarantees numel < 2^24). The one division that
 * maps a flat index to (quotient, remainder) is floorDiv below: floor((a + 0.5) / b) corrected by
 * one step, so an inexact GPU division (GLSL allows 2.5 ulp) can never give an off-by-one. It is
 * passed to every kernel as a gpu.js helper function (SHADER_FUNCTIONS).
 *
 * Reduction structure (declared to the tolerance as float32, 'tiled', tile = TILE):
 *   pass 1 (partial*):  thread (t, r) sums the tile j in [t*TILE, (t+1)*TILE) of row r sequentially;
 *   pass 2..k (pairSum): a balanced binary tree over the T = ceil(m / TILE) tile sums, one level per
 *                        pass, ceil(log2 T) passes; slot 0 of the row then holds the row's total.
 *
 * Partials layout: the R rows x T tile sums are ONE flat 1-D output of R*T values, row r's tile t at
 * r*T + t (partialSlot). Not a [T, R] 2-D output: gpu.js maps a 2-D output onto a T-wide texture
 * as is, and T alone passes the GPU's MAX_TEXTURE_SIZE once m > MAX_TEXTURE_SIZE * TILE (8192 * 64
 * on SwiftShader, 16384 * 64 on headless-gl). A 1-D output is folded by gpu.js into a near-square
 * texture, like x itself, so it fits whenever numel does. The reduction tree is unchanged.
 * Variance is two-pass and shifted: mean = K + sum(x - K)/m with K the channel's first value, then
 * var = sum((x - mean)^2)/m. Never E[x^2] - E[x]^2.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
type K = any;

/** floor(a / b) for non-negative integers a, b held in floats, exact despite an inexact division. */
export function floorDiv(a: number, b: number): number {
  let q = Math.floor((a + 0.5) / b);
  const r = a - q * b;
  if (r < 0) {
    q = q - 1;
  }
  if (r >= b) {
    q = q + 1;
  }
  return q;
}

/** Helper functions every kernel may call (gpu.js's `functions` setting). */
export const SHADER_FUNCTIONS = [floorDiv];

/** Copy a host array into a GPU texture once, so later passes read it without re-uploading. */
export function copyKernel(this: K, a: K): number {
  return a[this.thread.x];
}

/** Pass 1, forward sum (flat thread r*T + t): row c = r, tile t: sum over the tile of (x - K_c), K_c = x at j = 0. */
export function partialShiftedSum(this: K, x: K): number {
  const c = floorDiv(this.thread.x, this.constants.T);
  const start = (this.thread.x - c * this.constants.T) * this.constants.tile;
  let o = floorDiv(start, this.constants.inner);
  let i = start - o * this.constants.inner;
  const shift = x[c * this.constants.inner];
  let s = 0;
  for (let k = 0; k < this.constants.tile; k++) {
    if (start + k < this.constants.m) {
      s += x[(o * this.constants.C + c) * this.constants.inner + i] - shift;
      i = i + 1;
      if (i >= this.constants.inner) {
        i = 0;
        o = o + 1;
      }
    }
  }
  return s;
}

/** Pass 1, second moment about the batch mean: sum over the tile of (x - mean_c)^2. */
export function partialSquares(this: K, x: K, mean: K): number {
  const c = floorDiv(this.thread.x, this.constants.T);
  const start = (this.thread.x - c * this.constants.T) * this.constants.tile;
  let o = floorDiv(start, this.constants.inner);
  let i = start - o * this.constants.inner;
  const mu = mean[c];
  let s = 0;
  for (let k = 0; k < this.constants.tile; k++) {
    if (start + k < this.constants.m) {
      const d = x[(o * this.constants.C + c) * this.constants.inner + i] - mu;
      s += d * d;
      i = i + 1;
      if (i >= this.constants.inner) {
        i = 0;
        o = o + 1;
      }
    }
  }
  return s;
}

/**
 * Pass 1, backward: rows 0..C-1 sum dy; rows C..2C-1 sum dy * (x - center_c), where center is the
 * batch mean (training) or the running mean (inference).
 */
export function partialGrad(this: K, x: K, dy: K, center: K): number {
  let c = floorDiv(this.thread.x, this.constants.T);
  const start = (this.thread.x - c * this.constants.T) * this.constants.tile;
  let second = 0;
  if (c >= this.constants.C) {
    c = c - this.constants.C;
    second = 1;
  }
  let o = floorDiv(start, this.constants.inner);
  let i = start - o * this.constants.inner;
  const mu = center[c];
  let s = 0;
  for (let k = 0; k < this.constants.tile; k++) {
    if (start + k < this.constants.m) {
      const idx = (o * this.constants.C + c) * this.constants.inner + i;
      if (second == 1) {
        s += dy[idx] * (x[idx] - mu);
      } else {
        s += dy[idx];
      }
      i = i + 1;
      if (i >= this.constants.inner) {
        i = 0;
        o = o + 1;
      }
    }
  }
  return s;
}

/**
 * One level of the binary tree over tile sums, in the flat layout (row r's slot t at r*T + t):
 * out[r][t] = p[r][2t] + p[r][2t+1], for the n slots still live in each row.
 */
export function pairSum(this: K, p: K, n: number): number {
  const r = floorDiv(this.thread.x, this.constants.T);
  const row = r * this.constants.T;
  const a = (this.thread.x - row) * 2;
  let s = 0;
  if (a < n) {
    s = p[row + a];
  }
  if (a + 1 < n) {
    s = s + p[row + a + 1];
  }
  return s;
}

/** mean_c = K_c + S_c / m (S from the shifted sum's tree: row c's total at slot c*T). */
export function meanKernel(this: K, x: K, S: K): number {
  const c = this.thread.x;
  return x[c * this.constants.inner] + S[c * this.constants.T] / this.constants.m;
}

/**
 * Per-channel statistics, flat like the partials (row k's channel c at k*C + c), one row each: 0 mean, 1 biased variance, 2 invstd = 1/sqrt(var + eps),
 * 3 running mean after the step, 4 running variance after the step.
 */
export function statsKernel(this: K, mean: K, Q: K, rm: K, rv: K, eps: number, keep: number, take: number): number {
  const row = floorDiv(this.thread.x, this.constants.C);
  const c = this.thread.x - row * this.constants.C;
  const mu = mean[c];
  let v = Q[c * this.constants.T] / this.constants.m;
  if (this.constants.single == 1) {
    v = 0;
  }
  if (row == 0) {
    return mu;
  }
  if (row == 1) {
    return v;
  }
  if (row == 2) {
    return 1 / Math.sqrt(v + eps);
  }
  if (row == 3) {
    return keep * rm[c] + take * mu;
  }
  return keep * rv[c] + take * (v * this.constants.varFactor);
}

/**
 * Forward training output, the only readback: [y (numel) | mean | var | runningMean | runningVar].
 */
export function trainOutput(this: K, x: K, stats: K, gamma: K, beta: K): number {
  const idx = this.thread.x;
  if (idx < this.constants.numel) {
    const q = floorDiv(idx, this.constants.inner);
    const c = q - floorDiv(q, this.constants.C) * this.constants.C;
    if (this.constants.single == 1) {
      return beta[c];
    }
    return gamma[c] * ((x[idx] - stats[c]) * stats[2 * this.constants.C + c]) + beta[c];
  }
  // tail [mean | var | runningMean | runningVar] = stats rows 0, 1, 3, 4 (row k at k*C)
  const j = idx - this.constants.numel;
  if (j < 2 * this.constants.C) {
    return stats[j];
  }
  return stats[j + this.constants.C];
}

/** Forward inference: y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta. */
export function inferOutput(this: K, x: K, gamma: K, beta: K, rm: K, rv: K, eps: number): number {
  const idx = this.thread.x;
  const q = floorDiv(idx, this.constants.inner);
  const c = q - floorDiv(q, this.constants.C) * this.constants.C;
  const invstd = 1 / Math.sqrt(rv[c] + eps);
  return gamma[c] * ((x[idx] - rm[c]) * invstd) + beta[c];
}

/**
 * Backward output, the only readback: [dx (numel) | dgamma (C) | dbeta (C)].
 * G: the tree result of partialGrad, flat (row r's total at r*T; rows 0..C-1: sum dy, rows C..2C-1:
 * sum dy*(x - center)).
 * stats rows as in statsKernel (row 0 center, row 2 invstd). training == 1: full gradient through
 * the batch statistics; else the statistics are constants.
 */
export function backwardOutput(this: K, x: K, dy: K, stats: K, G: K, gamma: K): number {
  const idx = this.thread.x;
  if (idx < this.constants.numel) {
    const q = floorDiv(idx, this.constants.inner);
    const c = q - floorDiv(q, this.constants.C) * this.constants.C;
    const invstd = stats[2 * this.constants.C + c];
    if (this.constants.training == 1) {
      const xhat = (x[idx] - stats[c]) * invstd;
      const meanDy = G[c * this.constants.T] / this.constants.m;
      const meanDyXhat = (G[(c + this.constants.C) * this.constants.T] * invstd) / this.constants.m;
      return gamma[c] * invstd * (dy[idx] - meanDy - xhat * meanDyXhat);
    }
    return dy[idx] * (gamma[c] * invstd);
  }
  const j = idx - this.constants.numel;
  if (j < this.constants.C) {
    return G[(j + this.constants.C) * this.constants.T] * stats[2 * this.constants.C + j];
  }
  return G[(j - this.constants.C) * this.constants.T];
}

/** Inference-time statistics for backward, flat as statsKernel: row 0 running mean, row 2 1/sqrt(runningVar + eps). */
export function inferStatsKernel(this: K, rm: K, rv: K, eps: number): number {
  const row = floorDiv(this.thread.x, this.constants.C);
  const c = this.thread.x - row * this.constants.C;
  if (row == 0) {
    return rm[c];
  }
  if (row == 2) {
    return 1 / Math.sqrt(rv[c] + eps);
  }
  return 0;
}
