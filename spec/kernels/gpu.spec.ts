/**
 * The gpu.js kernel against the float64 reference, through the suite's own judge.
 *
 * - headlessgl (the real GLSL path): runs when gpuAvailability('headlessgl') says so, i.e. under
 *   `xvfb-run -a` with the `gl` build (scripts/ci-gpu.sh); otherwise every headlessgl test is
 *   skipped with the probe's reason printed — or FAILS when BN_REQUIRE_GPU=1 (CI). Each test asserts that the kernel class that ran is
 *   HeadlessGLKernel, so gpu.js's silent CPU fallback can never pass as the GPU path.
 * - cpu (gpu.js's own JS translation of the same kernel bodies): runs everywhere, so the kernel
 *   logic is checked even where no GL context exists.
 *
 * Every output is compared with compareWithReference (src/judge/compare.ts) under src/judge/tolerance.ts, with
 * the accumulation the kernel DECLARES (float32, tiled, tile) — no local bound. A self-check shows
 * that this tolerance rejects a one-pass variance, and one test runs runConformance itself.
 *
 * Runtime: on llvmpipe every new (op, shape) compiles 1-10 shader programs (~0.1 s each), so the
 * cases reuse a few shapes, one implementation per (mode, profile), and edge data on shared shapes.
 * The full every-profile check is scripts/check-gpu-all-profiles.sh (docs/gpu.md).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Arr, BackwardRequest, ForwardInferRequest, ForwardTrainRequest, Op, ProfileName } from '../../src/contract/contract.js';
import { accumulationFor, compareWithReference, expectationFor } from '../../src/judge/compare.js';
import { SingleValuePerChannelError, UnsupportedDTypeError } from '../../src/contract/errors.js';
import { runConformance } from '../../src/harness/runner.js';
import { layoutOf } from '../../src/contract/layout.js';
import { profiles, resolveProfile } from '../../src/contract/profiles.js';
import { createReference } from '../../src/reference/reference.js';
import {
  createGpu,
  DEFAULT_TILE,
  GpuLimitError,
  gpuAvailability,
  implName,
  oversizedTexture,
  texelCounts,
  type GpuAvailability,
  type GpuImplementation,
  type GpuMode,
} from '../../src/kernels/gpu/index.js';
import { mulberry32 as rng } from '../../src/numerics/random.js';

const PROFILES: ProfileName[] = ['keras', 'tfjs', 'tensorflow-fused', 'pytorch', 'onnx', 'paper'];

/* ------------------------------------------------------------------------------------------------
 * Data
 * ---------------------------------------------------------------------------------------------- */


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
 * The judge: compareWithReference with the kernel's declared accumulation
 * ---------------------------------------------------------------------------------------------- */

const observed: Record<string, number> = {};

function snapshot(req: object): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(req)) if (ArrayBuffer.isView(v)) m.set(k, new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  return m;
}
function expectUnchanged(req: object, snap: Map<string, Uint8Array>): void {
  for (const [k, bytes] of snap) {
    const v = (req as Record<string, ArrayBufferView>)[k]!;
    // Buffer.equals, not toEqual: vitest's deep equality walks a megabyte array element by element (minutes)
    expect(Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(bytes), `input ${k} modified`).toBe(true);
  }
}

type AnyReq = ForwardTrainRequest | ForwardInferRequest | BackwardRequest;
const OUTPUTS: Record<Op, string[]> = {
  forwardTrain: ['y', 'mean', 'variance', 'runningMean', 'runningVar'],
  forwardInfer: ['y'],
  backward: ['dx', 'dgamma', 'dbeta'],
};

/** Run one op and hold every output to the reference under src/judge/tolerance.ts; returns the worst ratio. */
async function judge(impl: GpuImplementation, profile: ProfileName, op: Op, req: AnyReq): Promise<number> {
  const snap = snapshot(req);
  const got = (await (impl[op] as (r: AnyReq) => Promise<object>)(req)) as Record<string, Float32Array>;
  expectUnchanged(req, snap);
  const L = layoutOf(req.shape, req.axis);
  for (const k of OUTPUTS[op]) {
    expect(got[k], k).toBeInstanceOf(Float32Array);
    expect(got[k]!.length, k).toBe(k === 'y' || k === 'dx' ? L.numel : L.channels);
  }
  const cmp = compareWithReference(op, resolveProfile(profile), req, got, { accumulation: accumulationFor(impl, 'float32') });
  const w = cmp.worst;
  const ratio = Math.max(0, ...Object.values(cmp.ratios));
  const key = `${op}${op === 'backward' ? ((req as BackwardRequest).training ? '(training)' : '(inference)') : ''} ${impl.mode}`;
  observed[key] = Math.max(observed[key] ?? 0, ratio);
  expect(cmp.ok, w ? `${op} ${w.output}[${w.index}] (c ${w.channel}): got ${w.got}, expected ${w.expected}, error ${w.error} > bound ${w.bound}; ${cmp.reason}` : op).toBe(true);
  return ratio;
}

/** forwardTrain, forwardInfer and backward (training and inference) of one case. */
async function allOps(impl: GpuImplementation, profile: ProfileName, cs: Case, seed: number): Promise<void> {
  await judge(impl, profile, 'forwardTrain', trainReq(cs, profile, seed));
  await judge(impl, profile, 'forwardInfer', inferReq(cs, profile, seed));
  await judge(impl, profile, 'backward', backReq(cs, profile, seed, true));
  await judge(impl, profile, 'backward', backReq(cs, profile, seed, false));
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
 * Cases: few shapes (each new (op, shape) is a shader compile), edge data on a shared shape
 * ---------------------------------------------------------------------------------------------- */

const SHAPES: Case[] = [
  { label: 'NC [5,3] axis 1', shape: [5, 3], axis: 1 },
  { label: 'NHWC [2,4,5,3] axis 3 (channels last)', shape: [2, 4, 5, 3], axis: 3 },
  { label: 'middle axis [3,2,7,5] axis 2, channels first [2,40] axis 0', shape: [3, 2, 7, 5], axis: 2 },
  { label: 'm = 129 (3 tiles, odd tree)', shape: [129, 2], axis: 1 },
  { label: 'NCHW m = 2048 (32 tiles, 5 tree levels)', shape: [8, 2, 16, 16], axis: 1 },
];

/** Edge data, all on one shape [64, 3, 4] axis 1 (m = 256: 4 tiles), so one plan per op serves them all. */
const EDGE_SHAPE = { shape: [64, 3, 4], axis: 1 };
const EDGES: Case[] = [
  { label: 'constant channel', ...EDGE_SHAPE, gen: (c, r) => (c === 1 ? 3.25 : normal(r)) },
  { label: 'large offset (mean 1e4, std 0.01)', ...EDGE_SHAPE, gen: (_c, r) => 1e4 + 0.01 * normal(r) },
  { label: 'large offset (mean -3e4, std 0.1)', ...EDGE_SHAPE, gen: (_c, r) => -3e4 + 0.1 * normal(r) },
  { label: 'tiny values (1e-15 scale)', ...EDGE_SHAPE, gen: (_c, r) => 1e-15 * normal(r) },
  { label: 'large magnitude (1e15 scale)', ...EDGE_SHAPE, gen: (c, r) => 1e15 * (1 + c + normal(r)) },
];

/* ------------------------------------------------------------------------------------------------
 * Suites
 * ---------------------------------------------------------------------------------------------- */

function suite(mode: GpuMode, probe: () => GpuAvailability | undefined, expectedClass: string): void {
  const its = (name: string, fn: () => Promise<void>, timeout?: number) =>
    it(
      name,
      async (ctx) => {
        const a = probe();
        if (!a?.available && mode === 'headlessgl' && process.env.BN_REQUIRE_GPU === '1') {
          throw new Error(`BN_REQUIRE_GPU=1 but gpu.js mode ${mode} is not available: ${a?.reason ?? 'probe did not run'}`);
        }
        if (!a?.available) {
          console.warn(`[gpu.spec] skipping ${mode} "${name}": ${a?.reason ?? 'probe did not run'}`);
          ctx.skip();
        }
        await fn();
      },
      timeout,
    );
  const impls = new Map<string, GpuImplementation>();
  const get = (profile: ProfileName): GpuImplementation => {
    let impl = impls.get(profile);
    if (!impl) impls.set(profile, (impl = createGpu(profile, { mode })));
    return impl;
  };
  const assertClass = (impl: GpuImplementation) => {
    const info = impl.backendInfo();
    expect(info.kernelClasses).toEqual([expectedClass]);
    expect(info.gpuMode).toBe(mode);
  };
  afterAll(async () => {
    for (const impl of impls.values()) await impl.dispose();
  });

  describe(`gpu.js mode ${mode}`, () => {
    its('declares its contract: name, dtypes, axes, accumulation (what the tolerance is derived from)', async () => {
      const impl = get('keras');
      expect(impl.name).toBe(implName(mode));
      if (mode === 'cpu') expect(impl.name).toMatch(/NOT a GPU/);
      else expect(impl.name).toBe(`gpu.js:${mode}`);
      expect(impl.dtypes).toEqual(['float32']);
      expect(impl.axes).toBe('any');
      // shader modes declare that GLSL may flush subnormals to zero; gpu.js's cpu mode does not
      const ftz = mode === 'cpu' ? {} : { subnormals: 'flush-to-zero' };
      expect(impl.accumulation).toEqual({ dtype: 'float32', order: 'tiled', tile: DEFAULT_TILE, ...ftz });
      expect(accumulationFor(impl, 'float32')).toEqual(impl.accumulation);
    });

    describe('shapes and axes, all four ops, against the reference (keras)', () => {
      for (const [n, cs] of SHAPES.entries()) {
        its(cs.label, async () => {
          const impl = get('keras');
          await allOps(impl, 'keras', cs, 1000 + n);
          if (n === 2) await allOps(impl, 'keras', { label: 'channels first', shape: [2, 40], axis: 0 }, 1100);
          assertClass(impl);
        });
      }
    });

    describe('large m: more tiles than a texture side holds (regression)', () => {
      // T = ceil(m / 64) = 16385 tile sums per row: over headless-gl's MAX_TEXTURE_SIZE (16384) and
      // SwiftShader's (8192). The old [T, rows] partials texture failed here for the forward with
      // C > 1 (old code: "Texture size [16385,2] ... larger than supported size [16384,16384]") and for
      // the backward (its [T, 2C] texture); the
      // flat layout folds them into a near-square texture. Shader modes only: gpu.js's cpu mode has
      // no textures, and its JS would take seconds on 2M values.
      const maybe = mode === 'cpu' ? it.skip : its;
      maybe(
        'forwardTrain and backward at m = 1,048,640 (16385 tiles), C = 2, channels in the middle',
        async () => {
          const impl = get('keras');
          const cs: Case = { label: 'large m', shape: [5, 2, 209728], axis: 1 };
          await judge(impl, 'keras', 'forwardTrain', trainReq(cs, 'keras', 77));
          await judge(impl, 'keras', 'backward', backReq(cs, 'keras', 77, true));
          assertClass(impl);
        },
        60_000,
      );
    });

    describe('every profile (its eps, momentum, running-variance rule), one shape', () => {
      const cs: Case = { label: 'NC [3,4]', shape: [3, 4], axis: 1 };
      for (const profile of PROFILES) {
        its(`${profile}: forwardTrain and backward (training)`, async () => {
          const impl = get(profile);
          await judge(impl, profile, 'forwardTrain', trainReq(cs, profile, 7));
          await judge(impl, profile, 'backward', backReq(cs, profile, 7, true));
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

    describe('edge data (one shared shape)', () => {
      for (const [n, cs] of EDGES.entries()) {
        its(`${cs.label}: all four ops (pytorch)`, async () => {
          const impl = get('pytorch');
          await allOps(impl, 'pytorch', cs, 2000 + n);
          assertClass(impl);
        });
      }

      its('constant channel: variance exactly 0 and y = beta', async () => {
        const req = trainReq(EDGES[0]!, 'pytorch', 5);
        const r = await get('pytorch').forwardTrain(req);
        expect(r.variance[1]).toBe(0);
        expect(r.mean[1]).toBe(3.25);
        for (let o = 0; o < 64; o++) for (let i = 0; i < 4; i++) expect(r.y[(o * 3 + 1) * 4 + i]).toBe(req.beta[1]);
      });

      its('m = 2', async () => {
        await allOps(get('keras'), 'keras', { label: 'm = 2', shape: [2, 3], axis: 1 }, 2100);
      });

      its('m = 1 where allowed (keras, onnx): var 0, y = beta (also eps = 0), running stats per profile', async () => {
        const cs: Case = { label: 'm=1', shape: [1, 4], axis: 1 };
        for (const profile of ['keras', 'onnx'] as ProfileName[]) {
          const req = trainReq(cs, profile, 11);
          const r = await get(profile).forwardTrain(req);
          expect(Array.from(r.variance)).toEqual([0, 0, 0, 0]);
          expect(Array.from(r.mean)).toEqual(Array.from(req.x));
          expect(Array.from(r.y)).toEqual(Array.from(req.beta));
          await judge(get(profile), profile, 'forwardTrain', req);
          const r0 = await get(profile).forwardTrain({ ...req, eps: 0 });
          expect(Array.from(r0.y)).toEqual(Array.from(req.beta));
        }
        await judge(get('keras'), 'keras', 'backward', backReq(cs, 'keras', 3, true));
      });

      its('m = 1 where it is an error (pytorch, paper): SingleValuePerChannelError, forward and backward', async () => {
        const cs: Case = { label: 'm=1', shape: [1, 4], axis: 1 };
        for (const profile of ['pytorch', 'paper'] as ProfileName[]) {
          await expect(get(profile).forwardTrain(trainReq(cs, profile, 1))).rejects.toBeInstanceOf(SingleValuePerChannelError);
          await expect(get(profile).backward(backReq(cs, profile, 1, true))).rejects.toBeInstanceOf(SingleValuePerChannelError);
        }
        await judge(get('pytorch'), 'pytorch', 'forwardInfer', inferReq(cs, 'pytorch', 1));
      });

      its('a smaller tile (8) is declared, and the tolerance derived from it still holds (more tree levels)', async () => {
        const impl = createGpu('onnx', { mode, tile: 8 });
        try {
          expect(impl.accumulation).toMatchObject({ dtype: 'float32', order: 'tiled', tile: 8 });
          const cs: Case = { label: 'tile 8', shape: [50, 3, 7], axis: 1 };
          await judge(impl, 'onnx', 'forwardTrain', trainReq(cs, 'onnx', 3));
          await judge(impl, 'onnx', 'backward', backReq(cs, 'onnx', 3, true));
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

      its('evicting a compiled plan (maxPlans 2) leaves the live ones correct (gpu.js destroy(true) did not), and frees it', async () => {
        const impl = createGpu('keras', { mode, maxPlans: 2 });
        try {
          // A, B, C (evicts A), B (live through an eviction), A (evicts C), B
          const held: (number | null)[] = [];
          for (const [k, cs] of [SHAPES[0]!, SHAPES[3]!, EDGES[0]!, SHAPES[3]!, SHAPES[0]!, SHAPES[3]!].entries()) {
            await judge(impl, 'keras', 'forwardTrain', trainReq(cs, 'keras', 50 + k));
            held.push(impl.backendInfo().kernelsHeld);
          }
          // the same two plans live at the end as after the second call: gpu.js holds no more
          // kernels than then (it held every evicted plan's too, until destroyPlan took them out)
          expect(held[1], 'kernels held with plans A, B').toBeGreaterThan(0);
          expect(held[5], 'kernels held with plans A, B again, after two evictions').toBe(held[1]);
        } finally {
          await impl.dispose();
        }
      });

      its('caches compiled kernels per shape: a second call compiles nothing; dispose() frees and later calls reject', async () => {
        const impl = createGpu('keras', { mode, timings: true });
        const req = trainReq(SHAPES[0]!, 'keras', 1);
        try {
          await impl.forwardTrain(req);
          expect(impl.lastTimings!.compiled).toBeGreaterThan(0);
          await impl.forwardTrain(req);
          expect(impl.lastTimings!.compiled).toBe(0);
        } finally {
          await impl.dispose();
        }
        await expect(impl.forwardTrain(req)).rejects.toThrow(/disposed/);
        await impl.dispose(); // twice is safe
      });
    });

    describe('the judge itself: runConformance', () => {
      // A slice of the real check (fixed seed, 2 runs per property); the whole check under every
      // profile is scripts/check-gpu-all-profiles.sh. Shapes are random here, so each run compiles.
      // one profile per mode (pytorch on the GPU path, tensorflow-fused in cpu mode) keeps the spec short
      for (const profile of (mode === 'cpu' ? ['tensorflow-fused'] : ['pytorch']) as ProfileName[]) {
        its(
          `runConformance(createGpu('${profile}')) on a fixed seed: no failure`,
          async () => {
            const impl = createGpu(profile, { mode });
            try {
              const report = await runConformance(impl, {
                runs: 2,
                seed: 20240501,
                golden: false,
                only: RUNNER_ONLY,
              });
              const failed = report.results.filter((r) => r.status === 'fail');
              expect(failed.map((r) => `${r.id}: ${r.failure?.message ?? ''}`)).toEqual([]);
              expect(report.summary.passed).toBeGreaterThanOrEqual(6);
              expect(report.implementation.name).toBe(implName(mode));
              expect(impl.backendInfo().kernelClasses).toEqual([expectedClass]);
            } finally {
              await impl.dispose();
            }
          },
          120_000,
        );
      }
    });
  });
}

/** The runConformance slice: one axis variant of checks that exercise every op and the running stats. */
const RUNNER_ONLY = [
  'bn:agreement:forward-train:dtype=float32;axis=last',
  'bn:gradients:analytic-training:dtype=float32;axis=first',
  'bn:running-stats:closed-form',
  'bn:edge:large-offset:dtype=float32;axis=other',
  'bn:edge:constant-channel:dtype=float32;axis=first',
  'bn:edge:m2:dtype=float32;axis=first',
  'bn:hygiene:inputs-unchanged:dtype=float32;axis=first',
];

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

describe('texture sizes (pure: no GL needed)', () => {
  it('every texture of a plan folds to fit 8192 up to numel 2^24 - 4C; a smaller limit is reported by name', async () => {
    const { utils } = (await import('gpu.js')) as unknown as { utils: { closestSquareDimensions(n: number): Int32Array } };
    const fold = (n: number) => Array.from(utils.closestSquareDimensions(n)) as [number, number];
    // worst case for the partials: tile 1, so 2C*T = 2*numel; old layout: a [T, 2C] texture, T = m
    const L = layoutOf([1, 2, 2 ** 23 - 8], 1);
    const counts = texelCounts('backwardTrain', L, L.m, 2 * L.channels);
    expect(counts['tile sums']).toBe(2 * L.numel);
    expect(oversizedTexture(counts, 8192, fold)).toBeNull();
    expect(oversizedTexture(counts, Infinity, fold)).toBeNull();
    expect(oversizedTexture(counts, 2048, fold)).toMatchObject({ what: 'x / output', n: L.numel + 4 });
  });

  it('end to end (cpu mode, a 64-texel limit): a plan over it is refused with GpuLimitError naming the texture; one under it runs', async () => {
    const impl = createGpu('keras', { mode: 'cpu', maxTextureSize: 64 });
    try {
      const f32 = (n: number, v = 1) => new Float32Array(n).fill(v);
      const req = (m: number): ForwardTrainRequest => {
        const x = Float32Array.from({ length: 2 * m }, (_, i) => (i % 7) - 3);
        return { x, shape: [m, 2], axis: 1, gamma: f32(2), beta: f32(2, 0), eps: 1e-3, momentum: 0.9, runningMean: f32(2, 0), runningVar: f32(2) };
      };
      // y and the 4 per-channel statistics, 2 * 4096 + 4 * 2 values: a 92 x 90 texture, over 64
      await expect(impl.forwardTrain(req(4096))).rejects.toThrow(/x \/ output needs 8200 values, a \d+ x \d+ texture, over this GPU's MAX_TEXTURE_SIZE 64/);
      await expect(impl.forwardTrain(req(4096))).rejects.toBeInstanceOf(GpuLimitError);
      const small = await impl.forwardTrain(req(16));
      expect(small.y).toHaveLength(32);
      expect(() => createGpu('keras', { mode: 'cpu', maxTextureSize: 0 })).toThrow(/maxTextureSize must be a positive integer/);
    } finally {
      impl.dispose?.();
    }
  }, 60_000);
});

describe('the tolerance is tight enough to matter', () => {
  it('rejects a float32 one-pass E[x^2] - E[x]^2 variance at a large offset (mean 1e4, std 0.01)', () => {
    const req = trainReq(EDGES[1]!, 'pytorch', 2002);
    const L = layoutOf(req.shape, req.axis);
    const onePass = new Float32Array(L.channels);
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
      onePass[c] = Math.fround(Math.fround(s2 / L.m) - Math.fround(mean * mean));
    }
    const acc = { dtype: 'float32', order: 'tiled', tile: DEFAULT_TILE } as const;
    const e = expectationFor('forwardTrain', resolveProfile('pytorch'), req, { accumulation: acc });
    let worst = 0;
    for (let c = 0; c < L.channels; c++) worst = Math.max(worst, Math.abs(onePass[c]! - e.expected.variance![c]!) / e.bounds.variance![c]!);
    expect(worst).toBeGreaterThan(10);
    // and the reference itself is well inside it
    const ref = createReference('pytorch').forwardTrain!({ ...req, x: f64(req.x), gamma: f64(req.gamma), beta: f64(req.beta), runningMean: f64(req.runningMean), runningVar: f64(req.runningVar) }) as { variance: Float64Array };
    for (let c = 0; c < L.channels; c++) expect(Math.abs(Math.fround(ref.variance[c]!) - e.expected.variance![c]!)).toBeLessThanOrEqual(e.bounds.variance![c]!);
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
  console.info(`[gpu.spec] worst |error| / bound (src/judge/tolerance.ts, declared accumulation) per op and mode: ${JSON.stringify(observed)}`);
});
