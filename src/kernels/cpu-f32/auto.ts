/**
 * The 'auto' engine's choices beyond the tiny path (which ./index.ts takes for every engine):
 * WebAssembly SIMD where the runtime has it (TypeScript otherwise), and large tensors split over
 * every core (./threads.ts) where that measures faster on this machine, now (./chooser.ts).
 */
import * as ts from './ts-engine.js';
import * as wasm from './wasm-engine.js';
import * as threads from './threads.js';
import { choosePath, recordPath } from './chooser.js';
import type { EngineLayout, StatsOut } from './ts-engine.js';

/** How 'auto' may use threads: where faster (true), never (false), whenever possible ('always'). */
export type ThreadMode = boolean | 'always';

export interface Loops {
  forwardTrain(x: Float32Array, y: Float32Array, L: EngineLayout, gamma: Float32Array, beta: Float32Array, eps: number, stats: StatsOut): void;
  affine(x: Float32Array, y: Float32Array, L: EngineLayout, center: Float64Array, scale: Float64Array, offset: Float64Array): void;
}

/**
 * Smallest tensors (elements) 'auto' considers splitting over the cores. Below it a call is too
 * short for the hand-off (a message and a wake-up per worker, tens of microseconds) to pay;
 * above it ./chooser.ts times both paths and takes the faster.
 */
export const THREAD_MIN_NUMEL = 1 << 18;

/** Resolve once the worker threads of 'auto' are started (else the first large calls warm them). */
export const prewarmCpuF32Threads = (): Promise<void> => threads.prewarm();

export const family = (L: EngineLayout) => (L.inner >= ts.RUN_MIN ? 'runs' : 'rows');

/**
 * Run `threaded` (which returns false when the pool is not ready) or `single`, as the chooser
 * says for this kind of call, and time it for the chooser.
 */
export function viaChooser(kind: string, n: number, mode: ThreadMode, threaded: () => boolean, single: () => void): void {
  if (mode === 'always') {
    if (!threaded()) single();
    return;
  }
  const path = choosePath(kind, n);
  const t0 = performance.now();
  const done = path === 'threads' && threaded();
  if (!done) single();
  if (path === 'single' || done) recordPath(kind, n, path, performance.now() - t0);
}

/**
 * 'auto': WebAssembly where available; of the threaded forwards, only the channel pipeline of
 * the training forward (./threads.ts), where the chooser measures it faster. The forwards split
 * by outer slices (inference; the training forward of the other layouts) stay one thread unless
 * threads = 'always': the calling thread must copy the workers' parts in and out, which is most
 * of what one thread does for these streaming ops, so the split can only save their arithmetic;
 * measured alone on the 2-core machine it was 0.55-0.85x of one thread in all nine such cells of
 * the bench, and the chooser's first timings of it (2·KEEP calls) were pure loss.
 */
export function autoLoops(useThreads: ThreadMode): Loops {
  const single: Loops = wasm.wasmSimdAvailable ? wasm : ts;
  if (!useThreads || !wasm.wasmSimdAvailable) return single;
  const always = useThreads === 'always';
  const big = (n: number) => always || n >= THREAD_MIN_NUMEL;
  return {
    forwardTrain(x, y, L, gamma, beta, eps, stats) {
      // the pipeline splits by channels (any batch size); the rest by outer slices
      const split = threads.pipelines(L) || (always && threads.threadable(L));
      if (!big(x.length) || !split) return single.forwardTrain(x, y, L, gamma, beta, eps, stats);
      viaChooser(`train:${family(L)}`, x.length, useThreads,
        () => threads.forwardTrain(x, y, L, gamma, beta, eps, stats),
        () => single.forwardTrain(x, y, L, gamma, beta, eps, stats));
    },
    affine(x, y, L, center, scale, offset) {
      if (!always || !threads.threadable(L)) return single.affine(x, y, L, center, scale, offset);
      viaChooser(`infer:${family(L)}`, x.length, useThreads,
        () => threads.affine(x, y, L, center, scale, offset),
        () => single.affine(x, y, L, center, scale, offset));
    },
  };
}


/** Whether 'auto' may split this backward over the pool (the chooser then decides). */
export function backwardMayThread(mode: ThreadMode, L: EngineLayout, n: number): boolean {
  return !!mode && (mode === 'always' || n >= THREAD_MIN_NUMEL) && threads.threadableBackward(L);
}
