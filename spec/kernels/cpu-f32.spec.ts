/**
 * The float32 CPU kernel against a plain float64 two-pass Batch Normalization written here
 * (independent of the kernel's shifted single pass), on a grid of shapes, axes and profiles.
 *
 * Bound used (documented, not a tuned constant): the kernel computes in float64 and rounds each
 * output once, so every output must sit within a few float32 ulps of the float64 result:
 *   |out - ref| <= 4u·(|ref| + scale) + 2⁻⁴⁸·scale·r,   u = 2⁻²⁴,
 * where `scale` is the output's natural magnitude (|gamma| for y, Σ|terms| for sums) and
 * r = |mean|/sqrt(var + eps) the offset-to-spread ratio. The r term is float64 rounding only, so
 * a one-pass E[x²] - E[x]² kernel (error ~2⁻⁵³·r² even in float64) fails the large-offset case.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BatchNormImplementation, Profile, ProfileName } from '../../src/contract/contract.js';
import { BatchNormInputError, SingleValuePerChannelError, UnsupportedDTypeError } from '../../src/contract/errors.js';
import { layoutOf } from '../../src/contract/layout.js';
import { effectiveEps, emaWeights, resolveProfile, runningVarFactor } from '../../src/contract/profiles.js';
import { createCpuF32, prewarmCpuF32Threads, type CpuEngineName } from '../../src/kernels/cpu-f32/index.js';
import * as threads from '../../src/kernels/cpu-f32/threads.js';
import * as wasmEngine from '../../src/kernels/cpu-f32/wasm-engine.js';
import { choosePath, EXPLORE_EVERY, EXPLORE_RARELY, KEEP, recordPath, SPLIT_MARGIN } from '../../src/kernels/cpu-f32/chooser.js';
import { accumulationFor, compareWithReference } from '../../src/judge/compare.js';
import type { Op } from '../../src/contract/contract.js';
import { mulberry32 as rng } from '../../src/numerics/random.js';
import { assemble, generatedModule, generatedPath, WAT_SOURCES } from '../../scripts/build-wasm.js';

const U = 2 ** -24;
const ENGINES: CpuEngineName[] = ['auto', 'ts', 'wasm'];


function f32(n: number, f: (i: number) => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}

/** Plain float64 two-pass BN over the (o, c, i) view. */
function reference(x: Float32Array, shape: number[], axis: number) {
  const { outer, channels: C, inner, m } = layoutOf(shape, axis);
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) s += x[(o * C + c) * inner + i]!;
    mean[c] = s / m;
    let q = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) q += (x[(o * C + c) * inner + i]! - mean[c]!) ** 2;
    variance[c] = q / m;
  }
  const at = (o: number, c: number, i: number) => (o * C + c) * inner + i;
  return { outer, C, inner, m, mean, variance, at };
}

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, scale: (k: number) => number, r: (k: number) => number = () => 0): void {
  expect(got.length, `${name} length`).toBe(want.length);
  let worst = -Infinity;
  let where = -1;
  for (let k = 0; k < want.length; k++) {
    const bound = 4 * U * (Math.abs(want[k]!) + scale(k)) + 2 ** -48 * scale(k) * r(k);
    const excess = Math.abs(got[k]! - want[k]!) - bound;
    if (!(excess <= worst) || Number.isNaN(got[k]!)) {
      worst = Number.isNaN(got[k]!) ? Infinity : excess;
      where = k;
    }
  }
  expect(worst, `${name}[${where}] = ${got[where]} vs ${want[where]}`).toBeLessThanOrEqual(0);
}

interface Case {
  shape: number[];
  axis: number;
  profile: ProfileName | Profile;
  x: Float32Array;
  seed: number;
}

function makeCase(shape: number[], axis: number, profile: ProfileName | Profile, seed: number, gen?: (i: number, rand: () => number) => number): Case {
  const rand = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const x = f32(n, (i) => (gen ? gen(i, rand) : (rand() - 0.3) * 4));
  return { shape, axis, profile, x, seed };
}

function checkAll(impl: BatchNormImplementation, k: Case): void {
  const profile = resolveProfile(k.profile);
  const { shape, axis, x } = k;
  const rand = rng(k.seed + 1);
  const { outer, C, inner, m, mean, variance, at } = reference(x, shape, axis);
  const gamma = f32(C, () => 0.5 + rand());
  const beta = f32(C, () => rand() - 0.5);
  const runningMean = f32(C, () => rand());
  const runningVar = f32(C, () => 0.5 + rand());
  const dy = f32(x.length, () => rand() * 2 - 1);
  const eps = profile.defaultEps;
  const momentum = profile.defaultMomentum;
  const e = effectiveEps(profile, eps);
  const chan = (idx: number) => Math.floor(idx / inner) % C;
  const ratio = (c: number) => Math.abs(mean[c]!) / Math.sqrt(variance[c]! + e);

  // Training forward.
  const tr = impl.forwardTrain!({ x, shape, axis, gamma, beta, eps, momentum, runningMean, runningVar }) as ReturnType<NonNullable<BatchNormImplementation['forwardTrain']>> & object;
  if (tr instanceof Promise) throw new Error('cpu-f32 must be synchronous');
  const yRef = new Float64Array(x.length);
  for (let idx = 0; idx < x.length; idx++) {
    const c = chan(idx);
    yRef[idx] = m === 1 ? beta[c]! : (gamma[c]! * (x[idx]! - mean[c]!)) / Math.sqrt(variance[c]! + e) + beta[c]!;
  }
  expect(tr.y).toBeInstanceOf(Float32Array);
  // The wasm engine normalizes in float32 ((x - mean)·a + b), so y's natural scale is |gamma|·(1 + |x̂|).
  expectClose('y', tr.y, yRef, (idx) => Math.abs(gamma[chan(idx)]!) * (1 + Math.abs(x[idx]! - mean[chan(idx)]!) / Math.sqrt(variance[chan(idx)]! + e)), (idx) => ratio(chan(idx)));
  expectClose('mean', tr.mean, mean, (c) => Math.abs(mean[c]!) * 0 + Math.sqrt(variance[c]!) * 1e-9);
  // var: float64 error is 2⁻⁵³·m-ish relative to the squares' scale; the bound's 4u|ref| covers it.
  expectClose('variance', tr.variance, variance, () => 0);
  const { keep, take } = emaWeights(profile, momentum);
  const factor = runningVarFactor(profile, m);
  expectClose('runningMean', tr.runningMean, Array.from(mean, (v, c) => keep * runningMean[c]! + take * v), (c) => Math.abs(keep * runningMean[c]!) + Math.abs(take * mean[c]!));
  expectClose('runningVar', tr.runningVar, Array.from(variance, (v, c) => keep * runningVar[c]! + take * v * factor), (c) => Math.abs(keep * runningVar[c]!));

  // Inference forward.
  const inf = impl.forwardInfer!({ x, shape, axis, gamma, beta, eps, runningMean, runningVar }) as { y: Float32Array };
  const yInf = Float64Array.from(x, (v, idx) => {
    const c = chan(idx);
    return (gamma[c]! * (v - runningMean[c]!)) / Math.sqrt(runningVar[c]! + e) + beta[c]!;
  });
  expectClose('y(infer)', inf.y, yInf, (idx) => {
    const c = chan(idx);
    return Math.abs(gamma[c]!) * (1 + Math.abs(runningMean[c]!) / Math.sqrt(runningVar[c]! + e));
  });

  // Backward, training and inference.
  for (const training of [true, false]) {
    if (training && m === 1 && profile.singleValue === 'error') continue;
    const res = impl.backward!({ x, dy, shape, axis, gamma, eps, training, runningMean, runningVar }) as { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array };
    const mu = training ? mean : Float64Array.from(runningMean);
    const vr = training ? variance : Float64Array.from(runningVar);
    const sumDy = new Float64Array(C), sumDyXhat = new Float64Array(C), absDy = new Float64Array(C), absDyXhat = new Float64Array(C);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < C; c++) {
        for (let i = 0; i < inner; i++) {
          const idx = at(o, c, i);
          const xh = (x[idx]! - mu[c]!) / Math.sqrt(vr[c]! + e);
          sumDy[c] = sumDy[c]! + dy[idx]!;
          sumDyXhat[c] = sumDyXhat[c]! + dy[idx]! * xh;
          absDy[c] = absDy[c]! + Math.abs(dy[idx]!);
          absDyXhat[c] = absDyXhat[c]! + Math.abs(dy[idx]! * xh);
        }
      }
    }
    const dxRef = new Float64Array(x.length);
    const dxScale = new Float64Array(x.length);
    for (let idx = 0; idx < x.length; idx++) {
      const c = chan(idx);
      const is = 1 / Math.sqrt(vr[c]! + e);
      const xh = (x[idx]! - mu[c]!) * is;
      const g = gamma[c]!;
      dxRef[idx] = training ? g * is * (dy[idx]! - sumDy[c]! / m - (xh * sumDyXhat[c]!) / m) : dy[idx]! * g * is;
      dxScale[idx] = Math.abs(g) * is * (Math.abs(dy[idx]!) + absDy[c]! / m + (Math.abs(xh) * absDyXhat[c]!) / m);
    }
    const tag = training ? 'train' : 'infer';
    expectClose(`dx(${tag})`, res.dx, dxRef, (idx) => dxScale[idx]!, (idx) => (training ? ratio(chan(idx)) : 0));
    expectClose(`dgamma(${tag})`, res.dgamma, sumDyXhat, (c) => absDyXhat[c]! * (training ? 1 + ratio(c) * 1e-6 : 1));
    expectClose(`dbeta(${tag})`, res.dbeta, sumDy, (c) => absDy[c]!);
  }
}

const GRID: Array<[number[], number]> = [
  [[4, 3], 1], // NC
  [[4, 3], 0], // channel first of a 2-D array
  [[5, 1], 1], // one channel
  [[2, 3, 5], 1], // NCL, short runs (lanes path)
  [[2, 3, 5], 2], // NLC
  [[3, 4, 20], 1], // NCL, long runs (runs path, odd tail)
  [[2, 3, 4, 5], 1], // NCHW, inner 20
  [[2, 3, 4, 5], 3], // NHWC
  [[2, 5, 3, 2], 1], // NCHW, inner 6 (lanes merged per channel)
  [[2, 4, 5, 7], 2], // a middle axis
  [[2, 2, 3, 2, 3], 1], // NCDHW
  [[2, 3, 2, 2, 3], 4], // NDHWC
  [[1, 3, 2, 2, 5], 1], // outer 1: one run per channel
  [[33, 7], 1], // odd row count
  // Above TINY_NUMEL (1024; smaller tensors take the direct two-pass loops of tiny.ts):
  [[4, 6, 8, 8], 1], // NCHW runs path of the TS engine (the wasm engine's TS fallback below 2048)
  [[3, 6, 8, 16], 1], // NCHW, numel 2304: the wasm engine's runs path
  // At or above the wasm engine's WASM_MIN_NUMEL (2048): its rows (channels-last) SIMD path.
  [[4, 9, 9, 13], 3], // NHWC, 13 lanes (the last 4-lane block is padding-read)
  [[33, 70], 1], // NC, odd row count (the last row of a chunk goes through JS)
  [[5, 40, 3, 5], 1], // NCHW, inner 15: rows path with 600 lanes merged per channel
];
const PROFILES: Array<ProfileName | Profile> = ['keras', 'tensorflow-fused', 'pytorch', 'onnx', 'paper',
  { name: 'floor', momentum: 'decay', runningVar: 'unbiased', defaultEps: 1e-9, defaultMomentum: 0.5, minEps: 1e-3, singleValue: 'allowed' }];

it('the committed WebAssembly bytes are what wabt assembles from the .wat source (else: npm run build)', async () => {
  for (const wat of WAT_SOURCES) {
    const bytes = await assemble(wat, readFileSync(wat, 'utf8'));
    expect(readFileSync(generatedPath(wat), 'utf8'), generatedPath(wat)).toBe(generatedModule(wat, bytes));
  }
});

describe.each(ENGINES)('cpu-f32 engine %s', (engine) => {
  it('describes itself per the contract', () => {
    const impl = createCpuF32('pytorch', { engine });
    expect(impl.name).toBe('cpu-f32');
    expect(impl.dtypes).toEqual(['float32', 'float16', 'bfloat16']);
    expect(impl.precisions).toEqual([
      { dtype: 'float32', paramDtype: 'float32' },
      { dtype: 'float16', paramDtype: 'float32' },
      { dtype: 'bfloat16', paramDtype: 'float32' },
    ]);
    expect(impl.axes).toBe('any');
    expect(impl.accumulation).toEqual({ dtype: 'float64', order: 'sequential' });
    expect(resolveProfile(impl.profile).name).toBe('pytorch');
  });

  describe.each(PROFILES.map((p) => [typeof p === 'string' ? p : p.name, p] as const))('profile %s', (_name, profile) => {
    it.each(GRID.map(([s, a], k) => [s.join('x'), a, s, k] as const))('shape %s axis %d', (_s, axis, shape, k) => {
      checkAll(createCpuF32(profile, { engine }), makeCase(shape, axis, profile, 1000 + k));
    });
  });

  it('m = 2 per channel', () => {
    checkAll(createCpuF32('pytorch', { engine }), makeCase([2, 6], 1, 'pytorch', 7));
    checkAll(createCpuF32('keras', { engine }), makeCase([2, 3, 1, 1], 1, 'keras', 8));
  });

  it('m = 1: variance 0 and y = beta where allowed, a named error where not', () => {
    for (const profile of ['keras', 'onnx', 'tensorflow-fused'] as const) {
      const impl = createCpuF32(profile, { engine });
      const k = makeCase([1, 4], 1, profile, 9);
      checkAll(impl, k);
      const beta = f32(4, (i) => i - 1.5);
      const one = f32(4, () => 1);
      // eps = 0 still gives y = beta exactly (no 0·Infinity).
      const r = impl.forwardTrain!({ x: k.x, shape: [1, 4], axis: 1, gamma: one, beta, eps: 0, momentum: 0.9, runningMean: one, runningVar: one }) as { y: Float32Array; variance: Float32Array };
      expect(Array.from(r.y)).toEqual(Array.from(beta));
      expect(Array.from(r.variance)).toEqual([0, 0, 0, 0]);
    }
    for (const profile of ['pytorch', 'paper'] as const) {
      const impl = createCpuF32(profile, { engine });
      const one = f32(2, () => 1);
      const req = { x: f32(2, (i) => i), shape: [1, 2, 1], axis: 1, gamma: one, beta: one, eps: 1e-5, momentum: 0.1, runningMean: one, runningVar: one };
      expect(() => impl.forwardTrain!(req)).toThrow(SingleValuePerChannelError);
      expect(() => impl.backward!({ ...req, dy: one, training: true })).toThrow(SingleValuePerChannelError);
      // Inference has no batch statistics: m = 1 is fine there.
      expect((impl.forwardInfer!(req) as { y: Float32Array }).y).toHaveLength(2);
    }
  });

  it('a constant channel gives y = beta and variance exactly 0', () => {
    const shape = [4, 3, 17];
    const k = makeCase(shape, 1, 'keras', 11, (i, rand) => (Math.floor(i / 17) % 3 === 1 ? 2.5 : rand()));
    checkAll(createCpuF32('keras', { engine }), k);
    const one = f32(3, () => 1);
    const beta = f32(3, (i) => i + 0.25);
    const r = createCpuF32('keras', { engine }).forwardTrain!({ x: k.x, shape, axis: 1, gamma: one, beta, eps: 1e-3, momentum: 0.9, runningMean: one, runningVar: one }) as { y: Float32Array; mean: Float32Array; variance: Float32Array };
    expect(r.variance[1]).toBe(0);
    expect(r.mean[1]).toBe(2.5);
    for (let o = 0; o < 4; o++) for (let i = 0; i < 17; i++) expect(r.y[(o * 3 + 1) * 17 + i]).toBe(1.25);
  });

  it.each([
    ['NCHW', [4, 3, 8, 8], 1],
    ['NHWC', [4, 8, 8, 3], 3],
    ['NC', [200, 5], 1],
  ] as const)('large offset (mean 1e4, std 1e-2) stays accurate: %s', (_n, shape, axis) => {
    const k = makeCase([...shape], axis, 'pytorch', 13, (_i, rand) => 1e4 + (rand() - 0.5) * 0.0346);
    checkAll(createCpuF32('pytorch', { engine }), k);
    const r = createCpuF32('pytorch', { engine }).forwardTrain!({ x: k.x, shape: [...shape], axis, gamma: f32(shape[axis]!, () => 1), beta: new Float32Array(shape[axis]!), eps: 1e-5, momentum: 0.1, runningMean: new Float32Array(shape[axis]!), runningVar: new Float32Array(shape[axis]!) }) as { variance: Float32Array };
    // One-pass float32 would give a negative or wildly wrong variance here (~1e-4 expected).
    for (const v of r.variance) expect(v).toBeGreaterThan(5e-5), expect(v).toBeLessThan(2e-4);
  });

  // The project's judge: the compensated float64 reference under the ONE tolerance function,
  // with the accumulation the kernel declares. (The checks above are tighter, by design.)
  it.each([
    ['NCHW', [4, 6, 5, 5], 1, 'pytorch', undefined],
    ['NHWC', [3, 5, 4, 6], 3, 'keras', undefined],
    ['NC', [64, 9], 1, 'onnx', undefined],
    ['NCDHW', [2, 3, 2, 3, 4], 1, 'tensorflow-fused', undefined],
    ['m = 2', [2, 5], 1, 'paper', undefined],
    ['m = 1', [1, 4], 1, 'keras', undefined],
    ['offset NCHW', [4, 3, 8, 8], 1, 'pytorch', 1e4],
    ['offset NCHW (runs paths)', [4, 6, 8, 16], 1, 'pytorch', 1e4],
    ['offset NHWC', [4, 8, 8, 3], 3, 'onnx', 1e4],
    ['offset NHWC (wasm rows path)', [4, 9, 9, 13], 3, 'onnx', 1e4],
    ['NHWC over several wasm chunks, odd last chunk', [7, 41, 99, 9], 3, 'keras', undefined],
    ['tiny NHWC', [2, 4, 4, 3], 3, 'pytorch', undefined],
  ] as const)('passes the reference comparator: %s', (_n, shape, axis, profileName, offset) => {
    const impl = createCpuF32(profileName, { engine });
    const profile = resolveProfile(profileName);
    const k = makeCase([...shape], axis, profileName, 21, offset ? (_i, rand) => offset + (rand() - 0.5) * 0.0346 : undefined);
    const C = shape[axis]!;
    const rand = rng(22);
    const p = (f: () => number) => f32(C, f);
    const base = {
      x: k.x, dy: f32(k.x.length, () => rand() * 2 - 1), shape: [...shape], axis, gamma: p(() => 0.5 + rand()), beta: p(() => rand() - 0.5),
      eps: profile.defaultEps, momentum: profile.defaultMomentum, runningMean: p(() => rand()), runningVar: p(() => 0.5 + rand()),
    };
    const opts = { accumulation: accumulationFor(impl, 'float32') };
    const calls: Array<[Op, object, () => unknown]> = [
      ['forwardTrain', base, () => impl.forwardTrain!(base)],
      ['forwardInfer', base, () => impl.forwardInfer!(base)],
      ['backward', { ...base, training: true }, () => impl.backward!({ ...base, training: true })],
      ['backward', { ...base, training: false }, () => impl.backward!({ ...base, training: false })],
    ];
    for (const [op, req, call] of calls) {
      const got = call() as Record<string, Float32Array>;
      const cmp = compareWithReference(op, profile, req as never, got, opts);
      expect(cmp.ok, `${op}: ${JSON.stringify(cmp.worst)} ${cmp.reason}`).toBe(true);
    }
  });

  it('never modifies its inputs', () => {
    const impl = createCpuF32('onnx', { engine });
    for (const [shape, axis] of [[[2, 3, 4, 5], 1], [[2, 4, 5, 3], 3], [[3, 4, 20], 1]] as const) {
      const rand = rng(5);
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[axis]!;
      const arrays = {
        x: f32(n, () => rand()), dy: f32(n, () => rand()), gamma: f32(C, () => rand()), beta: f32(C, () => rand()),
        runningMean: f32(C, () => rand()), runningVar: f32(C, () => 1 + rand()),
      };
      const before = Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, Array.from(v)]));
      const base = { ...arrays, shape: [...shape], axis, eps: 1e-5, momentum: 0.9 };
      impl.forwardTrain!(base);
      impl.forwardInfer!(base);
      impl.backward!({ ...base, training: true });
      impl.backward!({ ...base, training: false });
      for (const [k, v] of Object.entries(arrays)) expect(Array.from(v), k).toEqual(before[k]);
      expect(base.shape).toEqual([...shape]);
    }
  });

  it('rejects bad requests with named errors', () => {
    const impl = createCpuF32('keras', { engine });
    const one = f32(3, () => 1);
    const ok = { x: f32(6, (i) => i), shape: [2, 3], axis: 1, gamma: one, beta: one, eps: 1e-3, momentum: 0.99, runningMean: one, runningVar: one };
    expect(() => impl.forwardTrain!({ ...ok, x: f32(5, () => 0) })).toThrow(BatchNormInputError);
    expect(() => impl.forwardTrain!({ ...ok, axis: 2 })).toThrow(BatchNormInputError);
    expect(() => impl.forwardTrain!({ ...ok, shape: [6] })).toThrow(BatchNormInputError);
    expect(() => impl.forwardInfer!({ ...ok, gamma: f32(2, () => 1) })).toThrow(BatchNormInputError);
    expect(() => impl.forwardInfer!({ ...ok, eps: -1 })).toThrow(BatchNormInputError);
    expect(() => impl.backward!({ ...ok, dy: f32(6, () => 1), training: false, runningVar: undefined })).toThrow(BatchNormInputError);
    const d = (n: number) => new Float64Array(n).fill(1);
    expect(() => impl.forwardTrain!({ ...ok, x: d(6), gamma: d(3), beta: d(3), runningMean: d(3), runningVar: d(3) })).toThrow(UnsupportedDTypeError);
    expect(() => createCpuF32('nope' as ProfileName)).toThrow(/unknown profile/);
  });
});

// The auto engine's threaded ops (src/kernels/cpu-f32/threads.ts), forced on for every size: the same checks
// on shapes whose outer slices split over the pool, in both layout families. The counter proves
// the split ran (a silent single-thread fallback would pass the numerics but not this).
describe('cpu-f32 auto engine, ops split over the worker pool', () => {
  beforeAll(async () => {
    // before the pool is warm, a threaded call runs on one thread (and starts the workers)
    const before = threads.counters.threaded;
    checkAll(createCpuF32('onnx', { threads: 'always' }), makeCase([8, 6, 8, 8], 1, 'onnx', 30));
    expect(threads.counters.threaded).toBe(before);
    await prewarmCpuF32Threads();
  });
  it.each([
    [[8, 6, 8, 8], 1, 'pytorch'], // NCHW: per-channel runs
    [[4, 9, 9, 13], 3, 'keras'], // NHWC: per-lane rows, 13 lanes
    [[33, 70], 1, 'onnx'], // NC, odd row counts per part
    [[5, 40, 3, 5], 1, 'tensorflow-fused'], // inner 15: rows path, lanes merged per channel
  ] as const)('shape %j axis %d (%s)', (shape, axis, profile) => {
    const before = threads.counters.threaded;
    checkAll(createCpuF32(profile, { threads: 'always' }), makeCase([...shape], axis, profile, 31));
    expect(threads.counters.threaded - before, 'threaded calls (train, infer, backward x2)').toBe(4);
  });
});

// The pipeline of channel groups (threads.ts): large channel-contiguous training forwards, each
// group trained by whichever thread claims it with the single thread's own code, so the result
// must be the single thread's bit for bit, however the groups fall between the threads.
describe('cpu-f32 training forward pipelined by channel groups over the worker pool', () => {
  // 2.8M floats (above the whole-tensor copy), m = 90,000: groups of 2 channels, the 16th of 1
  const shape = [4, 31, 150, 150];
  const L = layoutOf(shape, 1);
  const C = L.channels;
  const r = rng(41);
  const x = f32(L.outer * C * L.inner, (i) => 50 * ((i / L.inner) % C) + 3 * r() - 1.5);
  const gamma = f32(C, (c) => 0.5 + c / 8), beta = f32(C, (c) => c - 4);
  const stats = () => ({ mean: new Float64Array(C), variance: new Float64Array(C) });
  const single = { y: new Float32Array(x.length), stats: stats() };
  beforeAll(async () => {
    await prewarmCpuF32Threads();
    expect(wasmEngine.groupSize(L), 'channels per group').toBe(2);
    expect(threads.pipelines(L), 'the shape is pipelined').toBe(true);
    wasmEngine.forwardTrain(x, single.y, L, gamma, beta, 1e-3, single.stats);
  });
  const pipelined = () => {
    const got = { y: new Float32Array(x.length), stats: stats() };
    const before = threads.counters.threaded;
    expect(threads.forwardTrain(x, got.y, L, gamma, beta, 1e-3, got.stats), 'the pool took the call').toBe(true);
    expect(threads.counters.threaded - before).toBe(1);
    return got;
  };
  const expectSameBits = (got: ReturnType<typeof pipelined>) => {
    expect(Buffer.from(got.y.buffer).equals(Buffer.from(single.y.buffer)), 'y bit for bit').toBe(true);
    expect([...got.stats.mean]).toEqual([...single.stats.mean]);
    expect([...got.stats.variance]).toEqual([...single.stats.variance]);
  };
  it('one thread a group at a time, and the pipeline through the public API, match the float64 two-pass reference (all ops)', () => {
    const k = makeCase(shape, 1, 'pytorch', 43, (i, rand) => 50 * (Math.floor(i / L.inner) % C) + 3 * rand());
    checkAll(createCpuF32('pytorch', { engine: 'wasm' }), k);
    const before = threads.counters.threaded;
    checkAll(createCpuF32('pytorch', { threads: 'always' }), k);
    expect(threads.counters.threaded - before, 'threaded calls (train, infer, backward x2)').toBe(4);
  });
  it('gives the single thread\'s statistics and y bit for bit', () => expectSameBits(pipelined()));
  it('the same on runs of a length not a multiple of 8 (the sums\' tails), in groups of 5', () => {
    const shape2 = [2, 50, 150, 151]; // inner 22,650 = 8·2831 + 2, m = 45,300: 10 groups of 5
    const L2 = layoutOf(shape2, 1);
    expect([wasmEngine.groupSize(L2), threads.pipelines(L2)]).toEqual([5, true]);
    const k = makeCase(shape2, 1, 'onnx', 44, (i, rand) => (i % 7) - 3 + rand());
    checkAll(createCpuF32('onnx', { engine: 'wasm' }), k);
    const g2 = f32(50, (c) => 1 + c / 16), b2 = f32(50, (c) => c / 4);
    const run = (f: typeof wasmEngine.forwardTrain) => {
      const out = { y: new Float32Array(k.x.length), mean: new Float64Array(50), variance: new Float64Array(50) };
      f(k.x, out.y, L2, g2, b2, 1e-5, out);
      return out;
    };
    const one = run(wasmEngine.forwardTrain);
    const split = run((...args) => expect(threads.forwardTrain(...args), 'the pool took the call').toBe(true));
    expect(Buffer.from(split.y.buffer).equals(Buffer.from(one.y.buffer)), 'y bit for bit').toBe(true);
    expect([...split.mean, ...split.variance]).toEqual([...one.mean, ...one.variance]);
  });
  it('the same when the workers are slow and the caller takes back what they did not claim', () => {
    Object.assign(threads.pipeTuning, { workerDelayMs: 50 });
    const before = threads.counters.pipelineTakenBack;
    try {
      expectSameBits(pipelined());
      expect(threads.counters.pipelineTakenBack - before, 'groups the caller took back').toBeGreaterThan(0);
    } finally {
      Object.assign(threads.pipeTuning, { workerDelayMs: 0 });
    }
  });
  it('a worker that fails surfaces its error (no hang), and the next call works', () => {
    // The worker fails on the first group it claims; a call whose worker was too late to claim
    // any (the caller took them all back) must still be right, so try until one fails.
    Object.assign(threads.pipeTuning, { workerFails: true });
    let error: unknown;
    try {
      for (let attempt = 0; attempt < 50 && error === undefined; attempt++) {
        const got = { y: new Float32Array(x.length), stats: stats() };
        try {
          threads.forwardTrain(x, got.y, L, gamma, beta, 1e-3, got.stats);
          expectSameBits(got);
        } catch (e) {
          error = e;
        }
      }
    } finally {
      Object.assign(threads.pipeTuning, { workerFails: false });
    }
    expect(String(error)).toMatch(/pipeline test hook: failed on group/);
    expectSameBits(pipelined());
  });
});

describe('cpu-f32 auto engine: threads or one thread, by its own timings', () => {
  it('alternates until each path has KEEP times, then takes the one with the smaller median time, re-timing the slower every EXPLORE_EVERY-th call (EXPLORE_RARELY-th when far apart)', () => {
    const kind = 'spec-kind';
    const n = 1 << 20;
    // warm-up: the paths alternate (threads first), whatever the times say
    const warm: string[] = [];
    for (let k = 0; k < 2 * KEEP; k++) {
      const path = choosePath(kind, n);
      warm.push(path);
      recordPath(kind, n, path, path === 'threads' ? 10 : 5);
    }
    expect(warm).toEqual(Array.from({ length: 2 * KEEP }, (_, k) => (k % 2 ? 'single' : 'threads')));
    // 2x apart: the faster path, the slower re-timed every EXPLORE_RARELY-th call
    const rare = Array.from({ length: 2 * EXPLORE_RARELY }, () => choosePath(kind, n));
    expect(rare.filter((p) => p === 'threads')).toHaveLength(2);
    // close (within FAR_APART): every EXPLORE_EVERY-th call
    for (let k = 0; k < 3; k++) recordPath(kind, n, 'threads', 5.5);
    const close = Array.from({ length: 2 * EXPLORE_EVERY }, () => choosePath(kind, n));
    expect(close.filter((p) => p === 'threads')).toHaveLength(2);
    // two calls that lost their core for a while do not flip the choice (median, not mean)
    recordPath(kind, n, 'single', 500);
    recordPath(kind, n, 'single', 500);
    expect(choosePath(kind, n)).toBe('single');
    // nor do two lucky times of the slower path (median, not minimum)
    recordPath(kind, n, 'threads', 0.1);
    recordPath(kind, n, 'threads', 0.1);
    expect(choosePath(kind, n)).toBe('single');
    // a third one is its typical time now (the load dropped): it takes over
    recordPath(kind, n, 'threads', 0.1);
    expect(choosePath(kind, n)).toBe('threads');
    // threads must win by SPLIT_MARGIN: a median only 5% faster leaves the call on one thread
    for (let k = 0; k < 5; k++) recordPath(kind, n, 'single', 1);
    for (let k = 0; k < 5; k++) recordPath(kind, n, 'threads', 1 / 1.05);
    expect(choosePath(kind, n)).toBe('single');
    for (let k = 0; k < 5; k++) recordPath(kind, n, 'threads', 0.99 / SPLIT_MARGIN);
    expect(choosePath(kind, n)).toBe('threads');
    // a size 4x larger is timed on its own (kinds are told apart by the size's log2, rounded): warm-up again
    expect(choosePath(kind, n << 2)).toBe('threads');
    recordPath(kind, n << 2, 'threads', 1);
    expect(choosePath(kind, n << 2)).toBe('single');
  });
});

describe('cpu-f32 tiny path', () => {
  it('the fused training-backward pass gives the statistics and sums of the separate passes, bit for bit', async () => {
    const { tinyBackwardSums, tinyGradSums, tinyStats } = await import('../../src/kernels/cpu-f32/tiny.js');
    const r = rng(42);
    for (const [shape, axis] of [[[2, 4, 4, 3], 3], [[2, 3, 4, 4], 1], [[7, 5], 1]] as Array<[number[], number]>) {
      const L = layoutOf(shape, axis);
      const x = Float32Array.from({ length: L.numel }, () => 1000 + 3 * (r() - 0.5));
      const dy = Float32Array.from({ length: L.numel }, () => r() - 0.5);
      const table = () => new Float64Array(L.channels);
      const fused = { stats: { mean: table(), variance: table() }, g: { sumDy: table(), sumDyCentered: table() } };
      const apart = { stats: { mean: table(), variance: table() }, g: { sumDy: table(), sumDyCentered: table() } };
      tinyBackwardSums(x, dy, L, fused.stats, fused.g);
      tinyStats(x, L, apart.stats);
      tinyGradSums(x, dy, L, apart.stats.mean, apart.g);
      expect(fused).toEqual(apart);
    }
  });
});

// Caller-owned outputs (the second argument): every path writes the given array, bit for bit
// what it would have allocated, and nothing outside it; a bad one is refused before any write.
describe('cpu-f32 caller-owned outputs: forwardTrain(req, { y }), forwardInfer(req, { y }), backward(req, { dx })', () => {
  beforeAll(prewarmCpuF32Threads);
  const requestFor = (shape: number[], axis: number, seed: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const C = shape[axis]!;
    const r = rng(seed);
    return {
      x: f32(n, () => 3 * r() - 1), dy: f32(n, () => r() - 0.5), gamma: f32(C, () => 0.5 + r()), beta: f32(C, () => r()),
      runningMean: f32(C, () => r()), runningVar: f32(C, () => 0.5 + r()), shape, axis, eps: 1e-5, momentum: 0.9,
    };
  };
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  it.each([
    ['auto', [2, 3, 4, 4], 1], // the tiny path
    ['ts', [4, 6, 8, 8], 1],
    ['wasm', [4, 6, 8, 8], 1],
    ['wasm', [4, 9, 9, 13], 3], // rows
    ['always', [8, 6, 8, 8], 1], // split over the pool
    ['always', [4, 9, 9, 13], 3],
    ['always', [4, 31, 150, 150], 1], // the pipeline of channel groups
  ] as const)('engine %s, shape %j axis %d: the same bits as a fresh output, in the given array only', (engine, shape, axis) => {
    const impl = engine === 'always' ? createCpuF32('onnx', { threads: 'always' }) : createCpuF32('onnx', { engine });
    const req = requestFor([...shape], axis, 52);
    const n = req.x.length;
    const threaded = threads.counters.threaded;
    const cases = [
      ['forwardTrain y', () => impl.forwardTrain(req).y, (y: Float32Array) => impl.forwardTrain(req, { y }).y],
      ['forwardInfer y', () => impl.forwardInfer(req).y, (y: Float32Array) => impl.forwardInfer(req, { y }).y],
      ['backward dx', () => impl.backward({ ...req, training: true }).dx, (dx: Float32Array) => impl.backward({ ...req, training: true }, { dx }).dx],
    ] as const;
    for (const [name, fresh, into] of cases) {
      const want = fresh() as Float32Array;
      // the output in the middle of a larger buffer, the rest marked
      const host = new Float32Array(n + 7).fill(-7.5);
      const given = host.subarray(3, 3 + n);
      const got = into(given) as Float32Array;
      expect(got, `${name}: the given array is returned`).toBe(given);
      expect(bits(got).equals(bits(want)), `${name}: bit for bit`).toBe(true);
      expect([...host.subarray(0, 3), ...host.subarray(3 + n)], `${name}: nothing outside it written`).toEqual(new Array(7).fill(-7.5));
    }
    // forced threads: all six calls (three ops, fresh and given) took the pool's path
    if (engine === 'always') expect(threads.counters.threaded - threaded, 'threaded calls').toBe(6);
  });
  it('refuses a bad output with a named error and writes nothing', () => {
    const impl = createCpuF32('onnx');
    const req = requestFor([2, 3, 5, 5], 1, 53);
    const n = req.x.length;
    const before = Array.from(req.x);
    const bad: [unknown, RegExp][] = [
      [{ y: new Float64Array(n) }, /into\.y must be a Float32Array of 150 elements.*Float64Array/],
      [{ y: Array.from({ length: n }, () => 0) }, /into\.y must be a Float32Array.*object/],
      [{ y: null }, /got null/],
      [{ y: new Float32Array(n - 1) }, /into\.y must have 150 elements.*got 149/],
      [{ y: req.x }, /shares memory with the request's x/],
      [{ y: new Float32Array(req.x.buffer, 4, n - 1).subarray(0, n - 1) }, /must have 150/],
      [{ dx: new Float32Array(n) }, /into\.dx is not an output of this op \(it writes y\)/],
      [42, /second argument must be an object such as \{ y: Float32Array \}, got number/],
    ];
    for (const [into, message] of bad) {
      expect(() => impl.forwardTrain(req, into as never), String(message)).toThrow(BatchNormInputError);
      expect(() => impl.forwardTrain(req, into as never)).toThrow(message);
    }
    // an output overlapping the tail of dy (same buffer, one element in common)
    const shared = new Float32Array(2 * n);
    const dy = shared.subarray(0, n);
    dy.set(req.dy);
    expect(() => impl.backward({ ...req, dy, training: true }, { dx: shared.subarray(n - 1, 2 * n - 1) })).toThrow(/shares memory with the request's dy/);
    // adjacent (no element in common) is fine
    expect(impl.backward({ ...req, dy, training: true }, { dx: shared.subarray(n) }).dx.buffer).toBe(shared.buffer);
    expect(Array.from(req.x)).toEqual(before);
    // a half request makes new half arrays: caller-owned float32 outputs do not apply
    const half = { ...req, x: new Uint16Array(n), dtype: 'float16' as const, paramDtype: 'float32' as const };
    expect(() => impl.forwardTrain(half, { y: new Float32Array(n) })).toThrow(/take float32 requests only, got a float16 request/);
    expect(impl.forwardTrain(half).y).toBeInstanceOf(Uint16Array);
  });
});
