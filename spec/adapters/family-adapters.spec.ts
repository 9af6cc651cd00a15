/**
 * The normalization family through real Python frameworks over --exec (issue 24):
 * examples/numpy_adapter.py, examples/torch_adapter.py (--ops …) and examples/keras_adapter.py
 * (KERAS_BACKEND=tensorflow). Each runs when its Python and packages exist and skips with a
 * message otherwise; BN_REQUIRE_FAMILY_ADAPTERS (a comma list of numpy, torch, keras; .ci/run sets
 * it to what it installed) turns a missing one into a failure.
 * Python: numpy and torch from $BN_PYTHON, else /work/venv-torch-fx, /work/venv-torch, python3;
 * Keras from $BN_KERAS_PYTHON, else /work/venv-tf-fx.
 *
 * Part 1, op by op: every declared family op at every declared precision, on channels-first and
 * channels-last layouts, every rank 2-4, several group counts, against the float64 reference
 * within a bound derived below. These are well-conditioned inputs: the part proves the adapters'
 * plumbing (layouts, parameter shapes, dtypes, which output is which), not the frameworks'
 * numerics at their edges (the family checks do that). numpy always; the frameworks (a few
 * hundred calls each, 5-20 s) with BN_FAMILY_ADAPTERS_FULL=1.
 *
 * Part 2, the recorded verdicts (docs/adapters.md): each framework's family checks at a fixed seed
 * with its skips file (examples/skips/<adapter>-family.txt) on a slice that fits CI (float32 and
 * mixed float16, few runs: a PASS), and one known failure per cause, which must still fail.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DType, FamilyOp, FamilyRequest, Precision } from '../../src/contract/contract.js';
import { precisionLabel, precisionsOf, roundTo } from '../../src/contract/dtypes.js';
import { FAMILY, groupOf, groupingFor, paramOf } from '../../src/contract/grouping.js';
import { profiles } from '../../src/contract/profiles.js';
import { callImplementation, supportedFamilyOps } from '../../src/harness/call.js';
import { createExecImplementation, type ExecImplementation } from '../../src/harness/exec.js';
import { runConformance } from '../../src/harness/runner.js';
import { readSkipsFile } from '../../src/cli/main.js';
import { mulberry32 } from '../../src/numerics/random.js';
import { referenceFamily } from '../../src/reference/family.js';

const REQUIRED = new Set((process.env.BN_REQUIRE_FAMILY_ADAPTERS ?? '').split(',').map((x) => x.trim()).filter(Boolean));
const FULL = process.env.BN_FAMILY_ADAPTERS_FULL === '1';

function pythonWith(candidates: Array<string | undefined>, mods: string): string | undefined {
  for (const py of candidates) {
    if (!py || (py !== 'python3' && !existsSync(py))) continue;
    try {
      // find_spec, not import: importing tensorflow or torch here would cost seconds at collection
      const names = JSON.stringify(mods.split(',').map((m) => m.trim()));
      execFileSync(py, ['-c', `import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ${names}) else 1)`], { stdio: 'ignore', timeout: 60_000 });
      return py;
    } catch {
      // next
    }
  }
  return undefined;
}
const torchCandidates = [process.env.BN_PYTHON, '/work/venv-torch-fx/bin/python', '/work/venv-torch/bin/python', 'python3'];
const numpyPy = pythonWith(torchCandidates, 'numpy');
const torchPy = pythonWith(torchCandidates, 'torch, numpy');
const kerasPy = pythonWith([process.env.BN_KERAS_PYTHON, '/work/venv-tf-fx/bin/python'], 'keras, tensorflow, numpy, ml_dtypes');
/** Keras's other backends (not installed by CI: these skip there). */
const kerasJaxPy = pythonWith([process.env.BN_KERAS_JAX_PYTHON, '/work/venv-keras-jax/bin/python'], 'jax, torch, numpy, ml_dtypes');

interface Adapter {
  label: string;
  command?: string;
  missing: string;
  /** The BN_REQUIRE_FAMILY_ADAPTERS name that makes it required (none: never required; Keras's other backends). */
  require?: 'numpy' | 'torch' | 'keras';
  /** Op by op only with BN_FAMILY_ADAPTERS_FULL=1 (the frameworks: CI time goes to part 2). */
  deep?: boolean;
  /** The op-by-op outputs beyond the bound, `op precision output`: the framework's findings (docs/adapters.md). */
  known?: string[];
  timeoutMs?: number;
}
const ADAPTERS: Adapter[] = [
  { label: 'numpy', command: numpyPy && `${numpyPy} examples/numpy_adapter.py`, missing: 'no python with numpy', require: 'numpy' },
  {
    label: 'torch (every family)',
    require: 'torch',
    deep: true,
    command: torchPy && `${torchPy} examples/torch_adapter.py --ops family`,
    missing: 'no python with torch',
    known: [
      // mixed precision: layer_norm's parameter gradients come back rounded through the activation dtype
      ...['float16/float32', 'bfloat16/float32', 'float16', 'bfloat16'].flatMap((p) => [`layerNormBackward ${p} dgamma`, `layerNormBackward ${p} dbeta`]),
      // pure half: parameter-gradient sums in half; instance_norm (batch_norm underneath) folds scale and shift in bfloat16
      'groupNormBackward float16 dgamma',
      'groupNormBackward bfloat16 dgamma',
      'instanceNorm bfloat16 y',
      ...['float16', 'bfloat16'].flatMap((p) => [`instanceNormBackward ${p} dgamma`, `instanceNormBackward ${p} dbeta`]),
    ],
  },
  { label: 'torch rmsNorm (every dtype pair)', command: torchPy && `${torchPy} examples/torch_adapter.py --ops rmsNorm`, missing: 'no python with torch', require: 'torch', deep: true },
  {
    label: 'keras (tensorflow)',
    require: 'keras',
    deep: true,
    command: kerasPy && `KERAS_BACKEND=tensorflow ${kerasPy} examples/keras_adapter.py`,
    missing: 'no python with keras + tensorflow',
    // RMSNormalization autocasts its float32 scale to the half compute dtype: dgamma has half precision
    known: ['rmsNormBackward float16/float32 dgamma', 'rmsNormBackward bfloat16/float32 dgamma'],
  },
  // Keras's other backends (not installed by CI): keras.backend.result_type maps float64 to float32
  // on every backend but tensorflow, so the layers compute float64 requests in float32
  ...(['torch', 'numpy', 'jax'] as const).map((b) => ({
    label: `keras (${b})`,
    command: kerasJaxPy && `KERAS_BACKEND=${b} ${kerasJaxPy} examples/keras_adapter.py`,
    missing: 'no python with keras + jax + torch',
    deep: true,
    timeoutMs: 900_000,
    known: [
      ...['layerNorm', 'rmsNorm', 'groupNorm', 'instanceNorm'].map((op) => `${op} float64 y`),
      ...(b === 'numpy'
        ? []
        : [
            ...['layerNormBackward', 'groupNormBackward', 'instanceNormBackward'].flatMap((op) => ['dx', 'dgamma', 'dbeta'].map((k) => `${op} float64 ${k}`)),
            'rmsNormBackward float64 dx',
            'rmsNormBackward float64 dgamma',
            'rmsNormBackward float16/float32 dgamma',
            'rmsNormBackward bfloat16/float32 dgamma',
          ]),
    ],
  })),
];

// ------------------------------------------------------------------------------ the bound

/** Unit roundoff. */
const U: Record<DType, number> = { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };
/** Smallest subnormal: the absolute floor of one rounding to the dtype. */
const TINY: Record<DType, number> = { float64: 2 ** -1074, float32: 2 ** -149, float16: 2 ** -24, bfloat16: 2 ** -133 };

/**
 * Per-element bound on |adapter - exact| (the same derivation as scripts/export_tf_family_fixtures.py
 * `bounds`, reviewed there): a program computing in unit roundoff u (float32 for half data, what
 * every framework here does, else the wider of dtype and paramDtype) whose outputs are rounded to a
 * narrower dtype (u_y for y, dx; u_p for the parameter-sized and per-group outputs).
 * n values per group, M = max |x| there, s = sqrt(var + eps) (rmsNorm: sqrt(mean(x^2) + eps)).
 *   A sequential sum of n terms errs by <= n u sum |terms|: the mean by <= n u M, x - mean by
 *   <= (n + 2) u M, var relatively by <= 2 (n + 2) u M / s + (n + 1) u, s by half that plus the
 *   root's ulps; so x_hat errs by <= rho (1 + |x_hat|), rho = (n + 8) u (1 + M / s) (rmsNorm does
 *   not cancel: rho = (n + 8) u).
 *   y = gamma x_hat + beta: rho |gamma| (1 + |x_hat|) + 4 u (|y| + |beta|) + 2 u_y (|gamma x_hat| + |beta|).
 *   dx = (g - mean(g) - x_hat mean(g x_hat)) / s, g = gamma dy: each path relatively <= rho + (n + 2) u,
 *   twice their absolute sum over s, plus 2 u_y of it.
 *   dgamma = sum of k = numel / params terms dy x_hat: sum |dy| (rho (1 + |x_hat|) + (k + 2) u |x_hat|);
 *   dbeta = sum dy: (k + 2) u sum |dy|; mean: (n + 2) u M; invStdDev relatively rho; each + u_p |value|.
 * Every output also gets its dtype's smallest subnormal (one rounding near 0), and the float64
 * reference's own error is the same expression at u = 2^-53, covered by adding 2^-52 to u.
 */
function bounds(op: FamilyOp, req: FamilyRequest, exact: Record<string, Float64Array>, p: Precision): Record<string, Float64Array> {
  const f = FAMILY[op];
  const G = groupingFor(op, req as FamilyRequest & { groups?: number });
  const computeDt: DType = p.dtype === 'float64' ? 'float64' : 'float32';
  const u = U[computeDt] + 2 ** -52;
  const uY = U[p.dtype] < U[computeDt] ? 0 : U[p.dtype];
  const uP = U[p.paramDtype] <= U[computeDt] ? 0 : U[p.paramDtype];
  const x = req.x as Float64Array;
  const dy = (req as { dy?: Float64Array }).dy;
  const gamma = req.gamma as Float64Array;
  const beta = (req as { beta?: Float64Array }).beta;
  // per group: mean, 1/s, M, from an exact float64 forward (the reference's)
  const fwd = referenceFamily(profiles.keras, f.forward, { x, shape: req.shape, axis: req.axis, gamma, beta: beta ?? new Float64Array(G.params), eps: req.eps, ...(G.kind === 'group' ? { groups: (req as { groups: number }).groups } : {}), dtype: 'float64', paramDtype: 'float64' } as FamilyRequest) as unknown as Record<string, Float64Array>;
  const inv = fwd.invStdDev!;
  const mean = fwd.mean;
  const M = new Float64Array(G.groups);
  for (let i = 0; i < G.numel; i++) M[groupOf(G, i)] = Math.max(M[groupOf(G, i)]!, Math.abs(x[i]!));
  const n = G.m;
  const rho = Float64Array.from(M, (Mg, g) => (n + 8) * u * (1 + (f.centred ? Mg * inv[g]! : 0)));
  const xh = Float64Array.from(x, (v, i) => (v - (f.centred ? mean![groupOf(G, i)]! : 0)) * inv[groupOf(G, i)]!);
  const out: Record<string, Float64Array> = {};
  const tinyY = TINY[p.dtype];
  const tinyP = TINY[p.paramDtype];
  if (!f.backward) {
    out.y = Float64Array.from(x, (_, i) => {
      const g = groupOf(G, i);
      const ga = Math.abs(gamma[paramOf(G, i)]!);
      const ba = beta ? Math.abs(beta[paramOf(G, i)]!) : 0;
      return rho[g]! * ga * (1 + Math.abs(xh[i]!)) + 4 * u * (Math.abs(exact.y![i]!) + ba) + 2 * uY * (ga * Math.abs(xh[i]!) + ba) + tinyY;
    });
    if (mean) out.mean = Float64Array.from(M, (Mg, g) => (n + 2) * u * Mg + uP * Math.abs(mean[g]!) + tinyP);
    out.invStdDev = Float64Array.from(inv, (v, g) => v * (rho[g]! + uP) + tinyP);
    return out;
  }
  const gAbs = Float64Array.from(x, (_, i) => Math.abs(dy![i]! * gamma[paramOf(G, i)]!));
  const meanG = new Float64Array(G.groups);
  const meanGX = new Float64Array(G.groups);
  for (let i = 0; i < G.numel; i++) {
    const g = groupOf(G, i);
    meanG[g]! += gAbs[i]! / n;
    meanGX[g]! += (gAbs[i]! * (1 + Math.abs(xh[i]!))) / n;
  }
  out.dx = Float64Array.from(x, (_, i) => {
    const g = groupOf(G, i);
    const scale = (gAbs[i]! + (f.centred ? meanG[g]! : 0) + (1 + Math.abs(xh[i]!)) * meanGX[g]!) * inv[g]!;
    return 2 * (rho[g]! + (n + 2) * u) * scale + 2 * uY * scale + tinyY;
  });
  const k = G.numel / G.params;
  const dg = new Float64Array(G.params);
  const db = new Float64Array(G.params);
  for (let i = 0; i < G.numel; i++) {
    const q = paramOf(G, i);
    const a = Math.abs(dy![i]!);
    dg[q]! += a * (rho[groupOf(G, i)]! * (1 + Math.abs(xh[i]!)) + (k + 2) * u * Math.abs(xh[i]!));
    db[q]! += (k + 2) * u * a;
  }
  out.dgamma = Float64Array.from(dg, (v, q) => v + uP * Math.abs(exact.dgamma![q]!) + tinyP);
  if (f.hasBeta) out.dbeta = Float64Array.from(db, (v, q) => v + uP * Math.abs(exact.dbeta![q]!) + tinyP);
  return out;
}

// ------------------------------------------------------------------------------ the cases

/** Layouts per kind: [shape, axis, groups?]. Ranks 2-4, channels first and last, G = 1, a divisor, C. */
const LAYER_CASES: Array<[number[], number]> = [
  [[3, 8], 1],
  [[2, 3, 4], 1],
  [[2, 3, 4], 2],
  [[2, 2, 3, 2], 2],
];
const GROUP_CASES: Array<[number[], number, number]> = [
  [[3, 6], 1, 2],
  [[2, 6, 4], 1, 3],
  [[2, 4, 6], 2, 2],
  [[2, 4, 3, 2], 1, 1],
  [[2, 2, 3, 4], 3, 4],
];
const INSTANCE_CASES: Array<[number[], number]> = [
  [[2, 3, 5], 1],
  [[2, 5, 3], 2],
  [[2, 2, 3, 3], 1],
];

function casesFor(op: FamilyOp, p: Precision, rng: () => number): FamilyRequest[] {
  const kind = FAMILY[op].kind;
  const layouts: Array<[number[], number, number?]> = kind === 'layer' ? LAYER_CASES : kind === 'group' ? GROUP_CASES : INSTANCE_CASES;
  return layouts.map(([shape, axis, groups], j) => {
    const G = groupingFor(op, { shape, axis, groups } as FamilyRequest & { groups?: number });
    const vals = (len: number, dt: DType, f: () => number) => Float64Array.from({ length: len }, () => roundTo(dt, f()));
    const loc = 4 * rng() - 2;
    const spread = 0.5 + 1.5 * rng();
    const req: Record<string, unknown> = {
      x: vals(G.numel, p.dtype, () => loc + spread * (2 * rng() - 1)),
      shape,
      axis,
      gamma: vals(G.params, p.paramDtype, () => (rng() < 0.5 ? -1 : 1) * (0.5 + rng())),
      // eps alternates between a small and a large one (a wrong eps shows in y either way)
      eps: j % 2 ? 0.1 : 1e-5,
    };
    if (kind === 'group') req.groups = groups;
    if (FAMILY[op].backward) req.dy = vals(G.numel, p.dtype, () => 2 * rng() - 1);
    else if (FAMILY[op].hasBeta) req.beta = vals(G.params, p.paramDtype, () => 2 * rng() - 1);
    return req as unknown as FamilyRequest;
  });
}

const asF64 = (a: ArrayLike<number>) => Float64Array.from(a);

/**
 * Every declared op x precision x layout. Returns the outputs beyond their bound, keyed
 * `op precision output` (or `op precision rejected`), each with its first counterexample.
 */
async function opByOp(impl: ExecImplementation): Promise<{ compared: number; beyond: Map<string, string> }> {
  const rng = mulberry32(2024);
  const beyond = new Map<string, string>();
  let compared = 0;
  for (const op of supportedFamilyOps(impl)) {
    for (const p of precisionsOf(impl)) {
      for (const req of casesFor(op, p, rng)) {
        const where = `shape [${req.shape.join(', ')}] axis ${req.axis}${(req as { groups?: number }).groups ? ` groups ${(req as { groups?: number }).groups}` : ''}`;
        const key = (k: string) => `${op} ${precisionLabel(p)} ${k}`;
        let got: Record<string, ArrayLike<number>>;
        try {
          got = await callImplementation(impl, op, req, p, { timeoutMs: 600_000 });
        } catch (e) {
          if (!beyond.has(key('rejected'))) beyond.set(key('rejected'), `${where}: ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        const exact = referenceFamily(profiles.keras, op, { ...req, dtype: 'float64', paramDtype: 'float64' } as FamilyRequest) as unknown as Record<string, Float64Array>;
        const tol = bounds(op, req, exact, p);
        for (const [k, bound] of Object.entries(tol)) {
          const g = got[k];
          if (g === undefined) continue; // optional outputs (mean, invStdDev) are checked when returned
          const gv = asF64(g);
          for (let i = 0; i < gv.length; i++) {
            compared++;
            const err = Math.abs(gv[i]! - exact[k]![i]!);
            if (!(err <= bound[i]!) && !beyond.has(key(k))) {
              beyond.set(key(k), `${where}: ${k}[${i}] = ${gv[i]} expected ${exact[k]![i]} (error ${err.toExponential(3)} > ${bound[i]!.toExponential(3)})`);
            }
          }
        }
      }
    }
  }
  return { compared, beyond };
}

describe('the normalization family through Python frameworks (--exec), op by op against the reference', () => {
  for (const a of ADAPTERS) {
    const required = !!a.require && REQUIRED.has(a.require);
    const why = !a.command ? a.missing : a.deep && !FULL ? 'set BN_FAMILY_ADAPTERS_FULL=1' : '';
    it.skipIf(!!why && !(required && !a.command))(`${a.label}: every declared family op and precision within the derived bound, but the framework's known failures${why ? ` [skipped: ${why}]` : ''}`, async () => {
      expect(a.command, a.missing).toBeDefined();
      const impl = await createExecImplementation(a.command!, { timeoutMs: 600_000 });
      try {
        expect(supportedFamilyOps(impl).length).toBeGreaterThan(0);
        const { compared, beyond } = await opByOp(impl);
        expect(compared).toBeGreaterThan(0);
        // exactly the recorded failures (docs/adapters.md): none new, and each still reproduces
        const report = [...beyond].map(([k, m]) => `${k}: ${m}`);
        expect([...beyond.keys()].sort(), report.join('\n')).toEqual([...(a.known ?? [])].sort());
      } finally {
        await impl.close();
      }
    }, a.timeoutMs ?? 120_000);
  }
});

// ------------------------------------------------------------------------------ part 2: the recorded verdicts

interface CheckRun {
  label: string;
  command?: string;
  missing: string;
  require: 'torch' | 'keras';
  skipsFile: string;
  /** The slice run in CI with the skips file: it must PASS. */
  only: string[];
  skip: string[];
  /** One known failure per cause (each ID is in the skips file), with what its message must say: each must still fail. */
  known: Array<[id: string, message: RegExp]>;
  /** Runs per property for the known failures (the slice uses SLICE_RUNS): some need a few runs to find their case. */
  knownRuns: number;
}
/** Few runs, seed 1: the slice's budget (docs/adapters.md has the full runs at --seed 1 --runs 5). */
const SLICE_RUNS = 2;
const F32_AND_MIXED = (families: string) => [`${families}:dtype=float32;*`, `${families}:dtype=float16;params=float32;*`];
const RUNS: CheckRun[] = [
  {
    label: 'torch 2.13 F.layer_norm / rms_norm / group_norm / instance_norm',
    command: torchPy && `${torchPy} examples/torch_adapter.py --ops family`,
    missing: 'no python with torch',
    require: 'torch',
    skipsFile: 'examples/skips/torch-family.txt',
    // every family check but the scale family (m ~ 2^20: minutes), float32 and float16 / float32
    only: F32_AND_MIXED('*'),
    skip: ['*:scale:*'],
    known: [
      // layer_norm backward: dgamma / dbeta summed in half buffers
      ['ln:agreement:backward:dtype=float16;params=float32;axis=last', /^layerNormBackward: d(gamma|beta)\[/],
      // group_norm channels-last: one-pass variance
      ['gn:agreement:forward:dtype=float32;axis=last', /^groupNorm: (invStdDev|mean|y)\[/],
      // instance_norm backward, N = 1, channels-last gradient
      ['in:gradients:analytic-grid:dtype=float32;axis=last', /instanceNormBackward \(grid data\): d(x|gamma|beta)\[/],
      // rms_norm backward at large magnitudes: rstd^3 underflows
      ['rms:edge:large-magnitude:dtype=float32;axis=last', /rmsNormBackward \[large values\]: dx\[/],
    ],
    knownRuns: 5,
  },
  {
    label: 'Keras 3.15 (tensorflow) LayerNormalization / RMSNormalization / GroupNormalization',
    command: kerasPy && `KERAS_BACKEND=tensorflow ${kerasPy} examples/keras_adapter.py`,
    missing: 'no python with keras + tensorflow',
    require: 'keras',
    skipsFile: 'examples/skips/keras-family.txt',
    // Keras builds a layer per configuration (~20 ms) and runs eagerly: agreement for float32 and
    // mixed_float16, the edge cases under mixed_float16
    only: [...F32_AND_MIXED('*:agreement:*'), '*:edge:*:dtype=float16;params=float32;*'],
    skip: [],
    known: [
      // RMSNormalization under a mixed policy: scale autocast to half
      ['rms:agreement:backward:dtype=float16;params=float32;axis=last', /^rmsNormBackward: dgamma\[/],
      // LayerNormalization backward at |x| ~ 1e18: rsqrt's gradient y^3 underflows
      ['ln:edge:large-magnitude:dtype=bfloat16;params=float32;axis=last', /layerNormBackward \[large values\]: dx\[/],
    ],
    knownRuns: 2,
  },
];

describe('the normalization family through Python frameworks (--exec): the verdicts recorded in docs/adapters.md', () => {
  for (const c of RUNS) {
    const required = REQUIRED.has(c.require);
    it.skipIf(!c.command && !required)(`${c.label}: with ${c.skipsFile} the slice passes, and each cause's known failure still fails${c.command ? '' : ` [skipped: ${c.missing}]`}`, async () => {
      expect(c.command, c.missing).toBeDefined();
      const skips = readSkipsFile(c.skipsFile);
      const knownIds = c.known.map(([id]) => id);
      for (const id of knownIds) expect(skips, `${id} is a recorded failure`).toContain(id);
      const impl = await createExecImplementation(c.command!, { timeoutMs: 60_000 });
      try {
        const warnings: string[] = [];
        const slice = await runConformance(impl, { runs: SLICE_RUNS, seed: 1, only: c.only, skip: c.skip, skipsFile: skips, golden: false, timeoutMs: 60_000, onWarning: (m) => warnings.push(m) });
        const failed = slice.results.filter((x) => x.status !== 'pass' && x.status !== 'skipped' && x.status !== 'not-supported');
        expect(failed.map((x) => `${x.id}: ${x.failure?.message ?? x.status}`)).toEqual([]);
        expect(slice.results.filter((x) => x.id.includes(':') && !x.id.startsWith('bn:') && x.status === 'pass').length).toBeGreaterThan(50);
        // the known failures, one per cause, at the runs that find them
        const known = await runConformance(impl, { runs: c.knownRuns, seed: 1, only: knownIds, golden: false, timeoutMs: 60_000 });
        const got = Object.fromEntries(known.results.map((x) => [x.id, x]));
        for (const [id, message] of c.known) {
          expect(got[id]?.status, id).toBe('fail');
          expect(got[id]?.failure?.message, id).toMatch(message);
        }
      } finally {
        await impl.close();
      }
    }, 240_000);
  }
});
