/**
 * createCpuF32: the optimized float32 CPU Batch Normalization kernel.
 *
 * The contract-level work (validation, profile rules, running statistics, output allocation)
 * lives here once; the per-element loops live in an engine:
 * - 'auto' (the default): per call, the fastest of the others for the shape and layout: the
 *           direct loops of ./tiny.ts for tiny tensors, WebAssembly SIMD where the runtime has
 *           it, TypeScript otherwise, and large tensors split over every core (./threads.ts)
 *           where that measures faster on this machine, now (./chooser.ts);
 * - 'ts':   readable TypeScript, float64 accumulators (./ts-engine.ts), one thread;
 * - 'wasm': WebAssembly SIMD streamed through a small linear memory (./wasm-engine.ts, source
 *           ./bn-simd.wat), one thread; it uses 'ts' where it is not faster (small shapes) and for
 *           the backward.
 * Every engine is checked by the same conformance harness (select with { engine }).
 */
import type {
  AccumulationInfo,
  BackwardRequest,
  BackwardResult,
  BatchNormImplementation,
  ForwardInferRequest,
  ForwardInferResult,
  ForwardTrainRequest,
  ForwardTrainResult,
  Profile,
  ProfileName,
} from '../../contract/contract.js';
import { BatchNormInputError, SingleValuePerChannelError, UnsupportedDTypeError } from '../../contract/errors.js';
import { validateRequest, type Layout } from '../../contract/layout.js';
import { effectiveEps, emaWeights, resolveProfile, runningVarFactor } from '../../contract/profiles.js';
import * as ts from './ts-engine.js';
import * as wasm from './wasm-engine.js';
import { backwardSyncThreads, forwardTrainSyncThreads } from './sync.js';
import * as threads from './threads.js';
import { autoLoops, backwardMayThread, family, viaChooser, type Loops, type ThreadMode } from './auto.js';
import { withHalfActivations } from './half.js';
import { TINY_NUMEL, tinyAffine, tinyBackwardSums, tinyDx, tinyForwardTrain, tinyGradSums } from './tiny.js';

export { THREAD_MIN_NUMEL, prewarmCpuF32Threads } from './auto.js';

/** Outputs below this many elements are plain zero-filled arrays (nothing to save there). */
const UNZEROED_MIN = 1 << 14;
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(bytes: number): Uint8Array } }).Buffer;

/**
 * A fresh Float32Array of n elements for an output every element of which the kernel then writes
 * (y, dx: every engine and path writes each element, and a call that fails throws the array
 * away). Large ones skip the zero-fill where the runtime can: Node's Buffer.allocUnsafeSlow gives
 * an ArrayBuffer of its own, exactly 4n bytes at offset 0, so the array is indistinguishable from
 * `new Float32Array(n)` once written. Zero-filling 25.7 MB took 2.5 ms of a 5 ms copy into a
 * fresh array (2.5 ms with the unzeroed one; scripts/bench.ts measures both): time a kernel that
 * overwrites every element does not need to spend.
 */
export function overwrittenOutput(n: number): Float32Array {
  if (n < UNZEROED_MIN || !NodeBuffer) return new Float32Array(n);
  const bytes = NodeBuffer.allocUnsafeSlow(4 * n);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}

/**
 * Caller-owned outputs: `forwardTrain(req, { y })`, `forwardInfer(req, { y })`,
 * `backward(req, { dx })` write the main output into the given Float32Array (exactly the
 * tensor's length, sharing no memory with any input) instead of allocating one, and return it.
 * For loops that call the kernel on large tensors step after step: every fresh output of
 * NCHW [32,64,56,56] is 25.7 MB the garbage collector must account for, and in a process with a
 * large JavaScript heap that meant a major collection every few calls (docs/bench-pipeline.md).
 * float32 requests only. If the call throws, the array's contents are unspecified.
 */
export interface CpuF32Outputs {
  y?: Float32Array;
  dx?: Float32Array;
}

/** What createCpuF32 returns: the contract's implementation, sync, with caller-owned outputs. */
export interface CpuF32Implementation extends BatchNormImplementation {
  forwardTrain(req: ForwardTrainRequest, into?: Pick<CpuF32Outputs, 'y'>): ForwardTrainResult;
  forwardInfer(req: ForwardInferRequest, into?: Pick<CpuF32Outputs, 'y'>): ForwardInferResult;
  backward(req: BackwardRequest, into?: Pick<CpuF32Outputs, 'dx'>): BackwardResult;
}

/** Byte range of a typed array's view, to tell whether two arrays share memory. */
function overlaps(a: ArrayBufferView, b: unknown): boolean {
  if (!ArrayBuffer.isView(b) || a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** The request's arrays an output must not share memory with. */
const INPUT_ARRAYS = ['x', 'dy', 'gamma', 'beta', 'runningMean', 'runningVar'] as const;

/**
 * The output array `name` of a call: the caller's from `into` (checked: a Float32Array of n
 * elements that shares no memory with an input, since every path reads its inputs while it
 * writes), or a fresh one.
 */
function outputArray(into: unknown, name: 'y' | 'dx', n: number, inputs: object): Float32Array {
  if (into === undefined) return overwrittenOutput(n);
  if (typeof into !== 'object' || into === null) throw new BatchNormInputError(`the second argument must be an object such as { ${name}: Float32Array }, got ${into === null ? 'null' : typeof into}`);
  for (const k in into) if (k !== name) throw new BatchNormInputError(`into.${k} is not an output of this op (it writes ${name})`);
  const given = (into as Record<string, unknown>)[name];
  if (given === undefined) return overwrittenOutput(n);
  if (!(given instanceof Float32Array)) {
    const what = given === null ? 'null' : ArrayBuffer.isView(given) ? given.constructor.name : typeof given;
    throw new BatchNormInputError(`into.${name} must be a Float32Array of ${n} elements (the tensor's), got ${what}`);
  }
  if (given.length !== n) throw new BatchNormInputError(`into.${name} must have ${n} elements (the tensor's), got ${given.length}`);
  for (const k of INPUT_ARRAYS) {
    if (overlaps(given, (inputs as Record<string, unknown>)[k])) throw new BatchNormInputError(`into.${name} shares memory with the request's ${k}: the kernel reads ${k} while it writes ${name}, so give an array of its own`);
  }
  return given;
}

export type CpuEngineName = 'auto' | 'ts' | 'wasm';
export const CPU_ENGINES: readonly CpuEngineName[] = ['auto', 'ts', 'wasm'];

export interface CpuF32Options {
  /** Loop engine; default 'auto' (see the module header). */
  engine?: CpuEngineName;
  /**
   * Adds the synchronized ops (forwardTrainSync, backwardSync): each replica on a worker thread
   * of its own, statistics all-reduced through shared memory (./sync.ts). Default false.
   */
  synchronized?: boolean;
  /**
   * 'auto' only: split large calls over the worker pool where that measures faster (true, the
   * default; ./chooser.ts), never (false), or whenever the shape allows, tiny tensors included
   * ('always': for tests and sweeps of the threaded path; slow).
   */
  threads?: ThreadMode;
}

const SUPPORTED = ['float32'] as const;

/** Sequential float64 sums (JS numbers), split over a few interleaved accumulators. */
export const TS_ACCUMULATION: AccumulationInfo = { dtype: 'float64', order: 'sequential' };

function requireFloat32(dtype: string): void {
  if (dtype !== 'float32') throw new UnsupportedDTypeError(dtype, SUPPORTED);
}

/**
 * float64 per-channel scratch for the statistics (small: length C; reused across calls). The
 * views are cached per (C, count): making typed-array views costs an allocation each, which
 * showed on tiny tensors.
 */
let channelScratch = new Float64Array(0);
const tableCache = new Map<number, { C: number; views: Float64Array[] }>();
function channelTables(C: number, count: number): Float64Array[] {
  const hit = tableCache.get(count);
  if (hit && hit.C === C && hit.views[0]!.buffer === channelScratch.buffer) return hit.views;
  if (channelScratch.length < C * 8) {
    channelScratch = new Float64Array(Math.max(C * 8, 64));
    tableCache.clear();
  }
  const out: Float64Array[] = [];
  for (let k = 0; k < count; k++) out.push(channelScratch.subarray(k * C, (k + 1) * C));
  tableCache.set(count, { C, views: out });
  return out;
}

export function createCpuF32(profile?: ProfileName | Profile, options: CpuF32Options = {}): CpuF32Implementation {
  const resolved = resolveProfile(profile);
  const engine = options.engine ?? 'auto';
  if (!CPU_ENGINES.includes(engine)) throw new TypeError(`engine must be one of ${CPU_ENGINES.map((e) => `'${e}'`).join(', ')}, got ${String(engine)}`);
  if (engine === 'wasm' && !wasm.wasmSimdAvailable) throw new TypeError(`engine 'wasm' needs WebAssembly SIMD, which this runtime lacks`);
  const useThreads = engine === 'auto' ? (options.threads ?? true) : false;
  // threads: 'always' exercises the threaded path on every shape it can split, tiny ones too
  const tinyMax = useThreads === 'always' ? -1 : TINY_NUMEL;
  const loops: Loops = engine === 'wasm' ? wasm : engine === 'ts' ? ts : autoLoops(useThreads);

  function forwardTrain(req: ForwardTrainRequest, into?: Pick<CpuF32Outputs, 'y'>): ForwardTrainResult {
    const { layout, dtype } = validateRequest('forwardTrain', req);
    requireFloat32(dtype);
    const L: Layout = layout;
    if (L.m === 1 && resolved.singleValue === 'error') throw new SingleValuePerChannelError(L.m, req.shape, req.axis);
    const x = req.x as Float32Array;
    const C = L.channels;
    const eps = effectiveEps(resolved, req.eps);
    const y = outputArray(into, 'y', L.numel, req);
    const [mean64, var64] = channelTables(C, 2) as [Float64Array, Float64Array];
    const stats = { mean: mean64, variance: var64 };
    if (L.numel <= tinyMax && L.m > 1) tinyForwardTrain(x, y, L, req.gamma as Float32Array, req.beta as Float32Array, eps, stats);
    else loops.forwardTrain(x, y, L, req.gamma as Float32Array, req.beta as Float32Array, eps, stats);

    const { keep, take } = emaWeights(resolved, req.momentum);
    const factor = runningVarFactor(resolved, L.m);
    const mean = new Float32Array(C);
    const variance = new Float32Array(C);
    const runningMean = new Float32Array(C);
    const runningVar = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      mean[c] = mean64[c]!;
      variance[c] = var64[c]!;
      runningMean[c] = keep * req.runningMean[c]! + take * mean64[c]!;
      runningVar[c] = keep * req.runningVar[c]! + take * (var64[c]! * factor);
    }
    return { y, mean, variance, runningMean, runningVar };
  }

  function forwardInfer(req: ForwardInferRequest, into?: Pick<CpuF32Outputs, 'y'>): ForwardInferResult {
    const { layout: L, dtype } = validateRequest('forwardInfer', req);
    requireFloat32(dtype);
    const eps = effectiveEps(resolved, req.eps);
    const C = L.channels;
    const [center, scale, offset] = channelTables(C, 3) as [Float64Array, Float64Array, Float64Array];
    for (let c = 0; c < C; c++) {
      center[c] = req.runningMean[c]!;
      scale[c] = req.gamma[c]! / Math.sqrt(req.runningVar[c]! + eps);
      offset[c] = req.beta[c]!;
    }
    const y = outputArray(into, 'y', L.numel, req);
    if (L.numel <= tinyMax) tinyAffine(req.x as Float32Array, y, L, center, scale, offset);
    else loops.affine(req.x as Float32Array, y, L, center, scale, offset);
    return { y };
  }

  function backward(req: BackwardRequest, into?: Pick<CpuF32Outputs, 'dx'>): BackwardResult {
    const { layout: L, dtype } = validateRequest('backward', req);
    requireFloat32(dtype);
    if (req.training && L.m === 1 && resolved.singleValue === 'error') throw new SingleValuePerChannelError(L.m, req.shape, req.axis);
    const eps = effectiveEps(resolved, req.eps);
    const C = L.channels;
    const m = L.m;
    const x = req.x as Float32Array;
    const dy = req.dy as Float32Array;
    const gamma = req.gamma;
    const [mean, variance, sumDy, sumDyCentered, A, B, D] = channelTables(C, 7) as Float64Array[] as [
      Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array,
    ];
    const dx = outputArray(into, 'dx', L.numel, req);
    const dgamma = new Float32Array(C);
    const dbeta = new Float32Array(C);
    const sums = { sumDy, sumDyCentered };
    const tiny = L.numel <= tinyMax;
    const runningMean = req.runningMean as Float32Array;
    const runningVar = req.runningVar as Float32Array;
    /** From the sums (and, training, the batch statistics) to dx's per-channel (mean, A, B, D). */
    const coefficients = () => {
      if (req.training) {
        for (let c = 0; c < C; c++) {
          const invstd = 1 / Math.sqrt(variance[c]! + eps);
          const g = gamma[c]!;
          // m = 1: x - mean = 0 exactly, so dx = g·invstd·(dy - dy) = 0, as the formula says.
          A[c] = g * invstd;
          B[c] = -g * invstd * invstd * invstd * (sumDyCentered[c]! / m);
          D[c] = -g * invstd * (sumDy[c]! / m);
          dgamma[c] = sumDyCentered[c]! * invstd;
          dbeta[c] = sumDy[c]!;
        }
      } else {
        for (let c = 0; c < C; c++) {
          const rstd = 1 / Math.sqrt(runningVar[c]! + eps);
          A[c] = gamma[c]! * rstd;
          B[c] = 0;
          D[c] = 0;
          mean[c] = runningMean[c]!;
          dgamma[c] = sumDyCentered[c]! * rstd;
          dbeta[c] = sumDy[c]!;
        }
      }
      return { mean, A, B, D };
    };
    if (tiny) {
      if (req.training) tinyBackwardSums(x, dy, L, { mean, variance }, sums);
      else tinyGradSums(x, dy, L, runningMean, sums);
      coefficients();
      tinyDx(x, dy, dx, L, mean, A, B, D);
    } else {
      const single = () => {
        if (req.training) ts.backwardSums(x, dy, L, { mean, variance }, sums);
        else ts.inferGradSums(x, dy, L, runningMean, sums);
        coefficients();
        ts.backwardDx(x, dy, dx, L, mean, A, B, D);
      };
      if (!backwardMayThread(useThreads, L, x.length)) single();
      else viaChooser(`backward:${family(L)}`, x.length, useThreads,
        () => threads.backward(x, dy, dx, L, req.training, runningMean, { mean, variance }, sums, coefficients),
        single);
    }
    return { dx, dgamma, dbeta };
  }

  // float16 / bfloat16 activations with float32 parameters: converted at the boundary (./half.ts)
  return withHalfActivations({
    name: 'cpu-f32',
    profile: resolved,
    dtypes: ['float32'],
    axes: 'any',
    accumulation: options.synchronized ? { ...TS_ACCUMULATION, allReduce: 'tree' } : TS_ACCUMULATION,
    forwardTrain,
    forwardInfer,
    backward,
    // synchronized mode (issue 13): float32 only; the half wrapper passes these through as they are
    ...(options.synchronized
      ? { forwardTrainSync: (req) => forwardTrainSyncThreads(resolved, req), backwardSync: (req) => backwardSyncThreads(resolved, req) }
      : {}),
  });
}
