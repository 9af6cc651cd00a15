/**
 * The normalization family's gallery (issue 23): one plain float32 two-pass JavaScript kernel for
 * LayerNorm, RMSNorm, GroupNorm and InstanceNorm (forward and backward, every product, sum and
 * quotient rounded to float32; its own index arithmetic, not the suite's grouping), correct when
 * `bug` is 'none', with one of the classic bugs of the family switched on otherwise
 * (/work/shared/reference/family-bugs.md):
 * - one-pass-variance: E[x^2] - E[x]^2 in float32 (onnxruntime #28463, the ONNX function bodies);
 * - eps-outside-root: (x - mean) / (sqrt(var) + eps);
 * - unbiased-variance: 1 / (m - 1);
 * - last-axis-only: LayerNorm over the last axis whatever axis asks ([axis, rank) is the contract);
 * - interleaved-groups: GroupNorm channel c in group c % G instead of c / (C / G);
 * - params-per-group: GroupNorm reads gamma[g], beta[g] (opset 18's per-group scale) instead of
 *   the channel's;
 * - rms-centres: RMSNorm subtracts the mean (LayerNorm without beta);
 * - half-sums: squares and sums kept in float16 (onnxruntime PR #24514, #29034): Sum x^2 overflows
 *   at |x| >= 256;
 * - gamma-by-group: LayerNorm reads gamma[row] (the group's index) instead of the position's;
 * - backward-missing-mean-term: dx without the - mean(gamma dy) term;
 * - dgamma-not-summed-over-batch: LayerNorm's dgamma, dbeta from the first row only;
 * - stats-across-batch: GroupNorm / InstanceNorm statistics over every sample (BN's coupling).
 * Half precision (precisions with float16): inputs decoded, outputs rounded once to their dtype
 * (y, dx float16; everything else paramDtype); the arithmetic is float32 unless half-sums.
 */
import type { Arr, BatchNormImplementation, DType, FamilyRequest, Precision } from '../../src/contract/contract.js';
import { decodeHalfArray, encodeHalfArray, roundToHalf } from '../../src/numerics/half.js';

export type FamilyBug =
  | 'none'
  | 'one-pass-variance'
  | 'eps-outside-root'
  | 'unbiased-variance'
  | 'last-axis-only'
  | 'interleaved-groups'
  | 'params-per-group'
  | 'rms-centres'
  | 'half-sums'
  | 'gamma-by-group'
  | 'backward-missing-mean-term'
  | 'dgamma-not-summed-over-batch'
  | 'stats-across-batch';

const f32 = Math.fround;
const h16 = (v: number) => roundToHalf(v, 'float16');

type Kind = 'layer' | 'rms' | 'group' | 'instance';

const read = (a: Arr, dtype: DType): Float64Array | Float32Array => (a instanceof Uint16Array ? decodeHalfArray(a, dtype as 'float16') : (a as Float32Array));
const write = (v: Float64Array, dtype: DType): Arr => (dtype === 'float16' ? encodeHalfArray(v, 'float16') : dtype === 'float64' ? v : Float32Array.from(v));

/** Statistics groups of a request: each group's element indices, and the parameter each element reads. */
function layout(kind: Kind, req: FamilyRequest & { groups?: number }, bug: FamilyBug): { groups: number[][]; param: Int32Array; params: number } {
  const shape = req.shape;
  const numel = shape.reduce((a, b) => a * b, 1);
  const param = new Int32Array(numel);
  if (kind === 'layer' || kind === 'rms') {
    const axis = bug === 'last-axis-only' ? shape.length - 1 : req.axis;
    const inner = shape.slice(axis).reduce((a, b) => a * b, 1);
    const params = shape.slice(req.axis).reduce((a, b) => a * b, 1);
    const groups: number[][] = [];
    for (let r = 0; r < numel / inner; r++) groups.push(Array.from({ length: inner }, (_, k) => r * inner + k));
    for (let i = 0; i < numel; i++) param[i] = bug === 'gamma-by-group' ? Math.floor(i / params) % params : i % params;
    return { groups, param, params };
  }
  const a = req.axis;
  const N = shape[0]!;
  const C = shape[a]!;
  const S = numel / (N * C);
  const G = kind === 'instance' ? C : req.groups!;
  const per = C / G;
  const first = a === 1;
  const groups: number[][] = Array.from({ length: N * G }, () => []);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = bug === 'interleaved-groups' ? c % G : Math.floor(c / per);
      for (let s = 0; s < S; s++) {
        const i = first ? (n * C + c) * S + s : (n * S + s) * C + c;
        groups[bug === 'stats-across-batch' ? g : n * G + g]!.push(i);
        param[i] = bug === 'params-per-group' ? g : c;
      }
    }
  }
  return { groups, param, params: C };
}

export function familyKernel(bug: FamilyBug = 'none', precisions: Precision[] = [{ dtype: 'float32', paramDtype: 'float32' }]): BatchNormImplementation {
  const sum = bug === 'half-sums' ? (a: number, b: number) => h16(a + b) : (a: number, b: number) => f32(a + b);
  const sq = bug === 'half-sums' ? (v: number) => h16(v * v) : (v: number) => f32(v * v);

  function forward(kind: Kind, req: FamilyRequest & { beta?: Arr; groups?: number }) {
    const dtype = req.dtype ?? 'float32';
    const pd = req.paramDtype ?? dtype;
    const x = read(req.x, dtype);
    const gamma = read(req.gamma, pd);
    const beta = req.beta ? read(req.beta, pd) : undefined;
    const { groups, param } = layout(kind, req, bug);
    const eps = f32(req.eps);
    const y = new Float64Array(x.length);
    const mean = new Float64Array(groups.length);
    const inv = new Float64Array(groups.length);
    const centred = kind !== 'rms' || bug === 'rms-centres';
    groups.forEach((idx, g) => {
      const m = idx.length;
      if (m === 0) return; // stats-across-batch leaves the other samples' groups empty
      let s = 0;
      for (const i of idx) s = sum(s, x[i]!);
      const mu = centred ? f32(s / m) : 0;
      let v: number;
      if (bug === 'one-pass-variance') {
        let s2 = 0;
        for (const i of idx) s2 = sum(s2, sq(x[i]!));
        v = f32(f32(s2 / m) - f32(mu * mu));
      } else {
        let s2 = 0;
        for (const i of idx) s2 = sum(s2, sq(f32(x[i]! - mu)));
        v = f32(s2 / (bug === 'unbiased-variance' ? Math.max(m - 1, 1) : m));
      }
      v = Math.max(v, 0);
      const r = bug === 'eps-outside-root' ? f32(1 / f32(f32(Math.sqrt(v)) + eps)) : f32(1 / f32(Math.sqrt(f32(v + eps))));
      mean[g] = mu;
      inv[g] = r;
      for (const i of idx) {
        const xh = f32(f32(x[i]! - mu) * r);
        const j = param[i]!;
        y[i] = beta ? f32(f32(xh * gamma[j]!) + beta[j]!) : f32(xh * gamma[j]!);
      }
    });
    return { y: write(y, dtype), ...(kind !== 'rms' ? { mean: write(mean, pd) } : {}), invStdDev: write(inv, pd) };
  }

  function backward(kind: Kind, req: FamilyRequest & { dy: Arr; groups?: number }) {
    const dtype = req.dtype ?? 'float32';
    const pd = req.paramDtype ?? dtype;
    const x = read(req.x, dtype);
    const dy = read(req.dy, dtype);
    const gamma = read(req.gamma, pd);
    const { groups, param, params } = layout(kind, req, bug);
    const eps = f32(req.eps);
    const dx = new Float64Array(x.length);
    const dgamma = new Float64Array(params);
    const dbeta = new Float64Array(params);
    const centred = kind !== 'rms' || bug === 'rms-centres';
    groups.forEach((idx, g) => {
      const m = idx.length;
      if (m === 0) return;
      let s = 0;
      for (const i of idx) s = sum(s, x[i]!);
      const mu = centred ? f32(s / m) : 0;
      let s2 = 0;
      for (const i of idx) s2 = sum(s2, sq(f32(x[i]! - mu)));
      const v = f32(s2 / (bug === 'unbiased-variance' ? Math.max(m - 1, 1) : m));
      const r = f32(1 / f32(Math.sqrt(f32(v + eps))));
      let q = 0;
      let p = 0;
      for (const i of idx) {
        const xh = f32(f32(x[i]! - mu) * r);
        const dyp = f32(gamma[param[i]!]! * dy[i]!);
        q = sum(q, dyp);
        p = sum(p, f32(dyp * xh));
      }
      const Q = centred && bug !== 'backward-missing-mean-term' ? f32(q / m) : 0;
      const P = f32(p / m);
      const firstRowOnly = bug === 'dgamma-not-summed-over-batch' && g > 0;
      for (const i of idx) {
        const xh = f32(f32(x[i]! - mu) * r);
        const j = param[i]!;
        const dyp = f32(gamma[j]! * dy[i]!);
        dx[i] = f32(f32(f32(dyp - Q) - f32(xh * P)) * r);
        if (firstRowOnly) continue;
        dgamma[j] = f32(dgamma[j]! + f32(dy[i]! * xh));
        dbeta[j] = f32(dbeta[j]! + dy[i]!);
      }
    });
    return { dx: write(dx, dtype), dgamma: write(dgamma, pd), ...(kind !== 'rms' ? { dbeta: write(dbeta, pd) } : {}) };
  }

  type R = FamilyRequest & { dy: Arr; beta?: Arr; groups?: number };
  return {
    name: bug === 'none' ? 'plain float32 family kernel' : `family mutant: ${bug}`,
    profile: 'keras',
    dtypes: [...new Set(precisions.map((p) => p.dtype))],
    precisions,
    axes: 'any',
    accumulation: { dtype: 'float32', order: 'sequential' },
    layerNorm: (req) => forward('layer', req as R),
    layerNormBackward: (req) => backward('layer', req as R),
    rmsNorm: (req) => forward('rms', req as R),
    rmsNormBackward: (req) => backward('rms', req as R) as never,
    groupNorm: (req) => forward('group', req as R),
    groupNormBackward: (req) => backward('group', req as R),
    instanceNorm: (req) => forward('instance', req as R),
    instanceNormBackward: (req) => backward('instance', req as R),
  } as BatchNormImplementation;
}
