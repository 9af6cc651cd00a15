/**
 * Export golden Batch Normalization fixtures computed by TensorFlow.js (pure-JS CPU backend):
 * a second, JS-side source beside scripts/export_tf_fixtures.py.
 *
 *   npx tsx scripts/export-tfjs-fixtures.ts [OUT_DIR]   (default: fixtures/tfjs, and rewrites fixtures/manifest.json)
 *   npx tsx scripts/export-tfjs-fixtures.ts --manifest-only
 *
 * APIs: tf.layers.batchNormalization (apply(x, {training: true}) for training; training defaults
 * to false in TF.js), tf.moments + tf.batchNorm, gradients with tf.grad / tf.variableGrads.
 * Deterministic: a seeded mulberry32 generator, the single-threaded CPU backend, sorted keys.
 * The format is fixtures/README.md's `bn-conformance-fixture/1`.
 */
import { readFileSync, readdirSync, mkdirSync, writeFileSync, unlinkSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { FIXTURE_FORMAT, FIXTURE_SOURCES, type KnownIssue, manifestText, sha256Hex, stringifyFixture } from '../src/fixtures/format.js';
import { mulberry32 } from '../src/numerics/random.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

type Api = 'layers' | 'moments';
interface Case {
  name: string;
  api: Api;
  shape: number[];
  axis: number;
  seed: number;
  eps: number;
  momentum: number;
  steps: number;
  data: 'normal' | 'offset' | 'constant-channel';
  offsetRatio?: number;
  description: string;
  tags?: string[];
  knownIssues?: KnownIssue[];
}

const LAYOUTS: Record<string, string> = { '2,1': 'NC', '3,1': 'NCL', '3,2': 'NLC', '4,1': 'NCHW', '4,3': 'NHWC', '5,1': 'NCDHW', '5,4': 'NDHWC' };
const layoutName = (shape: number[], axis: number) => LAYOUTS[`${shape.length},${axis}`] ?? `axis${axis}`;

const CHANNELS_FIRST_ISSUE: KnownIssue = {
  id: 'tfjs-batchnorm-channels-first',
  summary:
    'tf.batchNorm (CPU and WASM kernels) cycles mean/variance/scale/offset by flat element index, i.e. always over the LAST axis; ' +
    'tf.layers.batchNormalization with axis != -1 reshapes its parameters to [1,C,1,...] and so normalizes element i with channel i mod C. ' +
    'y (and every gradient) is wrong for channels-first inputs; the batch statistics from tf.moments and the moving averages are right.',
  evidence:
    'tfjs-backend-cpu/src/kernels/BatchNorm.ts (offi/mi/si/vi wrap at the parameter length); tensorflow/tfjs#1106 ' +
    '"Batchnormalization is incorrect with cpu backend and channelsFirst data" (closed without a fix); reproduced with @tensorflow/tfjs 4.22.0',
  affects: ['y', 'dx', 'dgamma', 'dbeta'],
};

function declareCases(): Case[] {
  const cs: Case[] = [];
  const lastShapes: Array<[number[], number]> = [
    [[6, 3], 1],
    [[3, 4, 3], 2],
    [[2, 3, 2, 3], 3],
  ];
  // Rank 5 is not supported by tf.layers.batchNormalization ("batchNormalization is not
  // implemented for array of rank 5 yet", tfjs-layers normalization.ts): tf.moments + tf.batchNorm only.
  const momenta = [0.99, 0.5, 0];
  const epses = [1e-3, 1e-5, 0.1];
  let seed = 500;
  let k = 0;
  for (const [shape, axis] of lastShapes) {
    for (let j = 0; j < 3; j++) {
      const momentum = momenta[(k + j) % 3]!;
      const eps = epses[(k + 2 * j) % 3]!;
      cs.push({
        name: `layers-${layoutName(shape, axis).toLowerCase()}-momentum${momentum}`,
        api: 'layers', shape, axis, seed: ++seed, eps, momentum, steps: 3, data: 'normal',
        description: `tf.layers.batchNormalization rank ${shape.length} channels-last, 3 training steps, momentum ${momentum}, eps ${eps}`,
      });
    }
    k++;
  }
  cs.push(
    { name: 'layers-m1', api: 'layers', shape: [1, 4], axis: 1, seed: 601, eps: 1e-3, momentum: 0.99, steps: 2, data: 'normal', description: 'm = 1: variance 0, y = beta' },
    { name: 'layers-m1-nhwc', api: 'layers', shape: [1, 1, 1, 3], axis: 3, seed: 602, eps: 1e-3, momentum: 0.5, steps: 2, data: 'normal', description: 'm = 1, rank 4' },
    { name: 'layers-m2', api: 'layers', shape: [2, 3], axis: 1, seed: 603, eps: 1e-3, momentum: 0.5, steps: 3, data: 'normal', description: 'm = 2' },
    { name: 'layers-m2-nlc', api: 'layers', shape: [1, 2, 3], axis: 2, seed: 604, eps: 1e-5, momentum: 0, steps: 2, data: 'normal', description: 'm = 2, rank 3, momentum 0' },
    { name: 'layers-constant-channel', api: 'layers', shape: [5, 3], axis: 1, seed: 605, eps: 1e-3, momentum: 0.99, steps: 2, data: 'constant-channel', description: 'channel 1 constant: variance 0, y = beta' },
    { name: 'layers-constant-channel-nhwc', api: 'layers', shape: [2, 2, 2, 3], axis: 3, seed: 606, eps: 1e-5, momentum: 0.5, steps: 2, data: 'constant-channel', description: 'constant channel, NHWC' },
    { name: 'layers-eps1', api: 'layers', shape: [6, 3], axis: 1, seed: 607, eps: 1, momentum: 0.99, steps: 2, data: 'normal', description: 'eps = 1' },
    { name: 'layers-offset1e4', api: 'layers', shape: [8, 3], axis: 1, seed: 608, eps: 1e-5, momentum: 0.99, steps: 2, data: 'offset', offsetRatio: 1e4, tags: ['ill-conditioned'], description: '|mean|/std = 1e4 in float32' },
    { name: 'layers-offset1e4-nhwc', api: 'layers', shape: [2, 3, 2, 3], axis: 3, seed: 609, eps: 1e-5, momentum: 0.5, steps: 1, data: 'offset', offsetRatio: 1e4, tags: ['ill-conditioned'], description: '|mean|/std = 1e4 in float32, NHWC' },
    { name: 'layers-large-m', api: 'layers', shape: [256, 4], axis: 1, seed: 610, eps: 1e-3, momentum: 0.99, steps: 1, data: 'normal', description: 'm = 256' },
    { name: 'layers-ncl-channels-first', api: 'layers', shape: [3, 3, 4], axis: 1, seed: 611, eps: 1e-3, momentum: 0.99, steps: 2, data: 'normal', description: 'channels-first rank 3 (axis 1): TF.js normalizes with the wrong channel', tags: ['tfjs-bug'], knownIssues: [CHANNELS_FIRST_ISSUE] },
    { name: 'layers-nchw-channels-first', api: 'layers', shape: [2, 3, 2, 2], axis: 1, seed: 612, eps: 1e-3, momentum: 0.5, steps: 2, data: 'normal', description: 'channels-first NCHW: TF.js normalizes with the wrong channel', tags: ['tfjs-bug'], knownIssues: [CHANNELS_FIRST_ISSUE] },
    { name: 'layers-nc-4steps-momentum0.9', api: 'layers', shape: [4, 2], axis: 1, seed: 614, eps: 1e-3, momentum: 0.9, steps: 4, data: 'normal', description: '4 training steps, momentum 0.9' },
  );
  const mShapes: Array<[number[], number, number]> = [
    [[6, 3], 1, 1e-3],
    [[3, 4, 3], 2, 1e-5],
    [[2, 3, 2, 3], 3, 0.5],
    [[2, 2, 2, 3, 2], 4, 1e-3],
  ];
  for (const [shape, axis, eps] of mShapes) {
    cs.push({
      name: `moments-${layoutName(shape, axis).toLowerCase()}`,
      api: 'moments', shape, axis, seed: ++seed, eps, momentum: 0.99, steps: 1, data: 'normal',
      description: `tf.moments + tf.batchNorm, rank ${shape.length} channels-last, eps ${eps}`,
    });
  }
  cs.push(
    { name: 'moments-m2', api: 'moments', shape: [2, 4], axis: 1, seed: 701, eps: 1e-3, momentum: 0.99, steps: 1, data: 'normal', description: 'm = 2' },
    { name: 'moments-constant-channel', api: 'moments', shape: [4, 3], axis: 1, seed: 702, eps: 1e-3, momentum: 0.99, steps: 1, data: 'constant-channel', description: 'constant channel' },
    { name: 'moments-eps1', api: 'moments', shape: [6, 3], axis: 1, seed: 703, eps: 1, momentum: 0.99, steps: 1, data: 'normal', description: 'eps = 1' },
    { name: 'moments-m1', api: 'moments', shape: [1, 3], axis: 1, seed: 705, eps: 1e-3, momentum: 0.99, steps: 1, data: 'normal', description: 'm = 1' },
    { name: 'moments-offset1e4-nhwc', api: 'moments', shape: [2, 2, 2, 3], axis: 3, seed: 706, eps: 1e-5, momentum: 0.99, steps: 1, data: 'offset', offsetRatio: 1e4, tags: ['ill-conditioned'], description: '|mean|/std = 1e4 in float32, NHWC' },
    { name: 'moments-offset1e4', api: 'moments', shape: [16, 3], axis: 1, seed: 704, eps: 1e-5, momentum: 0.99, steps: 1, data: 'offset', offsetRatio: 1e4, tags: ['ill-conditioned'], description: '|mean|/std = 1e4 in float32' },
  );
  return cs;
}

// ------------------------------------------------------------------ deterministic data


class Rng {
  private next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  f32(n: number, f: () => number): Float32Array {
    return Float32Array.from({ length: n }, f);
  }
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function makeX(rng: Rng, c: Case): Float32Array {
  const C = c.shape[c.axis]!;
  const inner = numel(c.shape.slice(c.axis + 1));
  const spread = Array.from({ length: C }, () => rng.uniform(0.5, 2));
  const loc =
    c.data === 'offset'
      ? spread.map((s) => c.offsetRatio! * s * (rng.uniform(0, 1) < 0.5 ? -1 : 1))
      : Array.from({ length: C }, () => rng.uniform(-3, 3));
  return rng.f32(numel(c.shape), (() => {
    let i = 0;
    return () => {
      const ch = Math.floor(i++ / inner) % C;
      if (c.data === 'constant-channel' && ch === Math.min(1, C - 1)) return 2.5;
      return loc[ch]! + spread[ch]! * rng.normal();
    };
  })());
}

// ------------------------------------------------------------------ the two APIs

/** Run fn in a tensor scope (tensors made inside are freed; plain values come out). */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

const reductionAxes = (c: Case) => c.shape.map((_, i) => i).filter((i) => i !== c.axis);
const list = (t: tf.Tensor) => Array.from(t.dataSync() as Float32Array);

interface State {
  gamma: Float32Array;
  beta: Float32Array;
  rm: Float32Array;
  rv: Float32Array;
}

function layerWith(c: Case, st: State): tf.layers.Layer {
  const layer = tf.layers.batchNormalization({ axis: c.axis, momentum: c.momentum, epsilon: c.eps });
  layer.build(c.shape);
  layer.setWeights([tf.tensor1d(st.gamma), tf.tensor1d(st.beta), tf.tensor1d(st.rm), tf.tensor1d(st.rv)]);
  return layer;
}

const API_LAYERS = {
  forwardTrain:
    'tf.layers.batchNormalization({axis, momentum, epsilon}).apply(x, {training: true}); moving mean/variance read with getWeights() after each call; batch statistics from tf.moments(x, reductionAxes)',
  forwardInfer: 'tf.layers.batchNormalization(...).apply(x, {training: false})',
  backward:
    'tf.grad (dx) and tf.variableGrads (gamma, beta) of sum(layer.apply(x, {training}) * dy) on a twin layer with the same weights',
};
const API_MOMENTS = {
  forwardTrain:
    'tf.moments(x, reductionAxes) then tf.batchNorm(x, mean, variance, beta, gamma, eps); no moving statistics (result has no runningMean/runningVar)',
  forwardInfer: 'tf.batchNorm(x, runningMean, runningVar, beta, gamma, eps)',
  backward: 'tf.grads over (x, gamma, beta) of sum(tf.batchNorm(x, ...tf.moments(x) | running statistics, beta, gamma, eps) * dy)',
};

function train(c: Case, st: State, x: Float32Array): { out: Record<string, number[]>; next: State } {
  return scoped(() => {
    const xt = tf.tensor(x, c.shape);
    const { mean, variance } = tf.moments(xt, reductionAxes(c));
    if (c.api === 'layers') {
      const layer = layerWith(c, st);
      const y = layer.apply(xt, { training: true }) as tf.Tensor;
      const w = layer.getWeights();
      const next = { ...st, rm: w[2]!.dataSync() as Float32Array, rv: w[3]!.dataSync() as Float32Array };
      const out = { y: list(y), mean: list(mean), variance: list(variance), runningMean: Array.from(next.rm), runningVar: Array.from(next.rv) };
      return { out, next: { ...next, rm: Float32Array.from(next.rm), rv: Float32Array.from(next.rv) } };
    }
    const y = tf.batchNorm(xt, mean, variance, tf.tensor1d(st.beta), tf.tensor1d(st.gamma), c.eps);
    return { out: { y: list(y), mean: list(mean), variance: list(variance) }, next: st };
  });
}

function infer(c: Case, st: State, x: Float32Array): Record<string, number[]> {
  return scoped(() => {
    const xt = tf.tensor(x, c.shape);
    if (c.api === 'layers') {
      const layer = layerWith(c, st);
      const y = list(layer.apply(xt, { training: false }) as tf.Tensor);
      return { y };
    }
    return { y: list(tf.batchNorm(xt, tf.tensor1d(st.rm), tf.tensor1d(st.rv), tf.tensor1d(st.beta), tf.tensor1d(st.gamma), c.eps)) };
  });
}

function backward(c: Case, st: State, x: Float32Array, dy: Float32Array, training: boolean): Record<string, number[]> {
  return scoped(() => {
    const xt = tf.tensor(x, c.shape);
    const dyt = tf.tensor(dy, c.shape);
    if (c.api === 'layers') {
      const fwd = (layer: tf.layers.Layer, xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx, { training }) as tf.Tensor, dyt)) as tf.Scalar;
      const l1 = layerWith(c, st);
      const dx = tf.grad((xx: tf.Tensor) => fwd(l1, xx))(xt);
      const l2 = layerWith(c, st);
      const vars = l2.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => fwd(l2, xt), vars);
      const out = { dx: list(dx), dgamma: list(grads[vars[0]!.name]!), dbeta: list(grads[vars[1]!.name]!) };
      return out;
    }
    const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = training ? tf.moments(xx, reductionAxes(c)) : { mean: tf.tensor1d(st.rm), variance: tf.tensor1d(st.rv) };
      return tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, b, g, c.eps), dyt));
    };
    const [dx, dg, db] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([xt, tf.tensor1d(st.gamma), tf.tensor1d(st.beta)]);
    return { dx: list(dx!), dgamma: list(dg!), dbeta: list(db!) };
  });
}

// ------------------------------------------------------------------ one case

function exportCase(c: Case, packages: Record<string, string>): Record<string, unknown> {
  const rng = new Rng(c.seed);
  const C = c.shape[c.axis]!;
  const n = numel(c.shape);
  let st: State = {
    gamma: rng.f32(C, () => rng.uniform(0.5, 1.5)),
    beta: rng.f32(C, () => rng.uniform(-1, 1)),
    rm: rng.f32(C, () => rng.uniform(-1, 1)),
    rv: rng.f32(C, () => rng.uniform(0.5, 2)),
  };
  const base = { shape: c.shape, axis: c.axis };
  const steps: unknown[] = [];
  const omitted: string[] = [];
  let firstX: Float32Array | undefined;
  for (let s = 0; s < c.steps; s++) {
    const x = makeX(rng, c);
    firstX ??= x;
    const request = { ...base, x, gamma: st.gamma, beta: st.beta, eps: c.eps, momentum: c.momentum, runningMean: st.rm, runningVar: st.rv };
    const { out, next } = train(c, st, x);
    steps.push({ op: 'forwardTrain', request, result: out });
    st = next;
  }
  {
    const x = makeX(rng, c);
    steps.push({ op: 'forwardInfer', request: { ...base, x, gamma: st.gamma, beta: st.beta, eps: c.eps, runningMean: st.rm, runningVar: st.rv }, result: infer(c, st, x) });
  }
  for (const training of [true, false]) {
    const x = training ? firstX! : makeX(rng, c);
    const dy = rng.f32(n, () => rng.normal());
    const request = { ...base, x, dy, gamma: st.gamma, eps: c.eps, training, ...(training ? {} : { runningMean: st.rm, runningVar: st.rv }) };
    try {
      steps.push({ op: 'backward', request, result: backward(c, st, x, dy, training) });
    } catch (e) {
      // TF.js cannot compute it: record that instead of a step.
      omitted.push(`backward (training ${training}): TF.js threw "${(e as Error).message}"`);
    }
  }
  const m = n / C;
  const tags = new Set<string>([
    ...(c.tags ?? []),
    `rank${c.shape.length}`,
    c.axis === c.shape.length - 1 ? 'channels-last' : c.axis === 1 ? 'channels-first' : `axis${c.axis}`,
    `momentum-${c.momentum}`,
    `eps-${c.eps}`,
    `api-${c.api}`,
    c.data,
    ...(m === 1 ? ['m1'] : m === 2 ? ['m2'] : []),
    ...(c.steps > 1 ? ['multi-step'] : []),
  ]);
  return {
    format: FIXTURE_FORMAT,
    name: `tfjs-${c.name}`,
    description: c.description,
    generator: {
      name: 'scripts/export-tfjs-fixtures.ts',
      language: 'typescript',
      runtime: `node ${process.versions.node.split('.')[0]}`,
      packages,
      settings: { backend: tf.getBackend() },
    },
    api: c.api === 'layers' ? API_LAYERS : API_MOMENTS,
    profile: 'tfjs',
    dtype: 'float32',
    shape: c.shape,
    axis: c.axis,
    layout: layoutName(c.shape, c.axis),
    m,
    seed: c.seed,
    eps: c.eps,
    momentum: c.momentum,
    momentumConvention: 'decay: running = momentum * running + (1 - momentum) * batch',
    data: { kind: c.data, ...(c.offsetRatio ? { offsetToSpread: c.offsetRatio } : {}) },
    tags: [...tags].sort(),
    ...(c.knownIssues ? { knownIssues: c.knownIssues } : {}),
    ...(omitted.length ? { omitted } : {}),
    steps,
  };
}

/** Rebuild fixtures/manifest.json over every case file of every source. */
export function writeManifest(fixturesDir: string): number {
  const files: Record<string, string> = {};
  for (const src of FIXTURE_SOURCES) {
    const d = join(fixturesDir, src);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((f) => f.endsWith('.json')).sort()) files[`${src}/${f}`] = sha256Hex(readFileSync(join(d, f)));
  }
  writeFileSync(join(fixturesDir, 'manifest.json'), manifestText(files));
  return Object.keys(files).length;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const fixturesDir = join(ROOT, 'fixtures');
  if (args[0] === '--manifest-only') {
    console.log(`manifest: ${writeManifest(fixturesDir)} files`);
    return;
  }
  await tf.setBackend('cpu');
  await tf.ready();
  const out = args[0] ? resolve(args[0]) : join(fixturesDir, 'tfjs');
  mkdirSync(out, { recursive: true });
  const version = (p: string) => (JSON.parse(readFileSync(require.resolve(`${p}/package.json`), 'utf8')) as { version: string }).version;
  const packages = {
    '@tensorflow/tfjs': version('@tensorflow/tfjs'),
    '@tensorflow/tfjs-core': version('@tensorflow/tfjs-core'),
    '@tensorflow/tfjs-layers': version('@tensorflow/tfjs-layers'),
    '@tensorflow/tfjs-backend-cpu': version('@tensorflow/tfjs-backend-cpu'),
  };
  for (const f of readdirSync(out).filter((f) => f.startsWith('tfjs-') && f.endsWith('.json'))) unlinkSync(join(out, f));
  const cases = declareCases();
  if (new Set(cases.map((c) => c.name)).size !== cases.length) throw new Error('duplicate case names');
  for (const c of cases) {
    const doc = exportCase(c, packages);
    if (doc.omitted) console.log(`${doc.name as string}: omitted ${(doc.omitted as string[]).join('; ')}`);
    writeFileSync(join(out, `${doc.name as string}.json`), stringifyFixture(doc));
  }
  console.log(`wrote ${cases.length} TF.js fixtures to ${out}`);
  if (!args[0]) console.log(`manifest: ${writeManifest(fixturesDir)} files`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
