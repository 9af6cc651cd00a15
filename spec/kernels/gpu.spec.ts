/**
 * The gpu.js kernel against the float64 reference, op by op, profile by profile.
 *
 * - headlessgl (the real GLSL path): runs when gpuAvailability('headlessgl') says so, i.e. under
 *   `xvfb-run -a` with the `gl` build (scripts/ci-gpu.sh); otherwise every headlessgl test is
 *   skipped with the probe's reason printed. Each test asserts that the kernel class that ran is
 *   HeadlessGLKernel, so gpu.js's silent CPU fallback can never pass as the GPU path.
 * - cpu (gpu.js's own CPU translation of the same kernel bodies): runs everywhere, so the kernel
 *   logic is checked even where no GL context exists.
 *
 * Bound: until src/compare.ts lands on main, each output is compared with the reference (run on
 * the float64 values of the same float32 inputs) under the first-order bound derived from this
 * kernel's reduction structure (docs/gpu.md, "Error bound"), doubled, as in the lead's
 * tolerance derivation. A self-check shows that the bound rejects the one-pass variance.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Arr, BackwardRequest, ForwardInferRequest, ForwardTrainRequest, ProfileName } from '../../src/contract.js';
import { SingleValuePerChannelError, UnsupportedDTypeError } from '../../src/errors.js';
import { layoutOf, type Layout } from '../../src/layout.js';
import { effectiveEps, emaWeights, profiles, resolveProfile, runningVarFactor } from '../../src/profiles.js';
import { createReference } from '../../src/reference/reference.js';
import {
  createGpu,
  DEFAULT_TILE,
  GpuLimitError,
  gpuAvailability,
  type GpuAvailability,
  type GpuImplementation,
  type GpuMode,
} from '../../src/kernels/gpu/index.js';

const U = 2 ** -24;
const SAFETY = 2;
const PROFILES: ProfileName[] = ['keras', 'tfjs', 'tensorflow-fused', 'pytorch', 'onnx', 'paper'];

/* ------------------------------------------------------------------------------------------------
 * Data
 * ---------------------------------------------------------------------------------------------- */

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

interface Case {
  label: string;
  shape: number[];
  axis: number;
  /** per channel: value of element j of channel c */
  gen?: (c: number, r: () => number) => number;
}

function makeX(cs: Case, seed: number): Float32Array {
  const L = layoutOf(cs.shape, cs.axis);
  const r = rng(seed);
  const x = new Float32Array(L.numel);
  for (let o = 0; o < L.outer; o++)
    for (let c = 0; c < L.channels; c++)
      for (let i = 0; i < L.inner; i++) x[(o * L.channels + c) * L.inner + i] = cs.gen ? cs.gen(c, r) : (c - 1) * 0.7 + (1 + c) * normal(r);
  return x;
}

function vec(n: number, f: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}

const f64 = (a: Arr): Float64Array => Float64Array.from(a);

/* ------------------------------------------------------------------------------------------------
 * The bound (docs/gpu.md): tiled float32 sums, depth k = (tile - 1) + ceil(log2 ceil(m / tile)),
 * g = gamma_k = k u / (1 - k u).
 * ---------------------------------------------------------------------------------------------- */

function depth(m: number, tile: number): number {
  if (m <= 1) return 0;
  const t = Math.min(tile, m);
  return t - 1 + Math.ceil(Math.log2(Math.ceil(m / t)));
}

interface ChannelFacts {
  mu: number;
  v: number;
  s: number;
  dmu: number;
  dvar: number;
  alpha: number;
  beta: number;
  g: number;
}

function facts(x: Arr, L: Layout, c: number, mu: number, v: number, eps: number, training: boolean, tile: number): ChannelFacts {
  const k = depth(L.m, tile);
  const g = (k * U) / (1 - k * U);
  let absSum = 0;
  let D = 0;
  for (let o = 0; o < L.outer; o++)
    for (let i = 0; i < L.inner; i++) {
      const xv = x[(o * L.channels + c) * L.inner + i]!;
      absSum += Math.abs(xv);
      D = Math.max(D, Math.abs(xv - mu));
    }
  const A = absSum / L.m;
  const s = Math.sqrt(v + eps);
  const dmu = training ? g * A + 2 * U * Math.abs(mu) : 0;
  const dvar = training ? dmu * dmu + 2 * dmu * D + 2 * (g + 3 * U) * (v + D * D) + U * v : 0;
  return { mu, v, s, dmu, dvar, alpha: dmu / s, beta: dvar / (2 * (v + eps)) + 4 * U, g };
}

function dxhat(f: ChannelFacts, xhat: number, x: number): number {
  return f.alpha + f.beta * Math.abs(xhat) + (U * (Math.abs(x) + Math.abs(f.mu))) / f.s;
}

interface Worst {
  /** max over elements of |got - want| / bound */
  ratio: number;
  maxAbs: number;
  where: string;
}

function track(w: Worst, got: number, want: number, bound: number, where: string): void {
  const err = Math.abs(got - want);
  const r = err === 0 ? 0 : err / bound;
  if (!(r <= w.ratio) || Number.isNaN(got) !== Number.isNaN(want)) {
    w.ratio = Number.isNaN(got) !== Number.isNaN(want) ? Infinity : Math.max(w.ratio, r);
    if (w.ratio === r || w.ratio === Infinity) w.where = `${where}: got ${got}, want ${want}, bound ${bound.toExponential(3)}`;
  }
  w.maxAbs = Math.max(w.maxAbs, err);
}

const newWorst = (): Worst => ({ ratio: 0, maxAbs: 0, where: '' });

/* ------------------------------------------------------------------------------------------------
 * Checks of one op against the reference
 * ---------------------------------------------------------------------------------------------- */

const observed: Record<string, number> = {};
function note(key: string, w: Worst): void {
  observed[key] = Math.max(observed[key] ?? 0, w.ratio);
}

function snapshot(req: object): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(req)) if (ArrayBuffer.isView(v)) m.set(k, new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  return m;
}
function expectUnchanged(req: object, snap: Map<string, Uint8Array>): void {
  for (const [k, bytes] of snap) {
    const v = (req as Record<string, ArrayBufferView>)[k]!;
    expect(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), `input ${k} modified`).toEqual(bytes);
  }
}

async function checkTrain(impl: GpuImplementation, profile: ProfileName, req: ForwardTrainRequest, tile = DEFAULT_TILE): Promise<Worst> {
  const p = resolveProfile(profile);
  const L = layoutOf(req.shape, req.axis);
  const snap = snapshot(req);
  const got = await impl.forwardTrain(req);
  expectUnchanged(req, snap);
  for (const k of ['y', 'mean', 'variance', 'runningMean', 'runningVar'] as const) expect(got[k]).toBeInstanceOf(Float32Array);
  expect(got.y.length).toBe(L.numel);
  expect(got.mean.length).toBe(L.channels);
  const ref = await createReference(profile).forwardTrain!({
    ...req,
    x: f64(req.x),
    gamma: f64(req.gamma),
    beta: f64(req.beta),
    runningMean: f64(req.runningMean),
    runningVar: f64(req.runningVar),
  });
  const eps = effectiveEps(p, req.eps);
  const { keep, take } = emaWeights(p, req.momentum);
  const bessel = runningVarFactor(p, L.m);
  const w = newWorst();
  for (let c = 0; c < L.channels; c++) {
    const mu = ref.mean[c]!;
    const v = ref.variance[c]!;
    const f = facts(req.x, L, c, mu, v, eps, true, tile);
    const gm = req.gamma[c]!;
    track(w, got.mean[c]!, mu, SAFETY * f.dmu + 1e-300, `mean[${c}]`);
    track(w, got.variance[c]!, v, SAFETY * f.dvar + 1e-300, `variance[${c}]`);
    const sRM = Math.abs(keep * req.runningMean[c]!) + Math.abs(take * mu);
    track(w, got.runningMean[c]!, ref.runningMean[c]!, SAFETY * (Math.abs(take) * f.dmu + 3 * U * sRM) + 1e-300, `runningMean[${c}]`);
    const sRV = Math.abs(keep * req.runningVar[c]!) + Math.abs(take * bessel * v);
    track(w, got.runningVar[c]!, ref.runningVar[c]!, SAFETY * (Math.abs(take) * bessel * f.dvar + 4 * U * sRV) + 1e-300, `runningVar[${c}]`);
    for (let o = 0; o < L.outer; o++)
      for (let i = 0; i < L.inner; i++) {
        const idx = (o * L.channels + c) * L.inner + i;
        const xv = req.x[idx]!;
        const xhat = L.m === 1 ? 0 : (xv - mu) / f.s;
        const want = ref.y[idx]!;
        const b = SAFETY * (Math.abs(gm) * dxhat(f, xhat, xv) + U * (2 * Math.abs(gm * xhat) + Math.abs(want))) + 1e-300;
        track(w, got.y[idx]!, want, b, `y[${idx}] (c ${c})`);
      }
  }
  note(`forwardTrain ${impl.mode}`, w);
  return w;
}

async function checkInfer(impl: GpuImplementation, profile: ProfileName, req: ForwardInferRequest): Promise<Worst> {
  const p = resolveProfile(profile);
  const L = layoutOf(req.shape, req.axis);
  const snap = snapshot(req);
  const got = await impl.forwardInfer(req);
  expectUnchanged(req, snap);
  expect(got.y).toBeInstanceOf(Float32Array);
  const ref = await createReference(profile).forwardInfer!({
    ...req,
    x: f64(req.x),
    gamma: f64(req.gamma),
    beta: f64(req.beta),
    runningMean: f64(req.runningMean),
    runningVar: f64(req.runningVar),
  });
  const eps = effectiveEps(p, req.eps);
  const w = newWorst();
  for (let c = 0; c < L.channels; c++) {
    const f = facts(req.x, L, c, req.runningMean[c]!, req.runningVar[c]!, eps, false, DEFAULT_TILE);
    const gm = req.gamma[c]!;
    for (let o = 0; o < L.outer; o++)
      for (let i = 0; i < L.inner; i++) {
        const idx = (o * L.channels + c) * L.inner + i;
        const xv = req.x[idx]!;
        const xhat = (xv - f.mu) / f.s;
        const want = ref.y[idx]!;
        const b = SAFETY * (Math.abs(gm) * dxhat(f, xhat, xv) + U * (2 * Math.abs(gm * xhat) + Math.abs(want))) + 1e-300;
        track(w, got.y[idx]!, want, b, `y[${idx}]`);
      }
  }
  note(`forwardInfer ${impl.mode}`, w);
  return w;
}

async function checkBackward(impl: GpuImplementation, profile: ProfileName, req: BackwardRequest, tile = DEFAULT_TILE): Promise<Worst> {
  const p = resolveProfile(profile);
  const L = layoutOf(req.shape, req.axis);
  const snap = snapshot(req);
  const got = await impl.backward(req);
  expectUnchanged(req, snap);
  for (const k of ['dx', 'dgamma', 'dbeta'] as const) expect(got[k]).toBeInstanceOf(Float32Array);
  const ref = await createReference(profile).backward!({
    ...req,
    x: f64(req.x),
    dy: f64(req.dy),
    gamma: f64(req.gamma),
    ...(req.runningMean ? { runningMean: f64(req.runningMean), runningVar: f64(req.runningVar!) } : {}),
  });
  const eps = effectiveEps(p, req.eps);
  const stats = req.training
    ? await createReference(profile).forwardTrain!({
        x: f64(req.x),
        shape: req.shape,
        axis: req.axis,
        gamma: f64(req.gamma),
        beta: new Float64Array(L.channels),
        eps: req.eps,
        momentum: 0.5,
        runningMean: new Float64Array(L.channels),
        runningVar: new Float64Array(L.channels),
      })
    : { mean: f64(req.runningMean!), variance: f64(req.runningVar!) };
  const w = newWorst();
  const kG = depth(L.m, tile);
  const g = (kG * U) / (1 - kG * U);
  for (let c = 0; c < L.channels; c++) {
    const f = facts(req.x, L, c, stats.mean[c]!, stats.variance[c]!, eps, req.training, tile);
    const gm = req.gamma[c]!;
    let sAbsDy = 0;
    let sAbsDyXhat = 0;
    let sAbsDyX = 0;
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let o = 0; o < L.outer; o++)
      for (let i = 0; i < L.inner; i++) {
        const idx = (o * L.channels + c) * L.inner + i;
        const d = req.dy[idx]!;
        const xhat = (req.x[idx]! - f.mu) / f.s;
        sAbsDy += Math.abs(d);
        sAbsDyXhat += Math.abs(d * xhat);
        sAbsDyX += Math.abs(d * req.x[idx]!);
        sumDy += d;
        sumDyXhat += d * xhat;
      }
    const Q = sumDy / L.m;
    const P = sumDyXhat / L.m;
    const dQ = (g * sAbsDy) / L.m;
    const dP = f.alpha * (sAbsDy / L.m) + f.beta * (sAbsDyXhat / L.m) + (U * (sAbsDyX + Math.abs(f.mu) * sAbsDy)) / L.m / f.s + (g + U) * (sAbsDyXhat / L.m);
    track(w, got.dbeta[c]!, ref.dbeta[c]!, SAFETY * (g * sAbsDy + U * Math.abs(ref.dbeta[c]!)) + 1e-300, `dbeta[${c}]`);
    track(w, got.dgamma[c]!, ref.dgamma[c]!, SAFETY * (L.m * dP + 2 * U * Math.abs(ref.dgamma[c]!)) + 1e-300, `dgamma[${c}]`);
    for (let o = 0; o < L.outer; o++)
      for (let i = 0; i < L.inner; i++) {
        const idx = (o * L.channels + c) * L.inner + i;
        const d = req.dy[idx]!;
        const xv = req.x[idx]!;
        const xhat = (xv - f.mu) / f.s;
        const want = ref.dx[idx]!;
        let b: number;
        if (!req.training) b = SAFETY * 5 * U * Math.abs(want);
        else {
          const inner = d - Q - xhat * P;
          const dInner = dQ + dxhat(f, xhat, xv) * Math.abs(P) + Math.abs(xhat) * dP + 3 * U * (Math.abs(d) + Math.abs(Q) + Math.abs(xhat * P));
          b = SAFETY * (Math.abs(gm / f.s) * (dInner + Math.abs(inner) * (f.dvar / (2 * f.s * f.s) + 4 * U)) + U * Math.abs(want));
        }
        track(w, got.dx[idx]!, want, b + 1e-300, `dx[${idx}]`);
      }
  }
  note(`backward(${req.training ? 'training' : 'inference'}) ${impl.mode}`, w);
  return w;
}

function trainReq(cs: Case, profile: ProfileName, seed: number): ForwardTrainRequest {
  const p = profiles[(profile === 'tfjs' ? 'keras' : profile) as keyof typeof profiles];
  const C = cs.shape[cs.axis]!;
  const r = rng(seed + 7);
  return {
    x: makeX(cs, seed),
    shape: cs.shape,
    axis: cs.axis,
    gamma: vec(C, () => 0.5 + r()),
    beta: vec(C, () => r() - 0.5),
    eps: p.defaultEps,
    momentum: p.defaultMomentum,
    runningMean: vec(C, () => r() - 0.5),
    runningVar: vec(C, () => 0.5 + r()),
  };
}

function inferReq(cs: Case, profile: ProfileName, seed: number): ForwardInferRequest {
  const t = trainReq(cs, profile, seed);
  return { x: t.x, shape: t.shape, axis: t.axis, gamma: t.gamma, beta: t.beta, eps: t.eps, runningMean: t.runningMean, runningVar: t.runningVar };
}

function backReq(cs: Case, profile: ProfileName, seed: number, training: boolean): BackwardRequest {
  const t = trainReq(cs, profile, seed);
  const r = rng(seed + 99);
  const dy = vec(t.x.length, () => normal(r));
  return training
    ? { x: t.x, dy, shape: t.shape, axis: t.axis, gamma: t.gamma, eps: t.eps, training }
    : { x: t.x, dy, shape: t.shape, axis: t.axis, gamma: t.gamma, eps: t.eps, training, runningMean: t.runningMean, runningVar: t.runningVar };
}

/* ------------------------------------------------------------------------------------------------
 * Cases
 * ---------------------------------------------------------------------------------------------- */

const SHAPES: Case[] = [
  { label: 'NC [5,3] axis 1', shape: [5, 3], axis: 1 },
  { label: 'NCL [2,3,5] axis 1', shape: [2, 3, 5], axis: 1 },
  { label: 'NLC [2,5,3] axis 2', shape: [2, 5, 3], axis: 2 },
  { label: 'NCHW [2,3,4,5] axis 1', shape: [2, 3, 4, 5], axis: 1 },
  { label: 'NHWC [2,4,5,3] axis 3', shape: [2, 4, 5, 3], axis: 3 },
  { label: 'NCDHW [2,2,3,2,2] axis 1', shape: [2, 2, 3, 2, 2], axis: 1 },
  { label: 'channels first [3,40] axis 0', shape: [3, 40], axis: 0 },
  { label: 'middle axis [3,2,7,5] axis 2', shape: [3, 2, 7, 5], axis: 2 },
  { label: 'm = 129 (3 tiles, odd tree)', shape: [129, 2], axis: 1 },
  { label: 'm = 3000 NLC (47 tiles)', shape: [30, 100, 4], axis: 2 },
  { label: 'm = 16384 NCHW (256 tiles, 8 tree levels)', shape: [16, 4, 32, 32], axis: 1 },
];

const EDGES: Case[] = [
  { label: 'm = 2', shape: [2, 3], axis: 1 },
  { label: 'constant channel', shape: [6, 3, 2], axis: 1, gen: (c, r) => (c === 1 ? 3.25 : normal(r)) },
  { label: 'large offset (mean 1e4, std 0.01)', shape: [64, 3, 4], axis: 1, gen: (_c, r) => 1e4 + 0.01 * normal(r) },
  { label: 'large offset, channels last (mean -3e4, std 0.1)', shape: [200, 5], axis: 1, gen: (_c, r) => -3e4 + 0.1 * normal(r) },
  { label: 'tiny values (1e-15 scale)', shape: [10, 2], axis: 1, gen: (_c, r) => 1e-15 * normal(r) },
];

/* ------------------------------------------------------------------------------------------------
 * Suites
 * ---------------------------------------------------------------------------------------------- */

function suite(mode: GpuMode, probe: () => GpuAvailability | undefined, expectedClass: string): void {
  const its = (name: string, fn: () => Promise<void>) =>
    it(name, async (ctx) => {
      const a = probe();
      if (!a?.available) {
        console.warn(`[gpu.spec] skipping ${mode} "${name}": ${a?.reason ?? 'probe did not run'}`);
        ctx.skip();
      }
      await fn();
    });
  const impls = new Map<string, GpuImplementation>();
  const get = (profile: ProfileName): GpuImplementation => {
    let impl = impls.get(profile);
    if (!impl) impls.set(profile, (impl = createGpu(profile, { mode })));
    return impl;
  };
  const assertClass = (impl: GpuImplementation) => {
    const info = impl.backendInfo();
    expect(info.kernelClasses).toEqual([expectedClass]);
    if (mode !== 'gpu') expect(info.gpuMode).toBe(mode);
  };
  afterAll(async () => {
    for (const impl of impls.values()) await impl.dispose();
  });

  describe(`gpu.js mode ${mode}`, () => {
    its('declares its contract: name, dtypes, axes, accumulation', async () => {
      const impl = get('keras');
      expect(impl.name).toBe(`gpu.js:${mode}`);
      expect(impl.dtypes).toEqual(['float32']);
      expect(impl.axes).toBe('any');
      expect(impl.accumulation).toEqual({ dtype: 'float32', order: 'tiled', tile: DEFAULT_TILE });
    });

    describe('every shape and axis, all three ops (keras and pytorch)', () => {
      for (const [n, cs] of SHAPES.entries()) {
        for (const profile of ['keras', 'pytorch'] as ProfileName[]) {
          its(`${cs.label} ${profile}`, async () => {
            const impl = get(profile);
            const seed = 1000 + n;
            const w1 = await checkTrain(impl, profile, trainReq(cs, profile, seed));
            expect(w1.ratio, w1.where).toBeLessThanOrEqual(1);
            const w2 = await checkInfer(impl, profile, inferReq(cs, profile, seed));
            expect(w2.ratio, w2.where).toBeLessThanOrEqual(1);
            const w3 = await checkBackward(impl, profile, backReq(cs, profile, seed, true));
            expect(w3.ratio, w3.where).toBeLessThanOrEqual(1);
            const w4 = await checkBackward(impl, profile, backReq(cs, profile, seed, false));
            expect(w4.ratio, w4.where).toBeLessThanOrEqual(1);
            assertClass(impl);
          });
        }
      }
    });

    describe('every profile, every op, with its defaults', () => {
      for (const profile of PROFILES) {
        its(profile, async () => {
          const impl = get(profile);
          const cs: Case = { label: 'NCHW', shape: [4, 3, 6, 5], axis: 1 };
          for (const w of [
            await checkTrain(impl, profile, trainReq(cs, profile, 7)),
            await checkInfer(impl, profile, inferReq(cs, profile, 7)),
            await checkBackward(impl, profile, backReq(cs, profile, 7, true)),
            await checkBackward(impl, profile, backReq(cs, profile, 7, false)),
          ])
            expect(w.ratio, w.where).toBeLessThanOrEqual(1);
          assertClass(impl);
        });
      }
      its('golden values from SEMANTICS.md (x = [[1,2,3,4],[2,4,6,8],[12,11,10,9]])', async () => {
        const x = Float32Array.from([1, 2, 3, 4, 2, 4, 6, 8, 12, 11, 10, 9]);
        const base = { x, shape: [3, 4], axis: 1, gamma: new Float32Array(4).fill(1), beta: new Float32Array(4), runningMean: new Float32Array(4), runningVar: new Float32Array(4).fill(1) };
        const golden: Array<[ProfileName, number[], number[], number[]]> = [
          ['keras', [-0.805371, -0.9502233, -1.1624058, -1.3885813], [0.05, 0.05667, 0.06333, 0.07], [1.2366667, 1.1388888, 1.0722222, 1.0366666]],
          ['tensorflow-fused', [-0.805371, -0.95022327, -1.1624057, -1.3885814], [0.05, 0.0566667, 0.0633333, 0.07], [1.36, 1.2133334, 1.1133333, 1.06]],
          ['pytorch', [-0.8053871, -0.9502549, -1.1624757, -1.3887287], [0.5, 0.5666667, 0.6333334, 0.7], [4.6, 3.1333334, 2.1333334, 1.6]],
          ['onnx', [-0.80538714, -0.9502549, -1.1624758, -1.3887286], [0.5, 0.5666668, 0.6333335, 0.70000017], [3.3666673, 2.3888893, 1.7222223, 1.3666668]],
        ];
        for (const [profile, y0, rm, rv] of golden) {
          const p = resolveProfile(profile);
          const r = await get(profile).forwardTrain({ ...base, eps: p.defaultEps, momentum: p.defaultMomentum });
          for (let c = 0; c < 4; c++) {
            expect(r.y[c]).toBeCloseTo(y0[c]!, 5);
            expect(r.runningMean[c]).toBeCloseTo(rm[c]!, 4);
            expect(r.runningVar[c]).toBeCloseTo(rv[c]!, 5);
          }
        }
      });
    });

    describe('edge cases', () => {
      for (const [n, cs] of EDGES.entries()) {
        for (const profile of ['keras', 'pytorch'] as ProfileName[]) {
          its(`${cs.label} ${profile}`, async () => {
            const impl = get(profile);
            const seed = 2000 + n;
            for (const w of [
              await checkTrain(impl, profile, trainReq(cs, profile, seed)),
              await checkInfer(impl, profile, inferReq(cs, profile, seed)),
              await checkBackward(impl, profile, backReq(cs, profile, seed, true)),
              await checkBackward(impl, profile, backReq(cs, profile, seed, false)),
            ])
              expect(w.ratio, w.where).toBeLessThanOrEqual(1);
            assertClass(impl);
          });
        }
      }

      its('constant channel: variance exactly 0 and y = beta', async () => {
        const cs = EDGES[1]!;
        const req = trainReq(cs, 'keras', 5);
        const r = await get('keras').forwardTrain(req);
        expect(r.variance[1]).toBe(0);
        expect(r.mean[1]).toBe(3.25);
        for (let o = 0; o < 6; o++) for (let i = 0; i < 2; i++) expect(r.y[(o * 3 + 1) * 2 + i]).toBe(req.beta[1]);
      });

      its('m = 1 where allowed (keras, tensorflow-fused, onnx): var 0, y = beta, running stats per profile', async () => {
        for (const profile of ['keras', 'tensorflow-fused', 'onnx'] as ProfileName[]) {
          const cs: Case = { label: 'm=1', shape: [1, 4], axis: 1 };
          const req = trainReq(cs, profile, 11);
          const r = await get(profile).forwardTrain(req);
          expect(Array.from(r.variance)).toEqual([0, 0, 0, 0]);
          expect(Array.from(r.mean)).toEqual(Array.from(req.x));
          expect(Array.from(r.y)).toEqual(Array.from(req.beta));
          const w = await checkTrain(get(profile), profile, req);
          expect(w.ratio, w.where).toBeLessThanOrEqual(1);
          // eps = 0 too: y = beta (no 0 * inf)
          const r0 = await get(profile).forwardTrain({ ...req, eps: 0 });
          expect(Array.from(r0.y)).toEqual(Array.from(req.beta));
          const wb = await checkBackward(get(profile), profile, backReq({ label: 'm=1 NCHW', shape: [1, 3, 1, 1], axis: 1 }, profile, 3, true));
          expect(wb.ratio, wb.where).toBeLessThanOrEqual(1);
        }
      });

      its('m = 1 where it is an error (pytorch, paper): SingleValuePerChannelError, forward and backward', async () => {
        for (const profile of ['pytorch', 'paper'] as ProfileName[]) {
          const cs: Case = { label: 'm=1', shape: [1, 4, 1], axis: 1 };
          await expect(get(profile).forwardTrain(trainReq(cs, profile, 1))).rejects.toBeInstanceOf(SingleValuePerChannelError);
          await expect(get(profile).backward(backReq(cs, profile, 1, true))).rejects.toBeInstanceOf(SingleValuePerChannelError);
          // inference is fine with m = 1
          const w = await checkInfer(get(profile), profile, inferReq(cs, profile, 1));
          expect(w.ratio, w.where).toBeLessThanOrEqual(1);
        }
      });

      its('a smaller tile (8) is declared and still passes (more tree levels)', async () => {
        const impl = createGpu('onnx', { mode, tile: 8 });
        try {
          expect(impl.accumulation).toEqual({ dtype: 'float32', order: 'tiled', tile: 8 });
          const cs: Case = { label: 'tile 8', shape: [50, 3, 7], axis: 1 };
          const w1 = await checkTrain(impl, 'onnx', trainReq(cs, 'onnx', 3), 8);
          expect(w1.ratio, w1.where).toBeLessThanOrEqual(1);
          const w2 = await checkBackward(impl, 'onnx', backReq(cs, 'onnx', 3, true), 8);
          expect(w2.ratio, w2.where).toBeLessThanOrEqual(1);
          expect(impl.backendInfo().kernelClasses).toEqual([expectedClass]);
        } finally {
          await impl.dispose();
        }
      });
    });

    describe('requests and lifecycle', () => {
      its('rejects float64 with UnsupportedDTypeError and bad requests with named errors', async () => {
        const impl = get('keras');
        const req = trainReq(SHAPES[0]!, 'keras', 1);
        await expect(
          impl.forwardTrain({ ...req, x: f64(req.x), gamma: f64(req.gamma), beta: f64(req.beta), runningMean: f64(req.runningMean), runningVar: f64(req.runningVar) }),
        ).rejects.toBeInstanceOf(UnsupportedDTypeError);
        await expect(impl.forwardTrain({ ...req, axis: 5 })).rejects.toMatchObject({ code: 'BN_INPUT' });
        await expect(impl.forwardInfer({ ...inferReq(SHAPES[0]!, 'keras', 1), gamma: new Float32Array(2) })).rejects.toMatchObject({ code: 'BN_INPUT' });
      });

      its('refuses shapes whose indices would not be float32-exact (GpuLimitError)', async () => {
        const n = 2 ** 24;
        const big: ForwardInferRequest = { x: new Float32Array(n), shape: [n / 2, 2], axis: 1, gamma: new Float32Array(2), beta: new Float32Array(2), eps: 1e-3, runningMean: new Float32Array(2), runningVar: new Float32Array(2) };
        await expect(get('keras').forwardInfer(big)).rejects.toBeInstanceOf(GpuLimitError);
      });

      its('evicting compiled plans (maxPlans 2) leaves the others correct (gpu.js destroy(true) did not)', async () => {
        const impl = createGpu('keras', { mode, maxPlans: 2 });
        try {
          for (let round = 0; round < 2; round++)
            for (const [n, cs] of [SHAPES[0]!, SHAPES[2]!, EDGES[1]!, SHAPES[8]!].entries()) {
              const w = await checkTrain(impl, 'keras', trainReq(cs, 'keras', 50 + n + 10 * round));
              expect(w.ratio, `${cs.label} round ${round}: ${w.where}`).toBeLessThanOrEqual(1);
              const wb = await checkBackward(impl, 'keras', backReq(cs, 'keras', 60 + n + 10 * round, true));
              expect(wb.ratio, `${cs.label} round ${round}: ${wb.where}`).toBeLessThanOrEqual(1);
            }
        } finally {
          await impl.dispose();
        }
      });

      its('caches compiled kernels per shape: a second call compiles nothing', async () => {
        const impl = createGpu('keras', { mode, timings: true });
        try {
          const req = trainReq(SHAPES[3]!, 'keras', 1);
          await impl.forwardTrain(req);
          expect(impl.lastTimings!.compiled).toBeGreaterThan(0);
          await impl.forwardTrain(req);
          expect(impl.lastTimings!.compiled).toBe(0);
        } finally {
          await impl.dispose();
        }
        await expect(impl.forwardTrain(trainReq(SHAPES[3]!, 'keras', 1))).rejects.toThrow(/disposed/);
      });
    });
  });
}

/* ------------------------------------------------------------------------------------------------ */

let headless: GpuAvailability | undefined;
let cpu: GpuAvailability | undefined;
beforeAll(async () => {
  headless = await gpuAvailability('headlessgl');
  cpu = await gpuAvailability('cpu');
  console.info(`[gpu.spec] headlessgl: ${headless.available ? 'available' : 'NOT available'}: ${headless.reason}`);
});

suite('headlessgl', () => headless, 'HeadlessGLKernel');
suite('cpu', () => cpu, 'CPUKernel');

describe('the bound is tight enough to matter', () => {
  it('rejects a one-pass E[x^2] - E[x]^2 variance at a large offset (mean 1e4, std 0.01)', () => {
    const cs = EDGES[2]!;
    const req = trainReq(cs, 'pytorch', 2002);
    const L = layoutOf(req.shape, req.axis);
    const ref = createReference('pytorch').forwardTrain!({ ...req, x: f64(req.x), gamma: f64(req.gamma), beta: f64(req.beta), runningMean: f64(req.runningMean), runningVar: f64(req.runningVar) }) as { mean: Float64Array; variance: Float64Array };
    let worst = 0;
    for (let c = 0; c < L.channels; c++) {
      let s = Math.fround(0);
      let s2 = Math.fround(0);
      for (let o = 0; o < L.outer; o++)
        for (let i = 0; i < L.inner; i++) {
          const v = req.x[(o * L.channels + c) * L.inner + i]!;
          s = Math.fround(s + v);
          s2 = Math.fround(s2 + Math.fround(v * v));
        }
      const mean = Math.fround(s / L.m);
      const onePass = Math.fround(Math.fround(s2 / L.m) - Math.fround(mean * mean));
      const f = facts(req.x, L, c, ref.mean[c]!, ref.variance[c]!, 1e-5, true, DEFAULT_TILE);
      worst = Math.max(worst, Math.abs(onePass - ref.variance[c]!) / (SAFETY * f.dvar));
    }
    expect(worst).toBeGreaterThan(10);
  });
});

describe('without a display', () => {
  it('headlessgl throws GpuUnavailableError naming the reason instead of falling back', () => {
    if (process.platform !== 'linux') return;
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const code = `
      import { createGpu, gpuAvailability } from './src/kernels/gpu/index.ts';
      const a = await gpuAvailability('headlessgl');
      const impl = createGpu('keras', { mode: 'headlessgl' });
      try {
        await impl.forwardInfer({ x: new Float32Array(4), shape: [2, 2], axis: 1, gamma: new Float32Array(2), beta: new Float32Array(2), eps: 1e-3, runningMean: new Float32Array(2), runningVar: new Float32Array(2) });
        console.log(JSON.stringify({ ran: impl.backendInfo().kernelClasses }));
      } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, probe: a })); }`;
    const env = { ...process.env };
    delete env.DISPLAY;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    const line = res.stdout.trim().split('\n').pop() ?? '';
    const out = JSON.parse(line) as { name?: string; code?: string; message?: string; probe?: GpuAvailability };
    expect(out.name, res.stderr).toBe('GpuUnavailableError');
    expect(out.code).toBe('BN_GPU_UNAVAILABLE');
    expect(out.message).toMatch(/headlessgl/);
    expect(out.probe?.available).toBe(false);
    expect(out.message).toMatch(/DISPLAY|display|gl/);
  });
});

afterAll(() => {
  console.info(`[gpu.spec] worst |error| / bound per op and mode: ${JSON.stringify(observed)}`);
});
