/**
 * Benchmark of the float32 CPU kernel against its peers, side by side in ONE process:
 * createCpuF32 (the default engine 'auto' first, then each single-thread engine), onnxruntime-node (a one-node BatchNormalization model written here
 * as protobuf bytes; NHWC through Transpose nodes), TF.js on its WASM and CPU backends
 * (tf.moments + tf.batchNorm, gradients via tf.grads), a plain two-pass JS loop, and a
 * Float32Array.set copy as the bandwidth yardstick.
 *
 * Every implementation is timed end to end from Float32Array inputs to Float32Array outputs
 * (library tensors are created and read back inside the timed region), since that is what the
 * contract asks of all of them. Medians of repeated runs; GB/s counts the bytes an op must move
 * at least once (training/inference forward: x read + y written; backward: x, dy read + dx
 * written), so the copy (x read + y written) is directly comparable.
 *
 * Run: npx tsx scripts/bench.ts [--quick | --shape 32,64,56,56] [--without-tfjs] [--out docs/bench.md]
 * (--without-tfjs: TF.js not loaded at all. Loaded, it leaves a large JavaScript heap whose
 * garbage collections run on V8's helper threads, which on 2 cores take the worker's core from
 * any threaded contender: see docs/kernels.md, the float32 CPU kernel.)
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';
import { createRequire } from 'node:module';
import { createCpuF32, overwrittenOutput, prewarmCpuF32Threads, type CpuEngineName, type CpuF32Implementation } from '../src/kernels/cpu-f32/index.js';
import { KEEP } from '../src/kernels/cpu-f32/chooser.js';
import type { AccumulationInfo, Op } from '../src/contract/contract.js';
import { checkAgainst, expectationFor, type Expectation } from '../src/judge/compare.js';
import { resolveProfile } from '../src/contract/profiles.js';
import { mulberry32 as rng } from '../src/numerics/random.js';
import { attrF, attrI, attrInts, node, Pb, valueInfo } from '../src/adapters/onnx-model.js';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const WITHOUT_TFJS = args.includes('--without-tfjs');
const OUT = args.includes('--out') ? args[args.indexOf('--out') + 1]! : 'docs/bench.md';

type OpName = 'train' | 'infer' | 'backward';
const OPS: OpName[] = ['train', 'infer', 'backward'];
const EPS = 1e-5;
const MOMENTUM = 0.9;

interface Cell {
  label: string;
  layout: 'NCHW' | 'NHWC';
  shape: number[];
  axis: number;
  C: number;
  numel: number;
}

const SHAPE_ARG = args.includes('--shape') ? args[args.indexOf('--shape') + 1]!.split(',').map(Number) : undefined;
const BASE_SHAPES: number[][] = SHAPE_ARG ? [SHAPE_ARG] : QUICK ? [[8, 256, 14, 14], [2, 3, 4, 4]] : [[32, 64, 56, 56], [256, 1024], [8, 256, 14, 14], [2, 3, 4, 4]];
function cellsOf(nchw: number[]): Cell[] {
  const numel = nchw.reduce((a, b) => a * b, 1);
  const C = nchw[1]!;
  const out: Cell[] = [{ label: `[${nchw.join(',')}]`, layout: 'NCHW', shape: nchw, axis: 1, C, numel }];
  if (nchw.length > 2) {
    const nhwc = [nchw[0]!, ...nchw.slice(2), C];
    out.push({ label: `[${nhwc.join(',')}]`, layout: 'NHWC', shape: nhwc, axis: nhwc.length - 1, C, numel });
  }
  return out;
}
const CELLS = BASE_SHAPES.flatMap(cellsOf);

// ---------------------------------------------------------------------------------------------
// Inputs and the float64 two-pass reference the errors are measured against.


interface Inputs {
  x: Float32Array; dy: Float32Array; gamma: Float32Array; beta: Float32Array;
  runningMean: Float32Array; runningVar: Float32Array;
}
function makeInputs(cell: Cell): Inputs {
  const r = rng(cell.numel + cell.axis);
  const f = (n: number, g: () => number) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = g(); return a; };
  return {
    x: f(cell.numel, () => 3 + (r() + r() + r() - 1.5) * 2),
    dy: f(cell.numel, () => r() * 2 - 1),
    gamma: f(cell.C, () => 0.5 + r()), beta: f(cell.C, () => r() - 0.5),
    runningMean: f(cell.C, () => 3 + r() - 0.5), runningVar: f(cell.C, () => 0.5 + r()),
  };
}

function view(cell: Cell) {
  const outer = cell.shape.slice(0, cell.axis).reduce((a, b) => a * b, 1);
  const inner = cell.shape.slice(cell.axis + 1).reduce((a, b) => a * b, 1);
  return { outer, inner, C: cell.C, m: outer * inner };
}

const PROFILE = resolveProfile('onnx');
const OP_OF: Record<OpName, Op> = { train: 'forwardTrain', infer: 'forwardInfer', backward: 'backward' };
const MAIN_OUT: Record<OpName, string> = { train: 'y', infer: 'y', backward: 'dx' };

function requestOf(cell: Cell, op: OpName, I: Inputs) {
  const base = { ...I, shape: cell.shape, axis: cell.axis, eps: EPS };
  return op === 'train' ? { ...base, momentum: MOMENTUM } : op === 'backward' ? { ...base, training: true } : base;
}

/**
 * The project's reference (createReference's compensated float64, via compare.ts) and the
 * tolerance bound per element of the op's main output (y or dx), for a declared accumulation.
 * Built lazily per (cell, op, accumulation) and reused by every contender.
 */
class Judge {
  private cache = new Map<string, Expectation>();
  constructor(private cell: Cell, private op: OpName, private I: Inputs) {}
  private expectation(acc: AccumulationInfo): Expectation {
    const key = `${acc.dtype}/${acc.order}`;
    let e = this.cache.get(key);
    if (!e) {
      const full = expectationFor(OP_OF[this.op], PROFILE, requestOf(this.cell, this.op, this.I) as never, { accumulation: acc });
      const o = MAIN_OUT[this.op];
      e = { expected: { [o]: full.expected[o]! }, bounds: { [o]: full.bounds[o]! }, channelOf: full.channelOf, reasons: full.reasons };
      this.cache.set(key, e);
    }
    return e;
  }
  /** err = max |out − ref| / max(1, |ref|); ratio = worst |out − ref| / bound (<= 1 passes). */
  judge(out: Float32Array, acc: AccumulationInfo): { err: number; ratio: number } {
    const e = this.expectation(acc);
    const o = MAIN_OUT[this.op];
    const ref = e.expected[o]!;
    let err = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(out[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!));
      if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    }
    const cmp = checkAgainst(e, { [o]: out });
    return { err, ratio: cmp.ratios[o] ?? Infinity };
  }
}

// ---------------------------------------------------------------------------------------------
// Contenders. Each returns a runner: () => the op's main output (y or dx) as a Float32Array.

type Runner = () => Float32Array | Promise<Float32Array>;
interface Contender {
  name: string;
  /** What the tolerance bound assumes of its sums (ours: the declared float64 sequential). */
  accumulation: AccumulationInfo;
  /** Iteration cap for very slow contenders on big cells. */
  maxIters?: (cell: Cell) => number;
  prepare(cell: Cell, op: OpName, I: Inputs): Runner | undefined;
  /** Called after each (cell, op): release threads and memory so they do not slow the others. */
  done?(): Promise<void>;
}

const F64: AccumulationInfo = { dtype: 'float64', order: 'sequential' };
/** Keeps the side outputs of the plain baseline observable, so the JIT cannot drop them. */
export let sink = 0;
const F32: AccumulationInfo = { dtype: 'float32', order: 'sequential' };

/** The unreported first contender (see main). */
const PLACEHOLDER = 'first slot (not reported)';

const ENGINE_LABEL: Record<CpuEngineName, string> = { auto: 'cpu-f32 (default: auto)', ts: 'cpu-f32 (ts)', wasm: 'cpu-f32 (wasm)' };

/** The default engine writing into one output array kept across calls (cpu-f32's `into`). */
const INTO_LABEL = 'cpu-f32 (auto, into a kept output)';

function ours(engine: CpuEngineName, intoKept = false): Contender {
  const name = intoKept ? INTO_LABEL : ENGINE_LABEL[engine];
  let impl: CpuF32Implementation;
  try {
    impl = createCpuF32('onnx', { engine });
  } catch {
    return { name, accumulation: F64, prepare: () => undefined };
  }
  return {
    name,
    accumulation: impl.accumulation as AccumulationInfo,
    prepare(cell, op, I) {
      const { shape, axis } = cell;
      // The request is built once, outside the timed call: it is the caller's input, and an object
      // spread with typed-array values costs ~4 µs in Node 20, which would swamp the tiny cells.
      // With intoKept, so is the output array (allocated once per cell and op, as a training loop would).
      const out = intoKept ? new Float32Array(cell.numel) : undefined;
      if (op === 'train') {
        const req = { ...I, shape, axis, eps: EPS, momentum: MOMENTUM };
        const into = out && { y: out };
        return () => impl.forwardTrain(req, into).y as Float32Array;
      }
      if (op === 'infer') {
        const req = { ...I, shape, axis, eps: EPS };
        const into = out && { y: out };
        return () => impl.forwardInfer(req, into).y as Float32Array;
      }
      const req = { ...I, shape, axis, eps: EPS, training: true };
      const into = out && { dx: out };
      return () => impl.backward(req, into).dx as Float32Array;
    },
  };
}

/**
 * The textbook two-pass loop a user would write (no layout specialisation), doing the op's whole
 * job as the contract defines it: training also returns mean, variance and the running
 * statistics, backward also dgamma and dbeta (as every other contender must).
 */
const plainJs: Contender = {
  name: 'plain JS two-pass',
  accumulation: F64,
  prepare(cell, op, I) {
    const { outer, inner, C, m } = view(cell);
    const { x, dy, gamma, beta, runningMean, runningVar } = I;
    const stats = () => {
      const mean = new Float64Array(C), v = new Float64Array(C);
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) mean[c] = mean[c]! + x[(o * C + c) * inner + i]!;
      for (let c = 0; c < C; c++) mean[c] = mean[c]! / m;
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) { const d = x[(o * C + c) * inner + i]! - mean[c]!; v[c] = v[c]! + d * d; }
      for (let c = 0; c < C; c++) v[c] = v[c]! / m;
      return { mean, v };
    };
    if (op === 'infer') return () => {
      const y = new Float32Array(x.length);
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) { const k = (o * C + c) * inner + i; y[k] = (gamma[c]! * (x[k]! - runningMean[c]!)) / Math.sqrt(runningVar[c]! + EPS) + beta[c]!; }
      return y;
    };
    if (op === 'train') return () => {
      const { mean, v } = stats();
      const y = new Float32Array(x.length);
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) { const k = (o * C + c) * inner + i; y[k] = (gamma[c]! * (x[k]! - mean[c]!)) / Math.sqrt(v[c]! + EPS) + beta[c]!; }
      const outMean = Float32Array.from(mean), outVar = Float32Array.from(v);
      const rm = new Float32Array(C), rv = new Float32Array(C);
      for (let c = 0; c < C; c++) { rm[c] = MOMENTUM * runningMean[c]! + (1 - MOMENTUM) * mean[c]!; rv[c] = MOMENTUM * runningVar[c]! + (1 - MOMENTUM) * v[c]!; }
      sink = outMean[0]! + outVar[0]! + rm[0]! + rv[0]!;
      return y;
    };
    return () => {
      const { mean, v } = stats();
      const sdy = new Float64Array(C), sdyx = new Float64Array(C);
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) { const k = (o * C + c) * inner + i; sdy[c] = sdy[c]! + dy[k]!; sdyx[c] = sdyx[c]! + (dy[k]! * (x[k]! - mean[c]!)) / Math.sqrt(v[c]! + EPS); }
      const dx = new Float32Array(x.length);
      for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0; i < inner; i++) {
        const k = (o * C + c) * inner + i, is = 1 / Math.sqrt(v[c]! + EPS), xh = (x[k]! - mean[c]!) * is;
        dx[k] = gamma[c]! * is * (dy[k]! - sdy[c]! / m - (xh * sdyx[c]!) / m);
      }
      const dgamma = Float32Array.from(sdyx), dbeta = Float32Array.from(sdy);
      sink = dgamma[0]! + dbeta[0]!;
      return dx;
    };
  },
};

// --- onnxruntime-node: a model written as protobuf bytes (ir 8, opset 15), with the protobuf
// writer of the onnxruntime adapter; NHWC cells wrap the node in Transposes. -------------------

function bnModel(cell: Cell, training: boolean): Uint8Array {
  const g = new Pb();
  const nhwc = cell.layout === 'NHWC';
  const rank = cell.shape.length;
  const toFirst = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, k) => k + 1)];
  const toLast = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2), 1];
  if (nhwc) g.msg(1, node('Transpose', ['X'], ['Xc'], [attrInts('perm', toFirst)]));
  const outs = training ? [nhwc ? 'Yc' : 'Y', 'RM', 'RV'] : [nhwc ? 'Yc' : 'Y'];
  const attrs = [attrF('epsilon', EPS), attrF('momentum', MOMENTUM)];
  if (training) attrs.push(attrI('training_mode', 1));
  g.msg(1, node('BatchNormalization', [nhwc ? 'Xc' : 'X', 'S', 'B', 'M', 'V'], outs, attrs));
  if (nhwc) g.msg(1, node('Transpose', ['Yc'], ['Y'], [attrInts('perm', toLast)]));
  g.str(2, 'bn');
  g.msg(11, valueInfo('X', cell.shape));
  for (const n of ['S', 'B', 'M', 'V']) g.msg(11, valueInfo(n, [cell.C]));
  g.msg(12, valueInfo('Y', cell.shape));
  if (training) { g.msg(12, valueInfo('RM', [cell.C])); g.msg(12, valueInfo('RV', [cell.C])); }
  const model = new Pb().int(1, 8).str(2, 'bn-conformance-bench').msg(7, g).msg(8, new Pb().str(1, '').int(2, 15));
  return Uint8Array.from(model.bytes);
}

async function onnxContender(): Promise<Contender> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    console.warn(`onnxruntime-node unavailable: ${(e as Error).message}`);
    return { name: 'onnxruntime-node', accumulation: F32, prepare: () => undefined };
  }
  const sessions = new Map<string, import('onnxruntime-node').InferenceSession>();
  return {
    name: 'onnxruntime-node',
    accumulation: F32,
    prepare(cell, op, I) {
      if (op === 'backward') return undefined; // no BatchNormalizationGrad outside ORT training builds
      const key = `${cell.label}/${op}`;
      const training = op === 'train';
      return async () => {
        let s = sessions.get(key);
        if (!s) {
          // Default thread spinning kept: with allow_spinning = 0 a run took ~10× longer here.
          s = await ort.InferenceSession.create(bnModel(cell, training), { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all' });
          sessions.set(key, s);
        }
        const t = (a: Float32Array, dims: number[]) => new ort.Tensor('float32', a, dims);
        const out = await s.run({ X: t(I.x, cell.shape), S: t(I.gamma, [cell.C]), B: t(I.beta, [cell.C]), M: t(I.runningMean, [cell.C]), V: t(I.runningVar, [cell.C]) });
        return out['Y']!.data as Float32Array;
      };
    },
    async done() {
      // ORT's intra-op pool keeps spinning after a run; release it so it does not steal the
      // (two) cores from whoever is measured next.
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
}

// --- TF.js (wasm and cpu backends in the same process, switched with setBackend). ---------------

async function tfjsContenders(): Promise<Contender[]> {
  let tf: typeof import('@tensorflow/tfjs');
  try {
    tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    console.warn(`TF.js unavailable: ${(e as Error).message}`);
    return [];
  }
  const make = (backend: 'wasm' | 'cpu'): Contender => ({
    name: `TF.js ${backend}`,
    accumulation: F32,
    // One timed call (no warm-up) on the 6.4M-element cells: a call takes seconds there.
    maxIters: (cell) => (cell.numel > 1e6 ? 1 : 1000),
    prepare(cell, op, I) {
      const rank = cell.shape.length;
      const last = cell.axis === rank - 1;
      // Channel-first tensors go through NHWC (transpose, tf.batchNorm on the last axis, transpose
      // back): tf.batchNorm's kernels broadcast rank-1 statistics along the last axis only, and
      // the alternative, broadcasting [1,C,1,1] tensors through sub/mul/add, runs TF.js's generic
      // per-element broadcast indexing (seconds per call on the big cells, both backends).
      const toLast = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2), 1];
      const toFirst = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, k) => k + 1)];
      const axes = Array.from({ length: rank - 1 }, (_, k) => k);
      type T = import('@tensorflow/tfjs').Tensor;
      return async () => {
        if (tf.getBackend() !== backend) await tf.setBackend(backend);
        // dataSync() OUTSIDE tf.tidy: read back inside a tidy scope, the same graph ran 20-30×
        // slower on the wasm backend (580-720 ms vs 19-50 ms a call on [8,14,14,256]; 49 s vs
        // 2 s on [32,56,56,64]): that was the "8-14 s per call" of earlier runs.
        const result = tf.tidy(() => {
          const x = tf.tensor(I.x, cell.shape);
          const gamma = tf.tensor1d(I.gamma), beta = tf.tensor1d(I.beta);
          const inL = (t: T) => (last ? t : tf.transpose(t, toLast));
          const outL = (t: T) => (last ? t : tf.transpose(t, toFirst));
          if (op === 'infer') return outL(tf.batchNorm(inL(x), tf.tensor1d(I.runningMean), tf.tensor1d(I.runningVar), beta, gamma, EPS));
          const fwd = (xx: T) => {
            const xl = inL(xx);
            const { mean, variance } = tf.moments(xl, axes);
            return outL(tf.batchNorm(xl, mean, variance, beta, gamma, EPS));
          };
          if (op === 'train') return fwd(x);
          const [dx] = tf.grads((xx) => fwd(xx))([x], tf.tensor(I.dy, cell.shape));
          return dx!;
        });
        const out = result.dataSync() as Float32Array;
        result.dispose();
        return out;
      };
    },
  });
  const out: Contender[] = [];
  try {
    if (await tf.setBackend('wasm')) { await tf.ready(); out.push(make('wasm')); }
  } catch (e) {
    console.warn(`TF.js wasm backend failed: ${(e as Error).message}`);
  }
  await tf.setBackend('cpu');
  out.push(make('cpu'));
  return out;
}

// --- the copy yardstick ---------------------------------------------------------------------

const copyYardstick: Contender = {
  name: 'Float32Array.set copy',
  accumulation: F32,
  prepare(cell, _op, I) {
    const y = new Float32Array(cell.numel);
    return () => { y.set(I.x); return y; };
  },
};

/**
 * The same copy into a fresh output: what any op that returns a new array pays at least. The
 * array is allocated as cpu-f32 allocates its outputs (overwrittenOutput: not zero-filled, since
 * every element is written), so this is the floor of that kernel, not of the zero-fill.
 */
const freshCopyYardstick: Contender = {
  name: 'fresh array + set',
  accumulation: F32,
  prepare(cell, _op, I) {
    return () => { const y = overwrittenOutput(cell.numel); y.set(I.x); return y; };
  },
};
/**
 * The copy a kernel pays when it computes in memory the caller's arrays are not part of
 * (WebAssembly linear memory, a SharedArrayBuffer the workers see): x copied in and y copied out
 * through a cache-sized buffer (256 KiB), into a fresh output. Only the calling thread can touch
 * the caller's arrays, so no split over threads takes this below its time: the floor of the
 * calling thread in cpu-f32's wasm and threaded paths.
 */
const BOUNCE = 65536;
const bounceYardstick: Contender = {
  name: 'fresh array + copy in/out',
  accumulation: F32,
  prepare(cell, _op, I) {
    const buf = new Float32Array(BOUNCE);
    return () => {
      const y = overwrittenOutput(cell.numel);
      for (let k = 0; k < cell.numel; k += BOUNCE) {
        const n = Math.min(BOUNCE, cell.numel - k);
        buf.set(I.x.subarray(k, k + n));
        y.set(buf.subarray(0, n), k);
      }
      return y;
    };
  },
};
const YARDSTICKS = ['Float32Array.set copy', 'fresh array + set', 'fresh array + copy in/out'];

// ---------------------------------------------------------------------------------------------
// Timing: the contenders of a (cell, op) are interleaved round by round (one sample each per
// round, the order rotated every round), so load changes on the shared machine hit them all alike; a sample of a fast runner is
// a batch of calls (>= ~0.3 ms) so the timer's resolution does not matter. Medians.

interface Slot { c: Contender; run: Runner; cap: number; batch: number; times: number[]; out: Float32Array }

async function sample(s: Slot): Promise<void> {
  const t0 = performance.now();
  for (let k = 0; k < s.batch; k++) s.out = await s.run();
  s.times.push((performance.now() - t0) / s.batch);
}

/**
 * Untimed calls of every contender faster than 100 ms a call before its samples: enough for the
 * default engine's chooser to have timed both its paths KEEP times each (its first 2·KEEP calls
 * of a kind alternate them; src/kernels/cpu-f32/chooser.ts), which a user's first calls pay once
 * and a median of 15 samples would otherwise mostly show.
 */
const WARMUP = 2 * KEEP + 2;
/** Samples every contender gets at least (interleaved), whatever the time budget. */
const MIN_ROUNDS = 15;
/** A call this slow (ms) marks a runner sampled 5 times on its own instead. */
const SLOW_MS = 300;

async function measure(slots: Slot[], budgetMs: number): Promise<void> {
  for (const s of slots) {
    if (s.cap <= 1) continue; // capped slow runners: no warm-up
    let t0 = performance.now();
    s.out = await s.run();
    let per = performance.now() - t0;
    if (per < 100) {
      // WARMUP calls in all (the JIT; the default engine's chooser, which alternates its paths
      // for its first 2·KEEP calls of a kind before it settles), the last one timed
      for (let k = 1; k < WARMUP; k++) {
        t0 = performance.now();
        s.out = await s.run();
        per = performance.now() - t0;
      }
    }
    // Very slow runners (>= SLOW_MS a call: TF.js and the plain loop on the big cells) get 5
    // samples on their own; everyone else is interleaved for at least MIN_ROUNDS rounds.
    if (per >= SLOW_MS) s.cap = Math.min(s.cap, 5);
    s.batch = Math.max(1, Math.min(1000, Math.round(0.3 / Math.max(per, 1e-4))));
  }
  // Slow runners first, on their own (interleaving them would stretch every round).
  for (const s of slots) while (s.cap <= 5 && s.times.length < s.cap) await sample(s);
  const start = performance.now();
  for (let round = 0; ; round++) {
    let active = 0;
    // each round starts one contender later: whoever runs right after the allocating ones (the
    // plain loop, TF.js, the fresh-array yardstick) pays for their garbage collection, and with a
    // fixed order that was always the same contender
    for (let k = 0; k < slots.length; k++) {
      const s = slots[(k + round) % slots.length]!;
      if (s.times.length >= s.cap) continue;
      if (round >= MIN_ROUNDS && performance.now() - start > budgetMs) continue;
      if (s.times.length >= 200) continue;
      await sample(s);
      active++;
    }
    if (!active) break;
  }
}

const median = (t: number[]) => [...t].sort((a, b) => a - b)[t.length >> 1]!;

function fmtTime(ms: number): string {
  if (ms < 0.01) return `${(ms * 1000).toFixed(2)} µs`;
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

interface Row { cell: Cell; op: OpName; name: string; ms: number; gbs: number; err: number; ratio: number; iters: number; q1: number; q3: number; min: number }

async function main(): Promise<void> {
  const t0 = performance.now();
  // the default engine's worker threads are started before anything is timed (a user's first
  // large call would otherwise run on one thread while they load)
  await prewarmCpuF32Threads();
  // PLACEHOLDER first: in every run the first contender of this list measured slower (up to 1.8x
  // on the tiny cells) whatever engine it was (swapping the order moved the handicap with it; the
  // cause was not found), so a copy of the wasm engine takes that place and is not reported.
  const contenders: Contender[] = [{ ...ours('wasm'), name: PLACEHOLDER }, ours('auto'), ours('ts'), ours('wasm'), ours('auto', true), await onnxContender(), ...(WITHOUT_TFJS ? [] : await tfjsContenders()), plainJs, copyYardstick, freshCopyYardstick, bounceYardstick];
  const rows: Row[] = [];
  const loadAtStart = os.loadavg();
  let load = os.loadavg()[0]!;
  for (const cell of CELLS) {
    const I = makeInputs(cell);
    for (const op of OPS) {
      const judge = new Judge(cell, op, I);
      const bytes = (op === 'backward' ? 3 : 2) * cell.numel * 4;
      const slots: Slot[] = [];
      for (const c of contenders) {
        const run = c.prepare(cell, op, I);
        if (run) slots.push({ c, run, cap: c.maxIters?.(cell) ?? 1000, batch: 1, times: [], out: new Float32Array(0) });
      }
      // each (cell, op) starts from a collected heap: the previous cell's 25 MB arrays and TF.js's
      // tensors must not be collected inside someone else's timed call (npm run bench passes --expose-gc)
      (globalThis as { gc?: () => void }).gc?.();
      try {
        await measure(slots, cell.numel > 1e6 ? 2500 : 1200);
      } catch (e) {
        console.warn(`failed on ${cell.label} ${op}: ${(e as Error).message.split('\n')[0]}`);
      }
      for (const c of contenders) await c.done?.();
      for (const s of slots) {
        if (!s.times.length || s.c.name === PLACEHOLDER) continue;
        const ms = median(s.times);
        const { err, ratio } = YARDSTICKS.includes(s.c.name) ? { err: NaN, ratio: NaN } : judge.judge(s.out, s.c.accumulation);
        const sorted = [...s.times].sort((a, b) => a - b);
        const q1 = sorted[Math.floor((sorted.length - 1) / 4)]!, q3 = sorted[Math.ceil((3 * (sorted.length - 1)) / 4)]!;
        rows.push({ cell, op, name: s.c.name, ms, gbs: bytes / (ms * 1e6), err, ratio, iters: s.times.length, q1, q3, min: sorted[0]! });
        process.stdout.write(`${cell.layout} ${cell.label} ${op.padEnd(8)} ${s.c.name.padEnd(22)} ${fmtTime(ms).padStart(10)}  ${(bytes / (ms * 1e6)).toFixed(2)} GB/s  err ${err.toExponential(1)}  bound ratio ${ratio.toFixed(3)}  (${s.times.length}×${s.batch} runs, quartiles ${fmtTime(q1)}–${fmtTime(q3)})\n`);
      }
      load = Math.max(load, os.loadavg()[0]!);
    }
  }
  const wall = (performance.now() - t0) / 1000;
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, render(rows, wall, contenders.map((c) => c.name).filter((n) => n !== PLACEHOLDER), load, loadAtStart));
  console.log(`\nwrote ${OUT} (${wall.toFixed(0)} s, peak 1-min load average ${load.toFixed(1)})`);
}

/** The compact table docs/bench.md carries: each engine, the fastest peer, the issue's targets. */
function summary(rows: Row[], main: string, others: string[], peers: string[]): string[] {
  const out = [`| cell | ${main} | ${others.join(' | ')} | fastest peer | default vs fastest (>1: ours faster) | the same, fastest samples | copy | targets (medians) |`, `| --- | --- | ${others.map(() => '---').join(' | ')} | --- | --- | --- | --- | --- |`];
  for (const cell of CELLS) {
    for (const op of OPS) {
      const byName = new Map(rows.filter((r) => r.cell === cell && r.op === op).map((r) => [r.name, r]));
      const us = byName.get(main);
      if (!us) continue;
      const best = peers.map((p) => byName.get(p)).filter((r): r is Row => r !== undefined).reduce<Row | undefined>((b, r) => (!b || r.ms < b.ms ? r : b), undefined);
      const copy = byName.get(YARDSTICKS[0]!);
      // the same comparison on each contender's fastest sample (what the code does when it keeps
      // its core; peers sampled once are left out: their one sample is not a minimum)
      const bestMin = peers.map((p) => byName.get(p)).filter((r): r is Row => r !== undefined && r.iters > 1).reduce<Row | undefined>((b, r) => (!b || r.min < b.min ? r : b), undefined);
      out.push(`| ${cell.layout} ${cell.label} ${op} | ${fmtTime(us.ms)} | ${others.map((o) => (byName.get(o) ? fmtTime(byName.get(o)!.ms) : 'n/a')).join(' | ')} | ${best ? `${best.name} ${fmtTime(best.ms)}` : 'n/a'} | ${best ? `${(best.ms / us.ms).toFixed(2)}×` : 'n/a'} | ${bestMin && bestMin.iters > 1 ? `${(bestMin.min / us.min).toFixed(2)}× (${bestMin.name})` : 'n/a'} | ${copy ? fmtTime(copy.ms) : 'n/a'} | ${targetsOf(cell, op, byName, us, copy)} |`);
    }
  }
  return out;
}

/**
 * The issue's targets for one cell: >= 1.0x onnxruntime-node, >= 1.5x TF.js wasm, >= 1.0x the
 * plain loop on the tiny cells, and the large training forward at >= 50% of the copy's bandwidth.
 */
function targetsOf(cell: Cell, op: OpName, byName: Map<string, Row>, us: Row, copy: Row | undefined): string {
  const missed: string[] = [];
  const vs = (name: string) => { const r = byName.get(name); return r ? r.ms / us.ms : undefined; };
  const ort = vs('onnxruntime-node'), tfw = vs('TF.js wasm'), plain = vs('plain JS two-pass');
  if (ort !== undefined && ort < 1) missed.push(`onnxruntime ${ort.toFixed(2)}×`);
  if (tfw !== undefined && tfw < 1.5) missed.push(`TF.js wasm ${tfw.toFixed(2)}×`);
  if (cell.numel < 1000 && plain !== undefined && plain < 1) missed.push(`plain JS ${plain.toFixed(2)}×`);
  const bounce = byName.get(YARDSTICKS[2]!);
  const kept = byName.get(INTO_LABEL);
  const floor = [kept && copy ? `into a kept output: ${((kept.gbs / copy.gbs) * 100).toFixed(0)}%` : '', bounce && copy ? `copy in/out alone: ${((bounce.gbs / copy.gbs) * 100).toFixed(0)}%` : ''].filter(Boolean).join('; ');
  const floorText = floor ? ` (${floor})` : '';
  if (op === 'train' && cell.numel > 1e6 && copy && us.gbs < copy.gbs / 2) missed.push(`bandwidth ${((us.gbs / copy.gbs) * 100).toFixed(0)}% of copy${floorText}`);
  return missed.length ? `missed: ${missed.join(', ')}` : 'met';
}

function render(rows: Row[], wall: number, names: string[], load: number, loadAtStart: number[]): string {
  const ourNames = names.filter((n) => n.startsWith('cpu-f32'));
  const peers = names.filter((n) => !n.startsWith('cpu-f32') && !YARDSTICKS.includes(n));
  const main = ourNames[0] ?? '';
  const others = ourNames.slice(1);
  const lines: string[] = [];
  lines.push('# Benchmark: cpu-f32 against its peers', '');
  lines.push(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), Node ${process.version}, in one process; total ${wall.toFixed(0)} s; load average at the start ${loadAtStart.map((l) => l.toFixed(1)).join(', ')} (1, 5, 15 min), peak 1-minute load average during the run ${load.toFixed(1)} (the machine was shared: with a load above the core count every thread waits for its turn, which costs a threaded call more than a single-thread one).`, '');
  lines.push('- Times are medians of interleaved samples (one sample per contender per round, the order rotated every round, at least 15 rounds; a sample of a fast runner is a batch of calls; runners slower than 300 ms a call get 5 samples on their own, TF.js on the 6.4M-element cells one call), end to end from Float32Array inputs to a Float32Array output (library tensors created and read back inside the timed region). In the Times table, [q1–q3, min] is the interquartile range and the fastest sample: the spread on a shared machine, where a call that loses its core for a while lands in the upper quartile; the minimum is what the code does when it keeps the core.');
  lines.push(`- The default engine (\`auto\`) times its threaded and single-thread paths itself and keeps the one with the smaller median time, threads only when 1.1× faster (re-timing the other every 16th call, every 128th once they are 1.25× apart; src/kernels/cpu-f32/chooser.ts): its samples include those re-timings. Its first ${2 * KEEP} calls of a kind alternate the two paths; every contender faster than 100 ms a call gets ${WARMUP} untimed calls before its samples, so that learning (paid once by a user's first calls) is not in the medians.`);
  lines.push('- GB/s counts the bytes an op must move at least once (forward: x + y; backward: x + dy + dx). Yardsticks: `Float32Array.set copy` into a preallocated array; `fresh array + set` (allocate the output as cpu-f32 does, without zero-filling it since every element is then written, and copy), the floor for any op that returns a new array; and `fresh array + copy in/out` (x copied into a 256 KiB buffer and out of it into a fresh y, chunk by chunk), the floor of the calling thread for a kernel that computes in memory the caller\'s arrays are not part of (WebAssembly linear memory, shared memory for workers): only the calling thread can read x and write y, so no split over threads goes below it.');
  lines.push('- err = max |out − ref| / max(1, |ref|) of the main output (y for the forwards, dx for backward) against the project reference (`createReference`, compensated float64, through `expectationFor` in src/judge/compare.ts); ratio = worst |out − ref| / tolerance bound (≤ 1 passes), under the accumulation each contender declares (cpu-f32 and plain JS: float64 sequential; onnxruntime and TF.js: float32 sequential).');
  lines.push('- onnx profile conventions (eps 1e-5, momentum 0.9). Backward is the training backward (gradients through the batch statistics); onnxruntime-node has no BatchNormalizationGrad outside training builds. TF.js runs channel-first tensors through transposes to NHWC (see scripts/bench.ts), and gets one timed call on the 6.4M-element cells.', '');
  if (WITHOUT_TFJS) lines.push('- Run with `--without-tfjs`: TF.js was not loaded in this process.', '');
  lines.push('Reproduce: `npm run bench` (= `npx tsx scripts/bench.ts`); `--quick` for the two small shapes only; `--shape N,C,H,W` for one shape; `--without-tfjs` to leave TF.js out of the process; `--out FILE` to write elsewhere.', '');
  lines.push('## Summary', '');
  lines.push(...summary(rows, main, others, peers), '');
  lines.push('## Times', '');
  const header = ['layout', 'shape', 'op', ...names];
  lines.push(`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`);
  const cellOps: Array<[Cell, OpName, Map<string, Row>]> = [];
  for (const cell of CELLS) {
    for (const op of OPS) {
      const byName = new Map(rows.filter((r) => r.cell === cell && r.op === op).map((r) => [r.name, r]));
      if (!byName.size) continue;
      cellOps.push([cell, op, byName]);
      const cols = names.map((n) => {
        const r = byName.get(n);
        if (!r) return 'n/a';
        const acc = Number.isNaN(r.err) ? '' : ` (err ${r.err.toExponential(0)}, ratio ${r.ratio < 0.01 ? r.ratio.toExponential(0) : r.ratio.toFixed(2)})`;
        const spread = r.iters >= 4 ? ` [${fmtTime(r.q1)}–${fmtTime(r.q3)}, min ${fmtTime(r.min)}]` : '';
        return `${fmtTime(r.ms)}${spread}${acc}`;
      });
      lines.push(`| ${cell.layout} | ${cell.label} | ${op} | ${cols.join(' | ')} |`);
    }
  }
  lines.push('', `## ${main} against each peer (peer time / ours: > 1 means ours is faster) and bandwidth`, '');
  const h2 = ['layout', 'shape', 'op', ...peers.map((p) => `vs ${p}`), 'best peer', `${main} vs best`, ...others.map((o) => `${o} vs best`), `${main} GB/s`, 'copy GB/s', 'fresh+copy GB/s', 'copy in/out GB/s', 'targets'];
  lines.push(`| ${h2.join(' | ')} |`, `| ${h2.map(() => '---').join(' | ')} |`);
  for (const [cell, op, byName] of cellOps) {
    const us = byName.get(main);
    const peerRows = peers.map((p) => byName.get(p)).filter((r): r is Row => r !== undefined);
    const best = peerRows.reduce<Row | undefined>((b, r) => (!b || r.ms < b.ms ? r : b), undefined);
    const rel = (r: Row | undefined, mine: Row | undefined) => (r && mine ? `${(r.ms / mine.ms).toFixed(2)}×` : 'n/a');
    const copy = byName.get(YARDSTICKS[0]!), fresh = byName.get(YARDSTICKS[1]!), bounce = byName.get(YARDSTICKS[2]!);
    const goal = us ? targetsOf(cell, op, byName, us, copy) : 'n/a';
    lines.push(`| ${cell.layout} | ${cell.label} | ${op} | ${peers.map((p) => rel(byName.get(p), us)).join(' | ')} | ${best?.name ?? 'n/a'} | ${rel(best, us)} | ${others.map((o) => rel(best, byName.get(o))).join(' | ')} | ${us ? us.gbs.toFixed(2) : 'n/a'} | ${copy ? copy.gbs.toFixed(1) : 'n/a'} | ${fresh ? fresh.gbs.toFixed(1) : 'n/a'} | ${bounce ? bounce.gbs.toFixed(1) : 'n/a'} | ${goal} |`);
  }
  lines.push('');
  return lines.join('\n');
}

await main();
