/**
 * The WebAssembly SIMD engine: the channel-contiguous ("runs", inner >= RUN_MIN, e.g. NCHW)
 * layouts go through the SIMD loops of ./wasm-module.ts; everything else uses the TS engine.
 *
 * Wasm cannot read a JS Float32Array in place, so data is streamed through its linear memory:
 * - training forward gathers one channel's runs (m floats, cache-sized for typical shapes),
 *   reduces them (float64 shifted sums, the same numerics as the TS engine), normalizes them in
 *   place and scatters them to y: x is read once and y written once.
 * - inference streams contiguous chunks of runs (CHUNK floats) in, normalizes, and out.
 * Normalization is float32: y = ((x - mh) - ml)·a + b with the mean as a float32 pair (mh, ml),
 * so the rounding of the mean costs nothing even at |mean|/std = 1e6.
 */
import * as ts from './ts-engine.js';
import type { EngineLayout, StatsOut } from './ts-engine.js';
import { instantiateBnSimd, Wasm, type BnSimdExports } from './wasm-module.js';

const PAGE = 65536;
/** Bytes 0..15: the `out` slot of sums; data starts at DATA. */
const DATA = 64;
/** Streaming chunk for inference, in floats (256 KiB: stays in L2 between copy-in and copy-out). */
const CHUNK = 65536;
/** Largest channel (in floats) gathered whole; bigger ones use the TS engine. */
const MAX_CHANNEL = 16 * 1024 * 1024;

const memory = Wasm ? new Wasm.Memory({ initial: 8 }) : undefined;
const simd: BnSimdExports | undefined = instantiateBnSimd(memory);
let heap = new Float32Array(memory ? memory.buffer : new ArrayBuffer(DATA));
let out64 = new Float64Array(heap.buffer, 0, 2);

/** Whether this runtime compiled the SIMD module. */
export const wasmSimdAvailable = simd !== undefined;

function ensureFloats(n: number): void {
  const need = DATA + n * 4;
  if (memory && memory.buffer.byteLength < need) {
    memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    heap = new Float32Array(memory.buffer);
    out64 = new Float64Array(memory.buffer, 0, 2);
  }
}

/** Training forward (see ts.forwardTrain for the contract). */
export function forwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void {
  const { outer, channels: C, inner, m } = L;
  if (!simd || m === 1 || inner < ts.RUN_MIN || m > MAX_CHANNEL) {
    ts.forwardTrain(x, y, L, gamma, beta, eps, stats);
    return;
  }
  ensureFloats(m);
  const base0 = DATA >> 2;
  for (let c = 0; c < C; c++) {
    for (let o = 0; o < outer; o++) {
      const src = (o * C + c) * inner;
      heap.set(x.subarray(src, src + inner), base0 + o * inner);
    }
    const K = x[c * inner]!;
    simd.sums(DATA, m, K, 0);
    const s1 = out64[0]!, s2 = out64[1]!;
    const mu = s1 / m;
    const v = (s2 - s1 * mu) / m;
    const mean = K + mu;
    const variance = v > 0 ? v : 0;
    stats.mean[c] = mean;
    stats.variance[c] = variance;
    const mh = Math.fround(mean);
    simd.affine(DATA, m, mh, mean - mh, gamma[c]! / Math.sqrt(variance + eps), beta[c]!);
    for (let o = 0; o < outer; o++) {
      const dst = (o * C + c) * inner;
      y.set(heap.subarray(base0 + o * inner, base0 + (o + 1) * inner), dst);
    }
  }
}

/** y = (x - center[c])·scale[c] + offset[c] (see ts.affine). */
export function affine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const { outer, channels: C, inner } = L;
  if (!simd || inner < ts.RUN_MIN) {
    ts.affine(x, y, L, center, scale, offset);
    return;
  }
  const runsPerChunk = Math.max(1, Math.floor(CHUNK / inner));
  ensureFloats(runsPerChunk * inner);
  const base0 = DATA >> 2;
  const runs = outer * C;
  for (let r0 = 0; r0 < runs; r0 += runsPerChunk) {
    const count = Math.min(runsPerChunk, runs - r0);
    const start = r0 * inner, end = start + count * inner;
    heap.set(x.subarray(start, end), base0);
    for (let k = 0; k < count; k++) {
      const c = (r0 + k) % C;
      const mh = Math.fround(center[c]!);
      simd.affine(DATA + k * inner * 4, inner, mh, center[c]! - mh, scale[c]!, offset[c]!);
    }
    y.set(heap.subarray(base0, base0 + count * inner), start);
  }
}
