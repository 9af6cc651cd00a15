/**
 * The WebAssembly SIMD engine: both layouts of the forwards run in the SIMD loops of
 * ./wasm-module.ts; tiny tensors (where a call into wasm costs more than it saves) and the
 * backward use the TS engine.
 *
 * Wasm cannot read a JS Float32Array in place, so data is streamed through its linear memory:
 * - training forward: a tensor of up to WHOLE_MAX_FLOATS is copied in whole; a larger one is
 *   taken a group of channels at a time (up to GROUP_FLOATS, so the group stays in cache): the
 *   group's runs gathered, reduced (float64 shifted sums, the same numerics as the TS engine),
 *   normalized in place and scattered to y, so x is read once and y written once.
 * - inference streams contiguous chunks of runs (CHUNK floats) in, normalizes, and out.
 * - the rows layout (inner < RUN_MIN: NHWC, NC, short runs) streams chunks of whole rows in:
 *   the training forward sweeps them once for per-lane float64 shifted sums (lanes of a channel
 *   are then merged exactly, as in the TS engine), then streams x again through the per-lane
 *   normalize into y; inference is the second sweep alone. x is read twice from memory and y
 *   written once, the minimum for two passes over a tensor that does not fit in cache.
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
/** Rows-path chunk (floats) per buffer; two buffers (in and out) stay in L2 together. */
const ROW_CHUNK = 32768;
/** Largest channel (in floats) gathered whole; bigger ones use the TS engine. */
const MAX_CHANNEL = 16 * 1024 * 1024;
/** Rows path: lanes (C·inner) per row it takes; wider rows (huge per-lane tables) use TS. */
const MAX_LANES = 1 << 16;
/**
 * Largest training-forward tensor (floats) of the channel-contiguous layouts copied into linear
 * memory whole (4 MiB: the copy leaves it in the outer caches for the two sweeps that follow).
 */
const WHOLE_MAX_FLOATS = 1 << 20;
/** Below this many elements the TS engine is faster than streaming through wasm. */
export const WASM_MIN_NUMEL = 2048;

const memory = Wasm ? new Wasm.Memory({ initial: 8 }) : undefined;
const simd: BnSimdExports | undefined = instantiateBnSimd(memory);
let heap = new Float32Array(memory ? memory.buffer : new ArrayBuffer(DATA));
let heap64 = new Float64Array(heap.buffer);
let out64 = new Float64Array(heap.buffer, 0, 2);

/** Whether this runtime compiled the SIMD module. */
export const wasmSimdAvailable = simd !== undefined;

function ensureBytes(need: number): void {
  if (memory && memory.buffer.byteLength < need) {
    memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    heap = new Float32Array(memory.buffer);
    heap64 = new Float64Array(memory.buffer);
    out64 = new Float64Array(memory.buffer, 0, 2);
  }
}
function ensureFloats(n: number): void {
  ensureBytes(DATA + n * 4);
}

const align16 = (n: number) => (n + 15) & ~15;

/** Memory plan of the rows path for rows of W lanes. */
function rowsPlan(W: number) {
  const blocks = (W + 3) >> 2;
  const acc = DATA;
  const tab = acc + 96 * blocks;
  const src = align16(tab + 48 * blocks);
  const chunkRows = Math.max(2, Math.floor(ROW_CHUNK / W) & ~1);
  const bufBytes = align16(chunkRows * W * 4 + 16);
  const dst = src + bufBytes;
  ensureBytes(dst + bufBytes);
  return { blocks, acc, tab, src, dst, chunkRows };
}

/** Per-lane f32 tables for rowAffine: y = (x - mh)·a + b, from per-channel (mh, a, b). */
function fillRowTables(tab: number, C: number, inner: number, blocks: number, mh: (c: number) => number, a: (c: number) => number, b: (c: number) => number): void {
  const t = tab >> 2;
  for (let c = 0; c < C; c++) {
    const vm = mh(c), va = a(c), vb = b(c);
    for (let i = 0; i < inner; i++) {
      const w = c * inner + i;
      const at = t + 12 * (w >> 2) + (w & 3);
      heap[at] = vm;
      heap[at + 4] = va;
      heap[at + 8] = vb;
    }
  }
  for (let w = C * inner; w < blocks * 4; w++) {
    const at = t + 12 * (w >> 2) + (w & 3);
    heap[at] = 0;
    heap[at + 4] = 0;
    heap[at + 8] = 0;
  }
}

/** Stream x through rowAffine into y (tables already filled). */
function rowsNormalize(x: Float32Array, y: Float32Array, outer: number, W: number, plan: ReturnType<typeof rowsPlan>): void {
  const { blocks, tab, src, dst, chunkRows } = plan;
  for (let r0 = 0; r0 < outer; r0 += chunkRows) {
    const rows = Math.min(chunkRows, outer - r0);
    const start = r0 * W, end = start + rows * W;
    heap.set(x.subarray(start, end), src >> 2);
    simd!.rowAffine(src, dst, rows, W * 4, tab, blocks);
    y.set(heap.subarray(dst >> 2, (dst >> 2) + rows * W), start);
  }
}

/**
 * Per-lane shifted sums of the rows layout over all `outer` rows of x, with the shifts K given:
 * s1[w] = Σ (x - K[w]), s2[w] = Σ (x - K[w])² (float64, one sequential accumulator per lane).
 */
function rowsLaneSums(x: Float32Array, outer: number, W: number, K: Float64Array, s1: Float64Array, s2: Float64Array): void {
  const plan = rowsPlan(W);
  const { blocks, acc, src, chunkRows } = plan;
  const a64 = acc >> 3;
  for (let w = 0; w < blocks * 4; w++) {
    const at = a64 + 12 * (w >> 2) + (w & 3);
    heap64[at] = w < W ? K[w]! : 0;
    heap64[at + 4] = 0;
    heap64[at + 8] = 0;
  }
  for (let r0 = 0; r0 < outer; r0 += chunkRows) {
    const rows = Math.min(chunkRows, outer - r0);
    const start = r0 * W;
    heap.set(x.subarray(start, start + rows * W), src >> 2);
    simd!.rowSums(src, W * 4, rows >> 1, acc, blocks);
    if (rows & 1) {
      const base = start + (rows - 1) * W;
      for (let w = 0; w < W; w++) {
        const at = a64 + 12 * (w >> 2) + (w & 3);
        const d = x[base + w]! - heap64[at]!;
        heap64[at + 4] = heap64[at + 4]! + d;
        heap64[at + 8] = heap64[at + 8]! + d * d;
      }
    }
  }
  for (let w = 0; w < W; w++) {
    const at = a64 + 12 * (w >> 2) + (w & 3);
    s1[w] = heap64[at + 4]!;
    s2[w] = heap64[at + 8]!;
  }
}

/** Rows-path training forward (inner < RUN_MIN). */
function rowsForwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void {
  const { outer, channels: C, inner } = L;
  const W = C * inner;
  const lanes = laneScratch(3 * W);
  const K = lanes.subarray(0, W), s1 = lanes.subarray(W, 2 * W), s2 = lanes.subarray(2 * W, 3 * W);
  for (let w = 0; w < W; w++) K[w] = x[w]!;
  rowsLaneSums(x, outer, W, K, s1, s2);
  ts.mergeLanes(L, K, s1, s2, stats);
  const plan = rowsPlan(W);
  const aOf = (c: number) => gamma[c]! / Math.sqrt(stats.variance[c]! + eps);
  fillRowTables(plan.tab, C, inner, plan.blocks,
    (c) => Math.fround(stats.mean[c]!),
    aOf,
    (c) => beta[c]! - (stats.mean[c]! - Math.fround(stats.mean[c]!)) * aOf(c));
  rowsNormalize(x, y, outer, W, plan);
}

/** Shifted sums of channel c's runs (gathered into linear memory): [s1, s2] in out64. */
function channelSums(x: Float32Array, L: EngineLayout, c: number, K: number): void {
  const { outer, channels: C, inner, m } = L;
  const base0 = DATA >> 2;
  for (let o = 0; o < outer; o++) {
    const src = (o * C + c) * inner;
    heap.set(x.subarray(src, src + inner), base0 + o * inner);
  }
  simd!.sums(DATA, 1, m, 0, K, 0);
}

/**
 * Whether partialSums runs this layout in wasm: the precondition of the threaded path, whose
 * parts (ranges of whole outer slices) must all take the same code.
 */
export function partialSumsSupported(L: EngineLayout): boolean {
  if (!simd) return false;
  return L.inner >= ts.RUN_MIN ? L.m <= MAX_CHANNEL : L.channels * L.inner <= MAX_LANES;
}

/**
 * Shifted sums of x (one part of a tensor: a range of whole outer slices) with the shifts given:
 * channel-contiguous layouts (inner >= RUN_MIN) per channel, K/s1/s2 of length C; the rows layout
 * per lane w = c·inner + i, length C·inner. s1 = Σ (x - K), s2 = Σ (x - K)², float64.
 * Parts with the same K merge by adding their s1 and s2 (see ./threads.ts).
 */
export function partialSums(x: Float32Array, L: EngineLayout, K: Float64Array, s1: Float64Array, s2: Float64Array): void {
  const { outer, channels: C, inner, m } = L;
  if (inner < ts.RUN_MIN) {
    rowsLaneSums(x, outer, C * inner, K, s1, s2);
    return;
  }
  ensureFloats(m);
  for (let c = 0; c < C; c++) {
    channelSums(x, L, c, K[c]!);
    s1[c] = out64[0]!;
    s2[c] = out64[1]!;
  }
}

let laneBuf = new Float64Array(0);
function laneScratch(n: number): Float64Array {
  if (laneBuf.length < n) laneBuf = new Float64Array(Math.max(n, 1024));
  return laneBuf;
}

/** Training forward (see ts.forwardTrain for the contract). */
export function forwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void {
  const { channels: C, inner, m } = L;
  if (!simd || m === 1 || x.length < WASM_MIN_NUMEL || m > MAX_CHANNEL) {
    ts.forwardTrain(x, y, L, gamma, beta, eps, stats);
    return;
  }
  if (inner < ts.RUN_MIN) {
    if (C * inner > MAX_LANES) ts.forwardTrain(x, y, L, gamma, beta, eps, stats);
    else rowsForwardTrain(x, y, L, gamma, beta, eps, stats);
    return;
  }
  // Cache-sized tensors are copied in whole, reduced and normalized where they lie (each
  // channel's runs strided), and copied out whole: two copies instead of one per run, which cost
  // more than the arithmetic at these sizes. Bigger ones go a group of channels at a time
  // (gathered, so the group stays in cache between its reduction and its normalization). The
  // one test for that, trainsByGroup, is also the pipeline's (./threads.ts): the same bits.
  if (trainsByGroup(L)) {
    const G = groupSize(L);
    for (let c0 = 0; c0 < C; c0 += G) trainGroup(x, y, L, c0, Math.min(G, C - c0), gamma, beta, eps, stats);
    return;
  }
  ensureFloats(x.length);
  heap.set(x, DATA >> 2);
  trainInHeap(L, 0, C, C, gamma, beta, eps, stats);
  y.set(heap.subarray(DATA >> 2, (DATA >> 2) + x.length));
}

/**
 * Channels [c0, c0 + g) of a tensor laid out in linear memory at DATA as `outer` rows of
 * `width` channels' runs (width = C for the whole tensor, g for a gathered group): each channel's
 * shifted sums (K = its first element), statistics, and normalization in place.
 */
function trainInHeap(L: EngineLayout, c0: number, g: number, width: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number, stats: StatsOut): void {
  const { outer, inner, m } = L;
  const stride = width * inner * 4;
  for (let k = 0; k < g; k++) {
    const at = DATA + k * inner * 4;
    const c = c0 + k;
    const K = heap[at >> 2]!;
    simd!.sums(at, outer, inner, stride, K, 0);
    const s1 = out64[0]!, s2 = out64[1]!;
    const mu = s1 / m;
    const v = (s2 - s1 * mu) / m;
    const mean = K + mu;
    const variance = v > 0 ? v : 0;
    stats.mean[c] = mean;
    stats.variance[c] = variance;
    const mh = Math.fround(mean);
    simd!.affine(at, outer, inner, stride, mh, mean - mh, gamma[c]! / Math.sqrt(variance + eps), beta[c]!);
  }
}

/**
 * Channels a group holds: groups of up to GROUP_FLOATS floats (1 MiB), so a gathered group stays
 * in cache for its two sweeps, and the runs copied are g channels long. One channel's runs at a
 * time (g = 1) made 32 copies of 12.5 KB per channel of NCHW [32,64,56,56]; copying that whole
 * tensor in and out group by group took 4.5 ms at g = 1, 3.6 ms at g = 2 (its group here),
 * 3.4 ms at g = 4 and 3.2 ms at g = 8 (side by side in one process), and the training forward
 * on one thread went from 8.3 ms to 7.4 ms.
 */
const GROUP_FLOATS = 1 << 18;
export function groupSize(L: EngineLayout): number {
  return Math.max(1, Math.min(L.channels, Math.floor(GROUP_FLOATS / L.m)));
}

/** Copy channels [c0, c0 + g) of x into `dst` from float offset `at`: outer rows of g runs. */
export function gatherGroup(x: Float32Array, L: EngineLayout, c0: number, g: number, dst: Float32Array, at: number): void {
  const { outer, channels: C, inner } = L;
  const w = g * inner;
  for (let o = 0; o < outer; o++) {
    const s = (o * C + c0) * inner;
    dst.set(x.subarray(s, s + w), at + o * w);
  }
}

/** The inverse of gatherGroup: the group's rows from `src` (from float offset `at`) into y. */
export function scatterGroup(src: Float32Array, at: number, L: EngineLayout, c0: number, g: number, y: Float32Array): void {
  const { outer, channels: C, inner } = L;
  const w = g * inner;
  for (let o = 0; o < outer; o++) y.set(src.subarray(at + o * w, at + (o + 1) * w), (o * C + c0) * inner);
}

/**
 * The training forward of channels [c0, c0 + g) of a large channel-contiguous tensor: gathered
 * into linear memory, reduced and normalized there (./ts-engine.ts semantics), scattered to y.
 */
export function trainGroup(x: Float32Array, y: Float32Array, L: EngineLayout, c0: number, g: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number, stats: StatsOut): void {
  ensureFloats(g * L.m);
  gatherGroup(x, L, c0, g, heap, DATA >> 2);
  trainInHeap(L, c0, g, g, gamma, beta, eps, stats);
  scatterGroup(heap, DATA >> 2, L, c0, g, y);
}

/**
 * trainGroup on a group already gathered into `data` (as gatherGroup lays it out): the same
 * sums and normalization on the same layout in linear memory, so the result is the same bit for
 * bit; the group is normalized in place in `data`. For ./threads.ts's pipeline.
 */
export function trainGathered(data: Float32Array, L: EngineLayout, c0: number, g: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number, stats: StatsOut): void {
  ensureFloats(data.length);
  heap.set(data, DATA >> 2);
  trainInHeap(L, c0, g, g, gamma, beta, eps, stats);
  data.set(heap.subarray(DATA >> 2, (DATA >> 2) + data.length));
}

/**
 * Whether forwardTrain takes this layout a group of channels at a time (trainGroup): the
 * layouts ./threads.ts pipelines group by group over the cores, for the same bits.
 */
export function trainsByGroup(L: EngineLayout): boolean {
  return !!simd && L.m > 1 && L.inner >= ts.RUN_MIN && L.m <= MAX_CHANNEL && L.outer * L.channels * L.inner > WHOLE_MAX_FLOATS;
}

/** y = (x - center[c])·scale[c] + offset[c] (see ts.affine). */
export function affine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const { outer, channels: C, inner } = L;
  if (!simd || x.length < WASM_MIN_NUMEL) {
    ts.affine(x, y, L, center, scale, offset);
    return;
  }
  if (inner < ts.RUN_MIN) {
    const W = C * inner;
    if (W > MAX_LANES) {
      ts.affine(x, y, L, center, scale, offset);
      return;
    }
    const plan = rowsPlan(W);
    // (x - ch)·a + (offset - cl·a) with center = ch + cl, ch = fround(center): x - ch is exact
    // near the center (Sterbenz), so a large center costs no accuracy.
    fillRowTables(plan.tab, C, inner, plan.blocks,
      (c) => Math.fround(center[c]!),
      (c) => scale[c]!,
      (c) => offset[c]! - (center[c]! - Math.fround(center[c]!)) * scale[c]!);
    rowsNormalize(x, y, outer, W, plan);
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
      simd.affine(DATA + k * inner * 4, 1, inner, 0, mh, center[c]! - mh, scale[c]!, offset[c]!);
    }
    y.set(heap.subarray(base0, base0 + count * inner), start);
  }
}
