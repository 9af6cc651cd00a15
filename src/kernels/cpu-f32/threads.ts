/**
 * Every core for large tensors: the forwards split over the worker pool (../workers/pool.ts).
 *
 * A tensor is cut into parts of whole outer slices (batch items for NCHW, rows for NHWC/NC), so
 * each part is one contiguous range of x and of y, in every layout. The calling thread runs part
 * 0 on the caller's own arrays; the other parts are copied into a SharedArrayBuffer (the caller's
 * x is not shared memory, so the workers cannot read it), computed there by the workers, and
 * their y copied back into a plain Float32Array, as the contract asks. Those two copies are what
 * threads cost; ./index.ts uses this path only where it measured faster (docs/bench.md).
 *
 * Training forward, two rounds:
 *   1. each part's shifted sums with the SAME shifts K (per channel, or per lane for the rows
 *      layout; K taken from the first slice), s1 = Σ (x - K), s2 = Σ (x - K)² in float64;
 *      the parts' sums are added in part order and finished exactly as one thread would
 *      (ts.finishStats per channel, ts.mergeLanes per channel's lanes);
 *   2. each part normalizes with the merged statistics (the inference affine, with center =
 *      mean, scale = gamma/sqrt(var + eps), offset = beta: the training forward's own formula).
 * Declared accumulation (index.ts): float64 sequential. Each part's sums are sequential chains
 * (4-8 interleaved, per ./bn-simd.wat) of at most m/parts terms; the merge adds `parts` of them in
 * order, so the longest addition chain is below m - 1, the depth 'sequential' declares: the
 * declaration bounds the threaded sums too (src/tolerance.ts reductionDepth).
 */
import { getPool, taskRef, type TaskContext } from '../workers/pool.js';
import type { EngineLayout, StatsOut } from './ts-engine.js';
import * as ts from './ts-engine.js';
import * as wasm from './wasm-engine.js';

const SUMS = taskRef(import.meta.url, 'sumsTask');
const AFFINE = taskRef(import.meta.url, 'affineTask');

/** What a worker needs to find its part in the shared arena. */
interface PartArgs {
  sab: SharedArrayBuffer;
  channels: number;
  inner: number;
  /** Outer-slice boundaries of the parts: part p is slices [bounds[p], bounds[p+1]). */
  bounds: number[];
  /** Float offsets in the arena of each part's x copy and y (part 0 unused: the caller's own). */
  xAt: number[];
  yAt: number[];
  /** Float64 offsets of the parameter tables (length P each) and the per-part sums (P each). */
  kAt: number;
  centerAt: number;
  scaleAt: number;
  offsetAt: number;
  s1At: number;
  s2At: number;
  /** P: channels (channel-contiguous layouts) or lanes C·inner (rows layout). */
  P: number;
}

const partLayout = (a: PartArgs, p: number): EngineLayout => {
  const outer = a.bounds[p + 1]! - a.bounds[p]!;
  return { outer, channels: a.channels, inner: a.inner, m: outer * a.inner };
};

function views(a: PartArgs, p: number, x?: Float32Array, y?: Float32Array) {
  const f64 = new Float64Array(a.sab);
  const L = partLayout(a, p);
  const n = L.outer * a.channels * a.inner;
  const f32 = new Float32Array(a.sab);
  return {
    L,
    x: x ?? f32.subarray(a.xAt[p]!, a.xAt[p]! + n),
    y: y ?? f32.subarray(a.yAt[p]!, a.yAt[p]! + n),
    K: f64.subarray(a.kAt, a.kAt + a.P),
    center: f64.subarray(a.centerAt, a.centerAt + a.channels),
    scale: f64.subarray(a.scaleAt, a.scaleAt + a.channels),
    offset: f64.subarray(a.offsetAt, a.offsetAt + a.channels),
    s1: f64.subarray(a.s1At + p * a.P, a.s1At + (p + 1) * a.P),
    s2: f64.subarray(a.s2At + p * a.P, a.s2At + (p + 1) * a.P),
  };
}

/** Worker task, round 1: this part's shifted sums into the arena. */
export function sumsTask(a: PartArgs, ctx: TaskContext): void {
  const v = views(a, ctx.index);
  wasm.partialSums(v.x, v.L, v.K, v.s1, v.s2);
}

/** Worker task: this part's y = (x - center)·scale + offset into the arena. */
export function affineTask(a: PartArgs, ctx: TaskContext): void {
  const v = views(a, ctx.index);
  wasm.affine(v.x, v.y, v.L, v.center, v.scale, v.offset);
}

// ---- the calling thread's side ----

/** Calls that ran split over the pool (for tests: proof the threaded path ran, not a fallback). */
export const counters = { threaded: 0 };

let arena: SharedArrayBuffer | undefined;
function arenaOf(bytes: number): SharedArrayBuffer {
  if (!arena || arena.byteLength < bytes) arena = new SharedArrayBuffer(Math.ceil(bytes / 65536) * 65536);
  return arena;
}

/**
 * Share of the outer slices the calling thread keeps (the rest is divided evenly among the
 * workers): the caller also copies the workers' parts in and out, so its own part is smaller.
 */
export const CALLER_SHARE = 0.4;

interface Plan {
  args: PartArgs;
  parts: number;
}

/** Lay out the arena for x split into `parts`, copying the workers' parts of x into it. */
function plan(x: Float32Array, L: EngineLayout, parts: number): Plan {
  const { outer, channels: C, inner } = L;
  const slice = C * inner;
  const bounds = [0];
  const first = Math.max(1, Math.round(outer * (parts === 1 ? 1 : CALLER_SHARE)));
  bounds.push(first);
  for (let p = 1; p < parts; p++) bounds.push(first + Math.round(((outer - first) * p) / (parts - 1)));
  const P = inner >= ts.RUN_MIN ? C : C * inner;
  const xAt = [0], yAt = [0];
  let at = 0;
  for (let p = 1; p < parts; p++) {
    const n = (bounds[p + 1]! - bounds[p]!) * slice;
    xAt.push(at);
    yAt.push(at + n);
    at += 2 * n;
  }
  const f64At = Math.ceil(at / 2);
  const kAt = f64At, centerAt = kAt + P, scaleAt = centerAt + C, offsetAt = scaleAt + C, s1At = offsetAt + C, s2At = s1At + P * parts;
  const sab = arenaOf(8 * (s2At + P * parts));
  const f32 = new Float32Array(sab);
  for (let p = 1; p < parts; p++) f32.set(x.subarray(bounds[p]! * slice, bounds[p + 1]! * slice), xAt[p]!);
  return { parts, args: { sab, channels: C, inner, bounds, xAt, yAt, kAt, centerAt, scaleAt, offsetAt, s1At, s2At, P } };
}

function copyOut(pl: Plan, y: Float32Array): void {
  const { args, parts } = pl;
  const f32 = new Float32Array(args.sab);
  const slice = args.channels * args.inner;
  for (let p = 1; p < parts; p++) {
    const n = (args.bounds[p + 1]! - args.bounds[p]!) * slice;
    y.set(f32.subarray(args.yAt[p]!, args.yAt[p]! + n), args.bounds[p]! * slice);
  }
}

/** Parts for a tensor of this many outer slices: one per core, when every part has slices. */
function partsFor(L: EngineLayout): number {
  const size = getPool().size;
  return L.outer >= 2 * size ? size : 1;
}

/** Whether the threaded forwards can take this layout (before the pool is asked). */
export function threadable(L: EngineLayout): boolean {
  return L.m > 1 && partsFor(L) > 1 && wasm.partialSumsSupported(L);
}

/** Start the pool's workers (with this module loaded) without waiting for them. */
function warm(): void {
  getPool().warmInBackground(getPool().size - 1, [import.meta.url]);
}

/**
 * y = (x - center[c])·scale[c] + offset[c] over the parts. Returns false, having done nothing,
 * when the pool has no idle warm workers (it is then warmed for the next call).
 */
export function affine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): boolean {
  const pool = getPool();
  const parts = partsFor(L);
  if (pool.idleReady < parts - 1) {
    warm();
    return false;
  }
  const pl = plan(x, L, parts);
  const v0 = views(pl.args, 0, x.subarray(0, pl.args.bounds[1]! * L.channels * L.inner), y);
  v0.center.set(center.subarray(0, L.channels));
  v0.scale.set(scale.subarray(0, L.channels));
  v0.offset.set(offset.subarray(0, L.channels));
  const ran = pool.splitSync(AFFINE, pl.args, parts, () => wasm.affine(v0.x, y.subarray(0, v0.x.length), v0.L, center, scale, offset));
  if (!ran) return false;
  copyOut(pl, y);
  counters.threaded++;
  return true;
}

/** Training forward over the parts (see the header); false when the pool was not ready. */
export function forwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): boolean {
  const pool = getPool();
  const parts = partsFor(L);
  if (pool.idleReady < parts - 1) {
    warm();
    return false;
  }
  const { channels: C, inner } = L;
  const pl = plan(x, L, parts);
  const a = pl.args;
  const v0 = views(a, 0, x.subarray(0, a.bounds[1]! * C * inner), y);
  const rows = inner < ts.RUN_MIN;
  for (let k = 0; k < a.P; k++) v0.K[k] = rows ? x[k]! : x[k * inner]!;
  if (!pool.splitSync(SUMS, a, parts, () => wasm.partialSums(v0.x, v0.L, v0.K, v0.s1, v0.s2))) return false;
  // merge the parts' sums in part order
  const f64 = new Float64Array(a.sab);
  const s1 = new Float64Array(a.P), s2 = new Float64Array(a.P);
  for (let p = 0; p < parts; p++) {
    for (let k = 0; k < a.P; k++) {
      s1[k] = s1[k]! + f64[a.s1At + p * a.P + k]!;
      s2[k] = s2[k]! + f64[a.s2At + p * a.P + k]!;
    }
  }
  if (rows) ts.mergeLanes(L, v0.K, s1, s2, stats);
  else for (let c = 0; c < C; c++) ts.finishStats(v0.K[c]!, s1[c]!, s2[c]!, L.m, stats, c);
  for (let c = 0; c < C; c++) {
    v0.center[c] = stats.mean[c]!;
    v0.scale[c] = gamma[c]! / Math.sqrt(stats.variance[c]! + eps);
    v0.offset[c] = beta[c]!;
  }
  const ran = pool.splitSync(AFFINE, a, parts, () => wasm.affine(v0.x, y.subarray(0, v0.x.length), v0.L, v0.center, v0.scale, v0.offset));
  // a worker taken between the rounds (by another user of the pool): normalize here instead
  if (ran) copyOut(pl, y);
  else wasm.affine(x, y, L, v0.center, v0.scale, v0.offset);
  counters.threaded++;
  return true;
}
