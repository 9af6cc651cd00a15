/**
 * Benchmark of the float32 CPU kernel against its peers, side by side in ONE process:
 * createCpuF32 (each engine), onnxruntime-node (a one-node BatchNormalization model written here
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
 * Run: npx tsx scripts/bench.ts [--quick] [--out docs/bench.md]
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';
import { createRequire } from 'node:module';
import { createCpuF32, type CpuEngineName } from '../src/kernels/cpu-f32/index.js';
import type { BatchNormImplementation } from '../src/contract.js';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
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

const BASE_SHAPES: number[][] = QUICK ? [[8, 256, 14, 14], [2, 3, 4, 4]] : [[32, 64, 56, 56], [256, 1024], [8, 256, 14, 14], [2, 3, 4, 4]];
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

/** float64 two-pass reference outputs of each op (y, y, dx). */
function reference(cell: Cell, I: Inputs): Record<OpName, Float64Array> {
  const { outer, inner, C, m } = view(cell);
  const mean = new Float64Array(C), vr = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let o = 0; o < outer; o++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) s += I.x[b + i]!;
    mean[c] = s / m;
    let q = 0;
    for (let o = 0; o < outer; o++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) q += (I.x[b + i]! - mean[c]!) ** 2;
    vr[c] = q / m;
  }
  const train = new Float64Array(cell.numel), infer = new Float64Array(cell.numel), bwd = new Float64Array(cell.numel);
  const sdy = new Float64Array(C), sdyx = new Float64Array(C);
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
    const is = 1 / Math.sqrt(vr[c]! + EPS);
    const xh = (I.x[b + i]! - mean[c]!) * is;
    train[b + i] = I.gamma[c]! * xh + I.beta[c]!;
    infer[b + i] = (I.gamma[c]! * (I.x[b + i]! - I.runningMean[c]!)) / Math.sqrt(I.runningVar[c]! + EPS) + I.beta[c]!;
    sdy[c] = sdy[c]! + I.dy[b + i]!;
    sdyx[c] = sdyx[c]! + I.dy[b + i]! * xh;
  }
  for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
    const is = 1 / Math.sqrt(vr[c]! + EPS);
    const xh = (I.x[b + i]! - mean[c]!) * is;
    bwd[b + i] = I.gamma[c]! * is * (I.dy[b + i]! - sdy[c]! / m - (xh * sdyx[c]!) / m);
  }
  return { train, infer, backward: bwd };
}

/** max |out - ref| / max(1, |ref|): float32 outputs of unit scale should sit near 6e-8. */
function maxErr(out: ArrayLike<number>, ref: Float64Array): number {
  let e = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(out[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!));
    if (!(d <= e)) e = Number.isNaN(d) ? Infinity : d;
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Contenders. Each returns a runner: () => the op's main output (y or dx) as a Float32Array.

type Runner = () => Float32Array | Promise<Float32Array>;
interface Contender {
  name: string;
  /** Iteration cap for very slow contenders on big cells. */
  maxIters?: (cell: Cell) => number;
  prepare(cell: Cell, op: OpName, I: Inputs): Runner | undefined;
  /** Called after each (cell, op): release threads and memory so they do not slow the others. */
  done?(): Promise<void>;
}

function ours(engine: CpuEngineName): Contender {
  let impl: BatchNormImplementation;
  try {
    impl = createCpuF32('onnx', { engine });
  } catch {
    return { name: `cpu-f32 (${engine})`, prepare: () => undefined };
  }
  return {
    name: `cpu-f32 (${engine})`,
    prepare(cell, op, I) {
      const { shape, axis } = cell;
      if (op === 'train') return () => (impl.forwardTrain!({ ...I, shape, axis, eps: EPS, momentum: MOMENTUM }) as { y: Float32Array }).y;
      if (op === 'infer') return () => (impl.forwardInfer!({ ...I, shape, axis, eps: EPS }) as { y: Float32Array }).y;
      return () => (impl.backward!({ ...I, shape, axis, eps: EPS, training: true }) as { dx: Float32Array }).dx;
    },
  };
}

/** The textbook two-pass float32 loop a user would write (no layout specialisation). */
const plainJs: Contender = {
  name: 'plain JS two-pass',
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
      return dx;
    };
  },
};

// --- onnxruntime-node: a model written as protobuf bytes (ir 8, opset 15). --------------------

class Pb {
  bytes: number[] = [];
  varint(v: number): this { let n = BigInt(v); if (n < 0n) n += 1n << 64n; do { let b = Number(n & 0x7fn); n >>= 7n; if (n) b |= 0x80; this.bytes.push(b); } while (n); return this; }
  tag(field: number, wire: number): this { return this.varint((field << 3) | wire); }
  int(field: number, v: number): this { return this.tag(field, 0).varint(v); }
  str(field: number, s: string): this { const b = Buffer.from(s, 'utf8'); this.tag(field, 2).varint(b.length); this.bytes.push(...b); return this; }
  msg(field: number, m: Pb): this { this.tag(field, 2).varint(m.bytes.length); this.bytes.push(...m.bytes); return this; }
  f32(field: number, v: number): this { const b = Buffer.alloc(4); b.writeFloatLE(v); this.tag(field, 5); this.bytes.push(...b); return this; }
}
const attrF = (name: string, v: number) => new Pb().str(1, name).f32(2, v).int(20, 1);
const attrI = (name: string, v: number) => new Pb().str(1, name).int(3, v).int(20, 2);
const attrInts = (name: string, v: number[]) => { const p = new Pb().str(1, name); for (const k of v) p.int(8, k); return p.int(20, 7); };
function node(op: string, inputs: string[], outputs: string[], attrs: Pb[]): Pb {
  const p = new Pb();
  for (const s of inputs) p.str(1, s);
  for (const s of outputs) p.str(2, s);
  p.str(3, `${op}_${outputs[0]}`).str(4, op);
  for (const a of attrs) p.msg(5, a);
  return p;
}
function valueInfo(name: string, shape: number[]): Pb {
  const dims = new Pb();
  for (const d of shape) dims.msg(1, new Pb().int(1, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, 1).msg(2, dims)));
}
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
    return { name: 'onnxruntime-node', prepare: () => undefined };
  }
  const sessions = new Map<string, import('onnxruntime-node').InferenceSession>();
  return {
    name: 'onnxruntime-node',
    prepare(cell, op, I) {
      if (op === 'backward') return undefined; // no BatchNormalizationGrad outside ORT training builds
      const key = `${cell.label}/${op}`;
      const training = op === 'train';
      return async () => {
        let s = sessions.get(key);
        if (!s) {
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
    maxIters: backend === 'cpu' ? (cell) => (cell.numel > 1e6 ? 1 : cell.numel > 1e5 ? 3 : 1000) : (cell) => (cell.numel > 1e6 ? 3 : 1000),
    prepare(cell, op, I) {
      const rank = cell.shape.length;
      const axes = Array.from({ length: rank }, (_, k) => k).filter((k) => k !== cell.axis);
      const pshape = cell.shape.map((d, k) => (k === cell.axis ? d : 1));
      const last = cell.axis === rank - 1;
      return async () => {
        if (tf.getBackend() !== backend) await tf.setBackend(backend);
        return tf.tidy(() => {
          const x = tf.tensor(I.x, cell.shape);
          // tf.batchNorm broadcasts rank-1 statistics along the LAST axis only (its kernels index
          // mean[i % C]); for a channel-first layout the same formula is written with broadcasting ops.
          const pv = (a: Float32Array) => (last ? tf.tensor1d(a) : tf.tensor(a, pshape));
          const gamma = pv(I.gamma), beta = pv(I.beta);
          const bn = (xx: import('@tensorflow/tfjs').Tensor, mean: import('@tensorflow/tfjs').Tensor, variance: import('@tensorflow/tfjs').Tensor) =>
            last && op !== 'backward' ? tf.batchNorm(xx, mean, variance, beta, gamma, EPS)
              : tf.add(tf.mul(tf.sub(xx, mean), tf.mul(gamma, tf.rsqrt(tf.add(variance, EPS)))), beta);
          if (op === 'infer') return bn(x, pv(I.runningMean), pv(I.runningVar)).dataSync() as Float32Array;
          const fwd = (xx: import('@tensorflow/tfjs').Tensor) => {
            const { mean, variance } = tf.moments(xx, axes, !last);
            return bn(xx, mean, variance);
          };
          if (op === 'train') return fwd(x).dataSync() as Float32Array;
          const [dx] = tf.grads((xx) => fwd(xx))([x], tf.tensor(I.dy, cell.shape));
          return dx!.dataSync() as Float32Array;
        });
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
  prepare(cell, _op, I) {
    const y = new Float32Array(cell.numel);
    return () => { y.set(I.x); return y; };
  },
};

// ---------------------------------------------------------------------------------------------
// Timing

async function timeRunner(run: Runner, cap: number, budgetMs: number): Promise<{ median: number; iters: number; out: Float32Array }> {
  // Warm-up (JIT, session creation), except for capped very slow runs where it costs seconds.
  let out = cap > 1 ? await run() : new Float32Array(0);
  if (cap > 1) out = await run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < cap && (times.length < 5 || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    out = await run();
    times.push(performance.now() - t0);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1]!, iters: times.length, out };
}

function fmtTime(ms: number): string {
  if (ms < 0.01) return `${(ms * 1000).toFixed(2)} µs`;
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

interface Row { cell: Cell; op: OpName; name: string; ms: number; gbs: number; err: number; iters: number }

async function main(): Promise<void> {
  const t0 = performance.now();
  const contenders: Contender[] = [ours('ts'), ours('wasm'), await onnxContender(), ...(await tfjsContenders()), plainJs, copyYardstick];
  const rows: Row[] = [];
  for (const cell of CELLS) {
    const I = makeInputs(cell);
    const ref = reference(cell, I);
    for (const op of OPS) {
      const bytes = (op === 'backward' ? 3 : 2) * cell.numel * 4;
      for (const c of contenders) {
        const run = c.prepare(cell, op, I);
        if (!run) continue;
        const cap = c.maxIters?.(cell) ?? 1000;
        const budget = cell.numel > 1e6 ? 600 : 250;
        try {
          const { median, iters, out } = await timeRunner(run, cap, budget);
          const err = c === copyYardstick ? NaN : maxErr(out, ref[op]);
          rows.push({ cell, op, name: c.name, ms: median, gbs: bytes / (median * 1e6), err, iters });
          process.stdout.write(`${cell.layout} ${cell.label} ${op.padEnd(8)} ${c.name.padEnd(22)} ${fmtTime(median).padStart(10)}  ${(bytes / (median * 1e6)).toFixed(2)} GB/s  err ${err.toExponential(1)}  (${iters} runs)\n`);
        } catch (e) {
          console.warn(`${c.name} failed on ${cell.label} ${op}: ${(e as Error).message.split('\n')[0]}`);
        }
        await c.done?.();
      }
    }
  }
  const wall = (performance.now() - t0) / 1000;
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, render(rows, wall, contenders.map((c) => c.name)));
  console.log(`\nwrote ${OUT} (${wall.toFixed(0)} s)`);
}

function render(rows: Row[], wall: number, names: string[]): string {
  const ourNames = names.filter((n) => n.startsWith('cpu-f32'));
  const peers = names.filter((n) => !n.startsWith('cpu-f32') && n !== copyYardstick.name);
  const lines: string[] = [];
  lines.push('# Benchmark: cpu-f32 against its peers', '');
  lines.push(`Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), Node ${process.version}, in one process; total ${wall.toFixed(0)} s.`);
  lines.push('Times are medians, end to end from Float32Array inputs to Float32Array outputs (library tensors created and read back inside the timed region).');
  lines.push('GB/s counts the bytes an op must move at least once (forward: x + y; backward: x + dy + dx), so it compares with the copy.');
  lines.push('err = max |out − ref| / max(1, |ref|) against a float64 two-pass reference (y for the forwards, dx for backward). onnx profile conventions (eps 1e-5, momentum 0.9).');
  lines.push('Backward is the training backward (gradients through the batch statistics); onnxruntime-node has no BatchNormalizationGrad outside training builds.', '');
  lines.push('Reproduce: `npx tsx scripts/bench.ts` (or `npm run bench`); `--quick` for the small shapes only.', '');
  const header = ['layout', 'shape', 'op', ...names.map((n) => n), 'best peer', ...ourNames.map((n) => `${n} vs best peer`), `${ourNames[ourNames.length - 1] ?? ''} GB/s (copy)`];
  lines.push(`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`);
  for (const cell of CELLS) {
    for (const op of OPS) {
      const cellRows = rows.filter((r) => r.cell === cell && r.op === op);
      if (!cellRows.length) continue;
      const byName = new Map(cellRows.map((r) => [r.name, r]));
      const peerRows = cellRows.filter((r) => peers.includes(r.name));
      const best = peerRows.reduce<Row | undefined>((b, r) => (!b || r.ms < b.ms ? r : b), undefined);
      const copy = byName.get(copyYardstick.name);
      const cols = names.map((n) => {
        const r = byName.get(n);
        if (!r) return 'n/a';
        const err = Number.isNaN(r.err) ? '' : ` (err ${r.err.toExponential(0)})`;
        return `${fmtTime(r.ms)}${err}`;
      });
      const vs = ourNames.map((n) => {
        const r = byName.get(n);
        return r && best ? `${(best.ms / r.ms).toFixed(2)}× ${r.ms <= best.ms ? 'faster' : 'SLOWER'}` : 'n/a';
      });
      const lastOurs = byName.get(ourNames[ourNames.length - 1] ?? '') ?? byName.get(ourNames[0] ?? '');
      const gb = lastOurs ? `${lastOurs.gbs.toFixed(1)} (${copy ? copy.gbs.toFixed(1) : '?'})` : 'n/a';
      lines.push(`| ${cell.layout} | ${cell.label} | ${op} | ${cols.join(' | ')} | ${best ? best.name : 'n/a'} | ${vs.join(' | ')} | ${gb} |`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

await main();
