/**
 * Export golden LayerNorm fixtures computed by TensorFlow.js (pure-JS CPU backend), the JS-side
 * source of the normalization family beside scripts/export_tf_family_fixtures.py (issue 23).
 *
 *   npx tsx scripts/export-tfjs-family-fixtures.ts [OUT_DIR]   (default: fixtures/tfjs-family, and rewrites fixtures/manifest.json)
 *
 * API: tf.layers.layerNormalization({axis, epsilon}) (its call: tf.moments over `axis`, the
 * statistics and gamma/beta tiled to x's shape, then tf.batchNorm); gradients with tf.grad (dx)
 * and tf.variableGrads (gamma, beta) of sum(layer.apply(x) * dy). TF.js 4.22 has no RMSNorm or
 * GroupNorm layer. Only contiguous trailing axes are recorded (the contract's layerNorm: statistics
 * over axes [axis, rank)). Deterministic: a seeded mulberry32 generator, the single-threaded CPU
 * backend, sorted keys. Format: fixtures/README.md's `bn-conformance-fixture/1`, family steps.
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { FIXTURE_FORMAT, type KnownIssue, stringifyFixture } from '../src/fixtures/format.js';
import { mulberry32 } from '../src/numerics/random.js';
import { writeManifest } from './export-tfjs-fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

type Data = 'normal' | 'offset' | 'onnx-rows' | 'constant-row';
interface Case {
  name: string;
  shape: number[];
  /** tf.layers.layerNormalization's axis argument, as given. */
  faxis: number | number[];
  seed: number;
  eps: number;
  data: Data;
  offsetRatio?: number;
  description: string;
  tags?: string[];
  /** Variants TF.js refuses: a description and the shape the same layer is tried on (recorded in `omitted`). */
  refused?: Array<{ what: string; shape: number[] }>;
  /** Where TF.js is known to disagree with the contract (the spec checks the affected fields really are off). */
  knownIssues?: KnownIssue[];
}

const UNSORTED_AXES_ISSUE: KnownIssue = {
  id: 'tfjs-layernorm-unsorted-axes',
  summary:
    'tf.layers.layerNormalization with axes not in increasing order (e.g. [3, 2]) creates gamma/beta with shape [x.shape[3], x.shape[2]] (the order given) ' +
    'but in call() reshapes them to the broadcast shape [1, 1, x.shape[2], x.shape[3]] instead of transposing, so gamma[c][w] scales element (w\', c\') of the ' +
    'reshaped flat order: y, dx, dgamma and dbeta are wrong whenever the two axes differ in size. Keras 3 sorts the axes in build() (keras-team/keras PR #22296).',
  evidence:
    'tfjs-layers 4.22.0 dist/layers/normalization.js LayerNormalization.build (paramShape = this.axis.map(...)) and call (broadcast = reshape(v, broadcastShape)); ' +
    'reproduced: axis [2, 3] with gamma G and axis [3, 2] with gamma G^T on the same [2, 3, 2, 4] input differ by up to 5.3 in y; ' +
    'the same class of bug for out-of-order axes: webmachinelearning/webnn#748',
  affects: ['y', 'dx', 'dgamma', 'dbeta'],
};

function declareCases(): Case[] {
  return [
    { name: 'ln-nc', shape: [4, 6], faxis: -1, seed: 2001, eps: 1e-3, data: 'normal', description: 'tf.layers.layerNormalization axis -1 on [4, 6] (default eps 1e-3)' },
    { name: 'ln-nlc', shape: [2, 3, 5], faxis: -1, seed: 2002, eps: 1e-5, data: 'normal', description: 'rank 3, axis -1 (contract axis 2)' },
    { name: 'ln-nlc-axis12', shape: [2, 3, 5], faxis: [1, 2], seed: 2003, eps: 1e-3, data: 'normal', description: 'rank 3, axis [1, 2] (contract axis 1)' },
    {
      name: 'ln-nhwc', shape: [2, 3, 2, 4], faxis: -1, seed: 2004, eps: 1e-3, data: 'normal', description: 'rank 4, axis -1 (contract axis 3)',
      // tfjs-layers' batchNormalization helper dispatches on rank 2/3/4 only
      refused: [{ what: 'the same layer on rank 5 [2, 2, 2, 2, 3], axis -1', shape: [2, 2, 2, 2, 3] }],
    },
    { name: 'ln-nhwc-axis23', shape: [2, 3, 2, 4], faxis: [2, 3], seed: 2005, eps: 1e-5, data: 'normal', description: 'rank 4, axis [2, 3] (contract axis 2)' },
    { name: 'ln-nhwc-axis123', shape: [2, 3, 2, 4], faxis: [1, 2, 3], seed: 2006, eps: 0.1, data: 'normal', description: 'rank 4, axis [1, 2, 3] (contract axis 1), eps 0.1' },
    {
      name: 'ln-nhwc-axis32-unsorted', shape: [2, 3, 2, 4], faxis: [3, 2], seed: 2013, eps: 1e-3, data: 'normal', tags: ['tfjs-bug'],
      description: 'axis [3, 2] (out of order; contract axis 2): TF.js lays gamma/beta out in the given order but reshapes instead of transposing',
      knownIssues: [UNSORTED_AXES_ISSUE],
    },
    { name: 'ln-eps1', shape: [4, 6], faxis: -1, seed: 2007, eps: 1, data: 'normal', description: 'eps = 1' },
    { name: 'ln-offset1e4', shape: [4, 8], faxis: -1, seed: 2008, eps: 1e-5, data: 'offset', offsetRatio: 1e4, tags: ['ill-conditioned'], description: '|mean|/std = 1e4 per row in float32' },
    { name: 'ln-offset1e6', shape: [4, 8], faxis: -1, seed: 2009, eps: 1e-5, data: 'offset', offsetRatio: 1e6, tags: ['ill-conditioned'], description: '|mean|/std = 1e6 per row in float32 (x quantized at ~0.06 std)' },
    {
      name: 'ln-onnx-rows', shape: [3, 4], faxis: -1, seed: 2010, eps: 1e-5, data: 'onnx-rows', tags: ['ill-conditioned', 'constant-row'],
      description: 'the rows of onnxruntime #28463 (40000..40003) and #21935 (constant 1234.0), and a normal row',
    },
    { name: 'ln-constant-row-nlc-axis12', shape: [3, 2, 4], faxis: [1, 2], seed: 2011, eps: 1e-3, data: 'constant-row', tags: ['constant-row'], description: 'row 1 constant 2.5 over axes [1, 2]: variance 0, y = beta' },
    { name: 'ln-large-row', shape: [2, 1024], faxis: -1, seed: 2012, eps: 1e-5, data: 'normal', tags: ['large-group'], description: '1024 values per row: long reductions' },
  ];
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

/** The contract's axis: the framework's axes must be [axis, rank) (contiguous, trailing). */
function contractAxis(c: Case): number {
  const r = c.shape.length;
  const axes = (Array.isArray(c.faxis) ? c.faxis : [c.faxis]).map((a) => (a + r) % r).sort((a, b) => a - b);
  if (axes[0]! < 1 || axes.some((a, i) => a !== axes[0]! + i) || axes.at(-1) !== r - 1) {
    throw new Error(`${c.name}: axes ${axes.join(',')} are not the contiguous trailing axes`);
  }
  return axes[0]!;
}

/** x with a location and spread per row (statistics group); the special rows of the bug reports. */
function makeX(rng: Rng, c: Case, n: number): Float32Array {
  const rows = numel(c.shape) / n;
  const spread = Array.from({ length: rows }, () => rng.uniform(0.5, 2));
  const loc =
    c.data === 'offset'
      ? spread.map((s) => c.offsetRatio! * s * (rng.uniform(0, 1) < 0.5 ? -1 : 1))
      : Array.from({ length: rows }, () => rng.uniform(-3, 3));
  let i = 0;
  const x = rng.f32(numel(c.shape), () => {
    const r = Math.floor(i++ / n);
    return loc[r]! + spread[r]! * rng.normal();
  });
  if (c.data === 'onnx-rows') {
    x.set([40000, 40001, 40002, 40003, 1234, 1234, 1234, 1234], 0);
  } else if (c.data === 'constant-row') {
    x.fill(2.5, n, 2 * n);
  }
  return x;
}

// ------------------------------------------------------------------ the layer

const API = {
  layerNorm:
    'tf.layers.layerNormalization({axis, epsilon}).apply(x): tf.moments(x, axis, keepDims) (two-pass), mean/variance/gamma/beta tiled to x.shape, tf.batchNorm (x - mean) * rsqrt(variance + eps) * gamma + beta; gamma/beta of shape x.shape[axis:] written flat row-major',
  layerNormBackward: 'tf.grad (dx) and tf.variableGrads (gamma, beta) of sum(layer.apply(x) * dy), each on a layer with the same weights',
  params:
    "gamma/beta (and dgamma/dbeta) are held by the layer with shape x.shape[a] for a in `axis` as given; written here row-major over the sorted axes (a transpose where the given order is not increasing, the identity otherwise)",
};

/**
 * The layer's gamma/beta have shape x.shape[a] for a in the axes *as given*; the contract's are
 * row-major over the sorted axes [axis, rank). perm[i] = which sorted axis the layer's i-th is.
 */
function paramPerm(c: Case, shape: number[]): number[] {
  const r = shape.length;
  const given = (Array.isArray(c.faxis) ? c.faxis : [c.faxis]).map((a) => (a + r) % r);
  const first = Math.min(...given);
  return given.map((a) => a - first);
}

function layerWith(c: Case, gamma: Float32Array, beta: Float32Array, shape = c.shape): tf.layers.Layer {
  const layer = tf.layers.layerNormalization({ axis: Array.isArray(c.faxis) ? [...c.faxis] : c.faxis, epsilon: c.eps });
  layer.build(shape);
  const perm = paramPerm(c, shape);
  const sorted = shape.slice(shape.length - perm.length);
  // contract order -> the layer's (the meaning its weight shape gives each entry): a transpose
  const toLayer = (v: Float32Array) => tf.transpose(tf.tensor(v, sorted), perm);
  layer.setWeights([toLayer(gamma), toLayer(beta)]);
  return layer;
}

/** A gradient of the layer's weight (its axis order) back in the contract's row-major order. */
function toContract(c: Case, t: tf.Tensor): number[] {
  const perm = paramPerm(c, c.shape);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return list(tf.transpose(t, inverse));
}

const list = (t: tf.Tensor) => Array.from(t.dataSync() as Float32Array);

function run(c: Case, x: Float32Array, dy: Float32Array, gamma: Float32Array, beta: Float32Array): Record<string, number[]> {
  tf.engine().startScope();
  try {
    const xt = tf.tensor(x, c.shape);
    const dyt = tf.tensor(dy, c.shape);
    const y = list(layerWith(c, gamma, beta).apply(xt) as tf.Tensor);
    const loss = (layer: tf.layers.Layer, xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dyt)) as tf.Scalar;
    const l1 = layerWith(c, gamma, beta);
    const dx = list(tf.grad((xx: tf.Tensor) => loss(l1, xx))(xt));
    const l2 = layerWith(c, gamma, beta);
    const vars = l2.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => loss(l2, xt), vars);
    return { y, dx, dgamma: toContract(c, grads[vars[0]!.name]!), dbeta: toContract(c, grads[vars[1]!.name]!) };
  } finally {
    tf.engine().endScope();
  }
}

/** The framework's refusal of a variant, with its message (an Error if TF.js accepts it after all). */
function refusal(c: Case, what: string, shape: number[]): string {
  const n = numel(shape.slice(contractAxis({ ...c, shape })));
  tf.engine().startScope();
  try {
    const ones = new Float32Array(n).fill(1);
    layerWith(c, ones, new Float32Array(n), shape).apply(tf.zeros(shape));
  } catch (e) {
    return `${what}: TF.js threw ${(e as Error).name}: ${(e as Error).message}`;
  } finally {
    tf.engine().endScope();
  }
  throw new Error(`${c.name}: expected TF.js to refuse ${what}`);
}

// ------------------------------------------------------------------ one case

function exportCase(c: Case, packages: Record<string, string>): Record<string, unknown> {
  const rng = new Rng(c.seed);
  const axis = contractAxis(c);
  const n = numel(c.shape.slice(axis));
  const gamma = rng.f32(n, () => rng.uniform(0.5, 1.5));
  const beta = rng.f32(n, () => rng.uniform(-1, 1));
  const x = makeX(rng, c, n);
  const dy = rng.f32(numel(c.shape), () => rng.normal());
  const out = run(c, x, dy, gamma, beta);
  const named = { dtype: 'float32', paramDtype: 'float32' };
  const base = { ...named, shape: c.shape, axis, eps: c.eps };
  const steps = [
    { op: 'layerNorm', request: { ...base, x, gamma, beta }, result: { y: out.y } },
    { op: 'layerNormBackward', request: { ...base, x, dy, gamma }, result: { dx: out.dx, dgamma: out.dgamma, dbeta: out.dbeta } },
  ];
  const omitted = (c.refused ?? []).map((r) => refusal(c, r.what, r.shape));
  const tags = new Set([...(c.tags ?? []), `rank${c.shape.length}`, 'float32', c.data, `eps-${c.eps}`, 'op-layerNorm', `axis-${axis}`]);
  return {
    format: FIXTURE_FORMAT,
    name: `tfjs-${c.name}`,
    description: c.description,
    generator: {
      name: 'scripts/export-tfjs-family-fixtures.ts',
      language: 'typescript',
      runtime: `node ${process.versions.node.split('.')[0]}`,
      packages,
      settings: { backend: tf.getBackend() },
    },
    api: API,
    frameworkArgs: { axis: c.faxis, epsilon: c.eps },
    op: 'layerNorm',
    dtype: 'float32',
    shape: c.shape,
    axis,
    groupCount: numel(c.shape) / n,
    groupSize: n,
    seed: c.seed,
    eps: c.eps,
    data: { kind: c.data, ...(c.offsetRatio ? { offsetToSpread: c.offsetRatio } : {}) },
    tags: [...tags].sort(),
    ...(c.knownIssues ? { knownIssues: c.knownIssues } : {}),
    ...(omitted.length ? { omitted } : {}),
    steps,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  await tf.setBackend('cpu');
  await tf.ready();
  const out = args[0] ? resolve(args[0]) : join(ROOT, 'fixtures', 'tfjs-family');
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
  console.log(`wrote ${cases.length} TF.js family fixtures to ${out}`);
  if (!args[0]) console.log(`manifest: ${writeManifest(join(ROOT, 'fixtures'))} files`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
