/**
 * The gpu.js Batch Normalization kernel: float32 on the GPU (GLSL through headless-gl or WebGL2,
 * or gpu.js's other backends), checked by the same judge as every other implementation.
 *
 * gpu.js is an OPTIONAL peer dependency: it is imported dynamically on first use, so the rest of
 * the package works without it, and every method of the implementation is async.
 *
 * Design (docs/gpu.md):
 * - x (and dy) are uploaded once into textures; every later pass reads the textures.
 * - Reductions: pass 1 sums tiles of TILE consecutive values per channel sequentially; then a
 *   binary tree over the tile sums, one level per pass. Every multi-row intermediate (tile sums,
 *   statistics) is a flat 1-D output that gpu.js folds into a near-square texture, so no texture
 *   side grows with m or C alone (shaders.ts, "Partials layout"). Declared as
 *   accumulation = { dtype: 'float32', order: 'tiled', tile: TILE }.
 * - Variance: shifted two-pass (mean = K + sum(x - K)/m, then sum((x - mean)^2)/m).
 * - Intermediates stay on the GPU (pipeline: true, immutable: true); one readback per call, whose
 *   output packs every result array ([y | mean | var | runningMean | runningVar], [dx | dgamma | dbeta]).
 * - Compiled kernels are cached per (op, outer, C, inner); dispose() frees them and the context.
 * - The mode is always named; after every kernel call the class that actually ran is checked, so
 *   gpu.js's silent fallback to its CPU kernel can never pass as the GPU path.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type {
  AccumulationInfo,
  BackwardRequest,
  BackwardResult,
  BatchNormImplementation,
  ForwardInferRequest,
  ForwardInferResult,
  ForwardTrainRequest,
  ForwardTrainResult,
  Op,
  Profile,
  ProfileName,
} from '../../contract/contract.js';
import { BnConformanceError, SingleValuePerChannelError, UnsupportedDTypeError, UsageError } from '../../contract/errors.js';
import { validateRequest, type Layout } from '../../contract/layout.js';
import { effectiveEps, emaWeights, resolveProfile, runningVarFactor } from '../../contract/profiles.js';
import * as S from './shaders.js';

/** gpu.js backends we can be asked for. 'gpu' lets gpu.js choose (the class that ran is recorded). */
export type GpuMode = 'headlessgl' | 'webgl2' | 'webgl' | 'webgpu' | 'cpu' | 'webasm' | 'gpu';
export const GPU_MODES: readonly GpuMode[] = ['headlessgl', 'webgl2', 'webgl', 'webgpu', 'cpu', 'webasm', 'gpu'];

export interface GpuOptions {
  /** gpu.js mode; default 'headlessgl' (Node). Never silently replaced by another one. */
  mode?: GpuMode;
  /** Values each pass-1 thread sums sequentially (declared as the accumulation tile). Default 64. */
  tile?: number;
  /** Insert gl.finish() between phases and record lastTimings (for scripts/bench-gpu.ts). */
  timings?: boolean;
  /** Most shape plans kept compiled at once (least recently used are destroyed). Default 16. */
  maxPlans?: number;
  /**
   * Hold textures to this side when it is below the GPU's own MAX_TEXTURE_SIZE: reproduces a
   * smaller GPU (WebGL 2 guarantees only 2048) on a larger one, and in gpu.js's cpu mode.
   */
  maxTextureSize?: number;
}

export const DEFAULT_TILE = 64;
/** Every index must be an integer held exactly in a float32 inside the shaders. */
export const MAX_ELEMENTS = 2 ** 24;

/** The requested gpu.js backend cannot run here (no gpu.js, no gl build, no display, no adapter). */
export class GpuUnavailableError extends BnConformanceError {
  readonly mode: GpuMode;
  constructor(mode: GpuMode, reason: string) {
    super('BN_GPU_UNAVAILABLE', `gpu.js mode "${mode}" is not available: ${reason}`);
    this.mode = mode;
  }
}

/** gpu.js ran a different kernel class than the mode asked for (e.g. its silent CPU fallback). */
export class GpuFallbackError extends BnConformanceError {
  constructor(mode: GpuMode, kernelName: string, ran: string, reason: string | null) {
    super(
      'BN_GPU_FALLBACK',
      `gpu.js mode "${mode}": kernel ${kernelName} ran as ${ran}, not the ${mode} kernel class` +
        (reason ? ` (gpu.js fallback reason: ${reason})` : '') +
        '; refusing to report a fallback as the GPU path',
    );
  }
}

/** A shape outside what this kernel supports (float32-exact shader indices, texture size). */
export class GpuLimitError extends BnConformanceError {
  constructor(message: string) {
    super('BN_GPU_LIMIT', message);
  }
}

export interface GpuAvailability {
  available: boolean;
  mode: GpuMode;
  /** Why not (or what was found, when available). */
  reason: string;
  /** GL renderer / kernel class that ran the probe kernel, when available. */
  renderer?: string;
  kernelClass?: string;
}

export interface GpuTimings {
  /** Host-to-GPU upload of x (and dy) into textures, ms. */
  uploadMs: number;
  /** All reduction / statistics passes up to (not including) the output kernel, ms. */
  passesMs: number;
  /** Output kernel + the single readback (readPixels), ms. */
  outputAndReadbackMs: number;
  /** Kernels compiled during this call (first use of a shape), and the time of those first runs. */
  compiled: number;
  totalMs: number;
}

export interface GpuImplementation extends BatchNormImplementation {
  readonly mode: GpuMode;
  readonly accumulation: AccumulationInfo;
  forwardTrain(req: ForwardTrainRequest): Promise<ForwardTrainResult>;
  forwardInfer(req: ForwardInferRequest): Promise<ForwardInferResult>;
  backward(req: BackwardRequest): Promise<BackwardResult>;
  /**
   * Kernel classes that actually ran (constructor names), the gpu.js mode, the GL renderer, and
   * how many kernels gpu.js's GPU instance keeps a reference to (bounded by the plan cache).
   */
  backendInfo(): { mode: GpuMode; gpuMode: string | null; kernelClasses: string[]; renderer: string | null; kernelsHeld: number | null };
  /** Timings of the last call (only when options.timings). */
  lastTimings: GpuTimings | null;
  /** Destroy every compiled kernel and the gpu.js instance. Safe to call twice. */
  dispose(): Promise<void>;
  destroy(): Promise<void>;
}

/* ----------------------------------------------------------------------------------------------
 * gpu.js loading and the availability probe
 * -------------------------------------------------------------------------------------------- */

// Minimal structural types: the package's public .d.ts must not need gpu.js's types.
/* eslint-disable @typescript-eslint/no-explicit-any */
type GpuJsModule = any;
type GpuInstance = any;
type KernelShortcut = any;

let gpuJsPromise: Promise<GpuJsModule> | null = null;

async function loadGpuJs(): Promise<GpuJsModule> {
  gpuJsPromise ??= import('gpu.js').then((m: any) => m.default ?? m);
  try {
    return await gpuJsPromise;
  } catch (e) {
    gpuJsPromise = null;
    throw e;
  }
}

function glBuildReason(): string | null {
  const require = createRequire(import.meta.url);
  let glDir: string;
  try {
    glDir = dirname(require.resolve('gl/package.json'));
  } catch {
    return 'the optional `gl` package (headless-gl) is not installed';
  }
  if (!existsSync(join(glDir, 'build', 'Release', 'webgl.node'))) {
    return (
      'the `gl` native module is not built (no build/Release/webgl.node): install pkg-config libxi-dev ' +
      'libglu1-mesa-dev libglew-dev and run `npm rebuild gl`'
    );
  }
  try {
    require('gl');
  } catch (e) {
    return `the \`gl\` native module does not load: ${(e as Error).message}`;
  }
  return null;
}

/** Why the requested mode cannot run, or null when gpu.js says it is supported. */
function unavailableReason(mod: GpuJsModule, mode: GpuMode): string | null {
  const G = mod.GPU;
  switch (mode) {
    case 'headlessgl': {
      if (G.isHeadlessGLSupported) return null;
      const build = glBuildReason();
      if (build) return build;
      if (process.platform === 'linux' && !process.env.DISPLAY) {
        return 'no X display (DISPLAY is unset): headless-gl needs one; run under `xvfb-run -a`';
      }
      return `headless-gl created no GL context on DISPLAY=${process.env.DISPLAY ?? ''} (is Mesa/libgl1-mesa-dri installed?)`;
    }
    case 'webgl2':
      return G.isWebGL2Supported ? null : 'no WebGL2 context (a browser is needed: see scripts/gpu-browser-check.ts)';
    case 'webgl':
      return G.isWebGLSupported ? null : 'no WebGL context (a browser is needed)';
    case 'webgpu':
      return G.isWebGPUSupported ? null : 'no navigator.gpu (WebGPU) in this runtime';
    case 'webasm':
      return G.isWebAssemblySupported === false ? 'WebAssembly is not supported' : null;
    default:
      return null;
  }
}

function expectedClass(mod: GpuJsModule, mode: GpuMode): ((k: unknown) => boolean) | null {
  const exact = (C: unknown) => (k: unknown) => !!k && (k as object).constructor === C;
  switch (mode) {
    case 'headlessgl':
      return exact(mod.HeadlessGLKernel);
    case 'webgl2':
      return exact(mod.WebGL2Kernel);
    case 'webgl':
      return exact(mod.WebGLKernel);
    case 'webgpu':
      return exact(mod.WebGPUKernel);
    case 'cpu':
      return exact(mod.CPUKernel);
    case 'webasm':
      return exact(mod.WebAssemblyKernel);
    default:
      return null; // 'gpu': whatever gpu.js picks, recorded in backendInfo()
  }
}

/**
 * Probe a gpu.js mode: loads gpu.js, checks the backend, runs a tiny kernel and checks the class
 * that ran it. Never throws; specs use it to skip with the reason printed.
 */
export async function gpuAvailability(mode: GpuMode = 'headlessgl'): Promise<GpuAvailability> {
  let mod: GpuJsModule;
  try {
    mod = await loadGpuJs();
  } catch (e) {
    return { available: false, mode, reason: `gpu.js (optional peer dependency) is not installed: ${(e as Error).message}` };
  }
  const why = unavailableReason(mod, mode);
  if (why) return { available: false, mode, reason: why };
  let gpu: GpuInstance | null = null;
  try {
    gpu = new mod.GPU({ mode });
    const k = gpu.createKernel(S.copyKernel, { output: [4], precision: 'single', tactic: 'precision' });
    // gpu.js's webgpu kernels return a Promise (readback is mapAsync); the GL ones a value
    const out = await k(new Float32Array([1.5, -2.25, 3e-8, 16777215]));
    const ran = k.kernel;
    const ok = expectedClass(mod, mode);
    const kernelClass = ran?.constructor?.name ?? 'unknown';
    if (ok && !ok(ran)) {
      return { available: false, mode, kernelClass, reason: `gpu.js ran the probe as ${kernelClass} (fallback: ${ran?.fallbackReason ?? 'none given'})` };
    }
    const vals = Array.from(out as Float32Array);
    if (vals[0] !== 1.5 || vals[1] !== -2.25 || Math.fround(3e-8) !== vals[2] || vals[3] !== 16777215) {
      return { available: false, mode, kernelClass, reason: `probe kernel returned ${vals.join(', ')}: not float32-exact (precision)` };
    }
    const renderer = glRenderer(ran);
    return { available: true, mode, kernelClass, ...(renderer ? { renderer } : {}), reason: `ran ${kernelClass}${renderer ? ` on ${renderer}` : ''}` };
  } catch (e) {
    return { available: false, mode, reason: `probe kernel failed: ${(e as Error).message}` };
  } finally {
    try {
      await gpu?.destroy();
    } catch {
      /* ignore */
    }
  }
}

function glRenderer(kernel: any): string | null {
  const ctx = kernel?.context;
  if (!ctx || typeof ctx.getParameter !== 'function') return null;
  try {
    const r = ctx.getParameter(ctx.RENDERER);
    const v = ctx.getParameter(ctx.VERSION);
    let unmasked = '';
    const dbg = ctx.getExtension?.('WEBGL_debug_renderer_info');
    if (dbg) unmasked = ` / ${ctx.getParameter(dbg.UNMASKED_RENDERER_WEBGL)}`;
    return `${r}${unmasked} (${v})`;
  } catch {
    return null;
  }
}

/** gpu.js's JS and WebAssembly backends are not GPUs: their results are labelled so. */
export const NOT_GPU_MODES: readonly GpuMode[] = ['cpu', 'webasm'];

export function implName(mode: GpuMode): string {
  return NOT_GPU_MODES.includes(mode) ? `gpu.js:${mode} (NOT a GPU: gpu.js ${mode === 'cpu' ? 'JavaScript' : 'WebAssembly'} backend)` : `gpu.js:${mode}`;
}

/**
 * Values in each texture a plan creates (every one a 1-D output or input, which gpu.js folds into a
 * near-square texture): what checkTextureSides compares with the GPU's MAX_TEXTURE_SIZE. `rows` is
 * C (forward) or 2C (backward) tile-sum rows of T = ceil(m / tile) slots each.
 */
export function texelCounts(op: Op | 'backwardTrain' | 'backwardInfer', L: Layout, T: number, rows: number): Record<string, number> {
  const C = L.channels;
  if (op === 'forwardInfer') return { 'x / y': L.numel };
  const out = op === 'forwardTrain' ? L.numel + 4 * C : L.numel + 2 * C;
  return { 'x / output': out, 'tile sums': rows * T, statistics: 5 * C };
}

/**
 * The first texture whose folded size (fold: gpu.js's closestSquareDimensions) has a side over
 * maxSide, or null when all fit. maxSide is Infinity for backends without textures (webgpu, cpu).
 */
export function oversizedTexture(
  counts: Record<string, number>,
  maxSide: number,
  fold: (n: number) => [number, number],
): { what: string; n: number; w: number; h: number } | null {
  if (!Number.isFinite(maxSide)) return null;
  for (const [what, n] of Object.entries(counts)) {
    const [w, h] = fold(n);
    if (w > maxSide || h > maxSide) return { what, n, w, h };
  }
  return null;
}

/* ----------------------------------------------------------------------------------------------
 * Plans: compiled kernels per (op, shape)
 * -------------------------------------------------------------------------------------------- */

interface Plan {
  key: string;
  kernels: Record<string, KernelShortcut>;
  T: number;
}

const now = (): number => performance.now();

/**
 * createGpu(profile?, options?): the gpu.js kernel behind the contract. Methods are async (gpu.js
 * is loaded on first use). Throws GpuUnavailableError (on the first call) when the named mode
 * cannot run, and GpuFallbackError when gpu.js runs another kernel class than the one asked for.
 */
export function createGpu(profile?: ProfileName | Profile, options: GpuOptions = {}): GpuImplementation {
  const prof = resolveProfile(profile);
  const mode: GpuMode = options.mode ?? 'headlessgl';
  if (!GPU_MODES.includes(mode)) throw new UsageError(`unknown gpu.js mode "${String(mode)}"; known: ${GPU_MODES.join(', ')}`);
  const tile = options.tile ?? DEFAULT_TILE;
  if (!Number.isInteger(tile) || tile < 1 || tile > 4096) throw new UsageError(`tile must be an integer in [1, 4096], got ${tile}`);
  const maxPlans = options.maxPlans ?? 16;
  if (options.maxTextureSize !== undefined && !(Number.isInteger(options.maxTextureSize) && options.maxTextureSize >= 1)) {
    throw new UsageError(`maxTextureSize must be a positive integer, got ${options.maxTextureSize}`);
  }
  // GLSL may flush subnormals to zero (GLSL ES 3.00 §4.5.1; Mesa llvmpipe does): declare it for
  // the shader modes, so the tolerance's underflow unit is the smallest normal there
  const shader = mode !== 'cpu' && mode !== 'webasm';
  const accumulation: AccumulationInfo = { dtype: 'float32', order: 'tiled', tile, ...(shader ? { subnormals: 'flush-to-zero' as const } : {}) };

  let mod: GpuJsModule | null = null;
  let gpu: GpuInstance | null = null;
  let isExpected: ((k: unknown) => boolean) | null = null;
  let disposed = false;
  const plans = new Map<string, Plan>();
  const ranClasses = new Set<string>();
  let renderer: string | null = null;
  let compiledThisCall = 0;
  let chain: Promise<unknown> = Promise.resolve();

  async function init(): Promise<void> {
    if (disposed) throw new UsageError(`${impl.name} was disposed`);
    if (gpu) return;
    try {
      mod = await loadGpuJs();
    } catch (e) {
      throw new GpuUnavailableError(mode, `gpu.js (optional peer dependency) is not installed: ${(e as Error).message}`);
    }
    const why = unavailableReason(mod, mode);
    if (why) throw new GpuUnavailableError(mode, why);
    try {
      gpu = new mod.GPU({ mode });
    } catch (e) {
      throw new GpuUnavailableError(mode, (e as Error).message);
    }
    isExpected = expectedClass(mod, mode);
  }

  function kernel(fn: (...a: any[]) => number, output: number[], constants: Record<string, number>, pipeline: boolean): KernelShortcut {
    const k = gpu.createKernel(fn, {
      output,
      constants,
      precision: 'single',
      tactic: 'precision',
      pipeline,
      // Mutable: each kernel owns one output texture, overwritten by its next run. No kernel ever
      // reads its own output (the tree alternates two kernels), and nothing is deleted by hand, so
      // gpu.js's clone/ref-count machinery (immutable kernels) is never involved.
      immutable: false,
      loopMaxIterations: tile + 1,
      functions: S.SHADER_FUNCTIONS,
    });
    return k;
  }

  /** Run one kernel and check the class that ran it. */
  function run(k: KernelShortcut, name: string, ...args: unknown[]): any {
    const firstRun = !k.__bnRan;
    const out = k(...args);
    const ran = k.kernel;
    const cls = ran?.constructor?.name ?? 'unknown';
    if (isExpected && !isExpected(ran)) {
      throw new GpuFallbackError(mode, name, cls, ran?.fallbackReason ?? null);
    }
    if (firstRun) {
      k.__bnRan = true;
      compiledThisCall++;
      ranClasses.add(cls);
      renderer ??= glRenderer(ran);
    }
    return out;
  }

  function finish(k: KernelShortcut): void {
    if (!options.timings) return;
    const ctx = k.kernel?.context ?? k.context;
    if (ctx && typeof ctx.finish === 'function') ctx.finish();
  }

  function planFor(op: Op | 'backwardTrain' | 'backwardInfer', L: Layout): Plan {
    const key = `${op}|${L.outer}|${L.channels}|${L.inner}`;
    const hit = plans.get(key);
    if (hit) {
      plans.delete(key);
      plans.set(key, hit); // LRU order
      return hit;
    }
    if (L.numel + 4 * L.channels >= MAX_ELEMENTS) {
      throw new GpuLimitError(
        `shape has ${L.numel} elements; this kernel keeps every shader index exact in float32, so numel + 4C must be < 2^24 (${MAX_ELEMENTS})`,
      );
    }
    const C = L.channels;
    const T = Math.ceil(L.m / tile);
    const rows = op === 'backwardTrain' || op === 'backwardInfer' ? 2 * C : C;
    checkTextureSides(texelCounts(op, L, T, rows));
    const base = { C, inner: L.inner, m: L.m, tile, numel: L.numel, T };
    const ks: Record<string, KernelShortcut> = {};
    if (op !== 'forwardInfer') ks.copyX = kernel(S.copyKernel, [L.numel], {}, true);
    if (op === 'backwardTrain' || op === 'backwardInfer') ks.copyDy = kernel(S.copyKernel, [L.numel], {}, true);
    if (op === 'forwardTrain' || op === 'backwardTrain') {
      ks.sum = kernel(S.partialShiftedSum, [C * T], base, true);
      ks.pairA = kernel(S.pairSum, [C * T], { T }, true);
      ks.pairB = kernel(S.pairSum, [C * T], { T }, true);
      ks.mean = kernel(S.meanKernel, [C], base, true);
      ks.sq = kernel(S.partialSquares, [C * T], base, true);
      ks.stats = kernel(S.statsKernel, [5 * C], { C, T, m: L.m, single: L.m === 1 ? 1 : 0, varFactor: runningVarFactor(prof, L.m) }, true);
    }
    if (op === 'forwardTrain') {
      ks.out = kernel(S.trainOutput, [L.numel + 4 * C], { ...base, single: L.m === 1 ? 1 : 0 }, false);
    } else if (op === 'forwardInfer') {
      ks.out = kernel(S.inferOutput, [L.numel], base, false);
    } else {
      if (op === 'backwardInfer') ks.istats = kernel(S.inferStatsKernel, [3 * C], { C }, true);
      ks.grad = kernel(S.partialGrad, [2 * C * T], base, true);
      ks.pair2A = kernel(S.pairSum, [2 * C * T], { T }, true);
      ks.pair2B = kernel(S.pairSum, [2 * C * T], { T }, true);
      ks.out = kernel(S.backwardOutput, [L.numel + 2 * C], { ...base, training: op === 'backwardTrain' ? 1 : 0 }, false);
    }
    const plan: Plan = { key, kernels: ks, T };
    plans.set(key, plan);
    while (plans.size > maxPlans) {
      const oldest = plans.keys().next().value as string;
      destroyPlan(plans.get(oldest)!);
      plans.delete(oldest);
    }
    return plan;
  }

  /**
   * Refuse up front (GpuLimitError) a plan one of whose textures gpu.js would lay out wider or
   * taller than this GPU's MAX_TEXTURE_SIZE, rather than let gpu.js fail mid-call. With every
   * output 1-D and numel < 2^24 this cannot trigger on a GPU whose limit is >= 8192 (largest
   * side ~4096 for x and the output, ~5793 for the 2C*T partials at tile 1); it guards GPUs below
   * that (WebGL 2 guarantees only 2048).
   */
  function checkTextureSides(counts: Record<string, number>): void {
    const max: number = Math.min(gpu?.Kernel?.features?.maxTextureSize ?? Infinity, options.maxTextureSize ?? Infinity);
    const fold = (n: number) => Array.from(mod.utils.closestSquareDimensions(n) as Int32Array) as [number, number];
    const over = oversizedTexture(counts, max, fold);
    if (over) {
      throw new GpuLimitError(
        `${over.what} needs ${over.n} values, a ${over.w} x ${over.h} texture, over this GPU's MAX_TEXTURE_SIZE ${max} ` +
          `(gpu.js mode "${mode}"); at most ${max * max} values fit one texture`,
      );
    }
  }

  function destroyPlan(p: Plan): void {
    // gpu.js keeps every kernel it builds in gpu.kernels (for gpu.destroy()), and the cpu and
    // WebGL kernels' own destroy() leave them there (2.24.1): without taking them out, every
    // evicted plan stayed reachable, and a long check in cpu mode (1000 runs per property, many
    // shapes) ran out of a 4 GB heap
    const held: unknown[] | undefined = gpu?.kernels;
    for (const k of Object.values(p.kernels)) {
      try {
        k.destroy?.(false);
      } catch {
        /* ignore */
      }
      const at = held ? held.indexOf(k.kernel) : -1;
      if (at >= 0) held!.splice(at, 1);
    }
  }

  /**
   * The binary tree over tile sums: ceil(log2 T) passes, alternating two kernels (ping-pong) so
   * that no kernel reads the texture it writes; returns the texture with the totals in column 0.
   */
  async function tree(a: KernelShortcut, b: KernelShortcut, p: any, T: number): Promise<any> {
    let n = T;
    let cur = p;
    let useA = true;
    while (n > 1) {
      cur = await run(useA ? a : b, 'pairSum', cur, n);
      useA = !useA;
      n = Math.ceil(n / 2);
    }
    return cur;
  }

  function serialize<T>(f: () => T | Promise<T>): Promise<T> {
    // One GL context: calls run one at a time, in order.
    const next = chain.then(async () => {
      await init();
      compiledThisCall = 0;
      return f();
    });
    chain = next.catch(() => undefined);
    return next;
  }

  function requireF32(dtype: string): void {
    if (dtype !== 'float32') throw new UnsupportedDTypeError(dtype, ['float32']);
  }

  /** Runs f and records its phases; f is async because gpu.js's webgpu kernels return Promises. */
  async function timed<T>(f: (mark: (phase: 'upload' | 'passes') => void) => Promise<T>): Promise<T> {
    const t0 = now();
    let tUp = t0;
    let tPass = t0;
    const mark = (phase: 'upload' | 'passes') => {
      if (phase === 'upload') tUp = now();
      else tPass = now();
    };
    const r = await f(mark);
    const t1 = now();
    if (options.timings) {
      impl.lastTimings = {
        uploadMs: tUp - t0,
        passesMs: tPass - tUp,
        outputAndReadbackMs: t1 - tPass,
        compiled: compiledThisCall,
        totalMs: t1 - t0,
      };
    }
    return r;
  }

  const impl: GpuImplementation = {
    name: implName(mode),
    profile: prof,
    // float32 only: no half precision (0.2.0). gpu.js has no 16-bit textures to read a Uint16Array
    // of float16 / bfloat16 patterns from; a half request is refused with UnsupportedDTypeError
    // (requireF32), and without `precisions` the harness plans no half case for this kernel.
    dtypes: ['float32'],
    axes: 'any',
    mode,
    accumulation,
    lastTimings: null,

    async forwardTrain(req: ForwardTrainRequest): Promise<ForwardTrainResult> {
      const { layout: L, dtype } = validateRequest('forwardTrain', req);
      requireF32(dtype);
      if (L.m === 1 && prof.singleValue === 'error') throw new SingleValuePerChannelError(L.m, req.shape, req.axis);
      const eps = effectiveEps(prof, req.eps);
      const { keep, take } = emaWeights(prof, req.momentum);
      return serialize(() =>
        timed(async (mark) => {
          const p = planFor('forwardTrain', L);
          const k = p.kernels;
          const xt = await run(k.copyX, 'copy', req.x);
          finish(k.copyX);
          mark('upload');
          const s1 = await run(k.sum, 'partialShiftedSum', xt);
          const sums = await tree(k.pairA, k.pairB, s1, p.T);
          const mean = await run(k.mean, 'mean', xt, sums);
          const q1 = await run(k.sq, 'partialSquares', xt, mean);
          const sq = await tree(k.pairA, k.pairB, q1, p.T);
          const stats = await run(k.stats, 'stats', mean, sq, req.runningMean, req.runningVar, eps, keep, take);
          finish(k.stats);
          mark('passes');
          const out = await run(k.out, 'trainOutput', xt, stats, req.gamma, req.beta) as Float32Array;
          const n = L.numel;
          const C = L.channels;
          return {
            y: out.slice(0, n),
            mean: out.slice(n, n + C),
            variance: out.slice(n + C, n + 2 * C),
            runningMean: out.slice(n + 2 * C, n + 3 * C),
            runningVar: out.slice(n + 3 * C, n + 4 * C),
          };
        }),
      );
    },

    async forwardInfer(req: ForwardInferRequest): Promise<ForwardInferResult> {
      const { layout: L, dtype } = validateRequest('forwardInfer', req);
      requireF32(dtype);
      const eps = effectiveEps(prof, req.eps);
      return serialize(() =>
        timed(async (mark) => {
          const p = planFor('forwardInfer', L);
          mark('upload');
          mark('passes');
          const out = await run(p.kernels.out, 'inferOutput', req.x, req.gamma, req.beta, req.runningMean, req.runningVar, eps) as Float32Array;
          return { y: out.slice(0, L.numel) };
        }),
      );
    },

    async backward(req: BackwardRequest): Promise<BackwardResult> {
      const { layout: L, dtype } = validateRequest('backward', req);
      requireF32(dtype);
      if (req.training && L.m === 1 && prof.singleValue === 'error') {
        throw new SingleValuePerChannelError(L.m, req.shape, req.axis);
      }
      const eps = effectiveEps(prof, req.eps);
      const training = req.training;
      return serialize(() =>
        timed(async (mark) => {
          const p = planFor(training ? 'backwardTrain' : 'backwardInfer', L);
          const k = p.kernels;
          const xt = await run(k.copyX, 'copy', req.x);
          const dyt = await run(k.copyDy, 'copy', req.dy);
          finish(k.copyX);
          mark('upload');
          let stats: any;
          let center: any;
          if (training) {
            const s1 = await run(k.sum, 'partialShiftedSum', xt);
            const sums = await tree(k.pairA, k.pairB, s1, p.T);
            center = await run(k.mean, 'mean', xt, sums);
            const q1 = await run(k.sq, 'partialSquares', xt, center);
            const sq = await tree(k.pairA, k.pairB, q1, p.T);
            const zeros = new Float32Array(L.channels);
            stats = await run(k.stats, 'stats', center, sq, zeros, zeros, eps, 0, 0);
          } else {
            center = req.runningMean!;
            stats = await run(k.istats, 'inferStats', req.runningMean, req.runningVar, eps);
          }
          const g1 = await run(k.grad, 'partialGrad', xt, dyt, center);
          const G = await tree(k.pair2A, k.pair2B, g1, p.T);
          finish(k.grad);
          mark('passes');
          const out = await run(k.out, 'backwardOutput', xt, dyt, stats, G, req.gamma) as Float32Array;
          const n = L.numel;
          const C = L.channels;
          return { dx: out.slice(0, n), dgamma: out.slice(n, n + C), dbeta: out.slice(n + C, n + 2 * C) };
        }),
      );
    },

    backendInfo() {
      return { mode, gpuMode: gpu?.mode ?? null, kernelClasses: [...ranClasses], renderer, kernelsHeld: gpu?.kernels?.length ?? null };
    },

    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await chain;
      for (const p of plans.values()) destroyPlan(p);
      plans.clear();
      const g = gpu;
      gpu = null;
      if (g) await g.destroy();
    },
    destroy(): Promise<void> {
      return impl.dispose();
    },
  };
  return impl;
}
