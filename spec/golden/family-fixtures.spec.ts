/**
 * The normalization-family golden fixtures (fixtures/keras-family/ from Keras 3 on TensorFlow,
 * fixtures/tfjs-family/ from TF.js; issue 23): every file is in the manifest with its sha256 and
 * well formed (format, op, shapes, lengths, dtype representability), and every recorded y, dx,
 * dgamma, dbeta is within a derived bound of an exact float64 computation written here, except
 * the fields a file's knownIssues name, which must really be beyond it. So the files record what
 * the frameworks computed and mean what the contract says (docs/CONTRACT.md, family ops). This is
 * not the judge: replaying them against implementations comes with the family judge.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DType } from '../../src/contract/contract.js';
import { roundTo } from '../../src/contract/dtypes.js';
import { defaultFixturesDir, FixtureFileError, readManifest, Schema, sha256Hex } from '../../src/fixtures/index.js';
import { FAMILY_FIXTURE_SOURCES, FIXTURE_FORMAT } from '../../src/fixtures/format.js';

type FwdOp = 'layerNorm' | 'rmsNorm' | 'groupNorm' | 'instanceNorm';
const FWD_OPS: readonly FwdOp[] = ['layerNorm', 'rmsNorm', 'groupNorm', 'instanceNorm'];
const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

interface Step {
  op: string;
  request: { x: Float64Array; dy?: Float64Array; gamma: Float64Array; beta?: Float64Array };
  result: Record<string, Float64Array>;
}
interface FamilyFixture {
  file: string;
  name: string;
  op: FwdOp;
  dtype: DType;
  paramDtype: DType;
  shape: number[];
  axis: number;
  /** Statistics groups per sample (groupNorm: `groups`; instanceNorm: C; else 1 per row). */
  G: number;
  groupCount: number;
  groupSize: number;
  eps: number;
  offsetToSpread?: number;
  knownIssues: Array<{ id: string; affects: string[] }>;
  omitted: string[];
  steps: Step[];
}

const prod = (a: number[]) => a.reduce((p, v) => p * v, 1);
const centred = (op: FwdOp) => op !== 'rmsNorm';

/**
 * Validate one family document (the fields fixtures/README.md lists for the family); a problem is
 * a FixtureFileError naming the file and field.
 */
function parseFamily(file: string, doc: unknown): FamilyFixture {
  const s = new Schema(file);
  const d = s.obj(doc, '(document)');
  if (d.format !== FIXTURE_FORMAT) s.fail('format', JSON.stringify(FIXTURE_FORMAT), d.format);
  const name = s.str(d.name, 'name');
  if (name !== file.split('/').pop()!.replace(/\.json$/, '')) s.fail('name', "the file's base name", name);
  s.str(d.description, 'description');
  const g = s.obj(d.generator, 'generator');
  for (const k of ['name', 'language', 'runtime']) s.str(g[k], `generator.${k}`);
  const packages = s.strRecord(g.packages, 'generator.packages');
  if (Object.keys(packages).length === 0) s.fail('generator.packages', 'the exact package versions');
  s.strRecord(d.api, 'api');
  s.obj(d.frameworkArgs, 'frameworkArgs');
  const op = d.op as FwdOp;
  if (!FWD_OPS.includes(op)) s.fail('op', `one of ${FWD_OPS.join(', ')}`, d.op);
  if (!DTYPES.includes(d.dtype as DType)) s.fail('dtype', 'a dtype name', d.dtype);
  const dtype = d.dtype as DType;
  if (d.paramDtype !== undefined && !DTYPES.includes(d.paramDtype as DType)) s.fail('paramDtype', 'a dtype name', d.paramDtype);
  const paramDtype = (d.paramDtype ?? dtype) as DType;
  if (!Array.isArray(d.shape) || d.shape.length < 2) s.fail('shape', 'an array of >= 2 positive integers', d.shape);
  const shape = (d.shape as unknown[]).map((v, i) => s.int(v, `shape[${i}]`, 1));
  const rank = shape.length;
  const axis = s.int(d.axis, 'axis', 1);
  const C = shape[axis] ?? 0;
  let G = 1;
  if (op === 'layerNorm' || op === 'rmsNorm') {
    if (axis > rank - 1) s.fail('axis', `an integer in [1, ${rank - 1}]`, axis);
    if (d.groups !== undefined) s.fail('groups', 'absent for this op', d.groups);
  } else {
    if (axis !== 1 && axis !== rank - 1) s.fail('axis', `1 or ${rank - 1} (the channel axis)`, axis);
    if (op === 'groupNorm') {
      G = s.int(d.groups, 'groups', 1);
      if (C % G !== 0) s.fail('groups', `a divisor of C = ${C}`, G);
    } else {
      if (d.groups !== undefined) s.fail('groups', 'absent for instanceNorm (G = C)', d.groups);
      if (rank < 3) s.fail('shape', 'rank >= 3 for instanceNorm', shape);
      G = C;
    }
  }
  const numel = prod(shape);
  const groupCount = s.int(d.groupCount, 'groupCount', 1);
  const groupSize = s.int(d.groupSize, 'groupSize', 1);
  const perRow = op === 'layerNorm' || op === 'rmsNorm';
  const expectCount = perRow ? prod(shape.slice(0, axis)) : shape[0]! * G;
  if (groupCount !== expectCount) s.fail('groupCount', `${expectCount}`, groupCount);
  if (groupCount * groupSize !== numel) s.fail('groupSize', `${numel / groupCount}`, groupSize);
  const P = perRow ? prod(shape.slice(axis)) : C;
  const eps = s.num(d.eps, 'eps', (n) => Number.isFinite(n) && n > 0, 'a finite number > 0');
  const dataObj = s.obj(d.data, 'data');
  s.str(dataObj.kind, 'data.kind');
  const offsetToSpread = dataObj.offsetToSpread === undefined ? undefined : s.num(dataObj.offsetToSpread, 'data.offsetToSpread');
  s.strArray(d.tags, 'tags');
  const knownIssues = d.knownIssues === undefined ? [] : (d.knownIssues as unknown[]);
  if (!Array.isArray(knownIssues)) s.fail('knownIssues', 'an array', d.knownIssues);
  const ki = knownIssues.map((k, i) => {
    const o = s.obj(k, `knownIssues[${i}]`);
    for (const f of ['summary', 'evidence']) s.str(o[f], `knownIssues[${i}].${f}`);
    return { id: s.str(o.id, `knownIssues[${i}].id`), affects: s.strArray(o.affects, `knownIssues[${i}].affects`) };
  });
  const omitted = d.omitted === undefined ? [] : s.strArray(d.omitted, 'omitted');
  if (!Array.isArray(d.steps) || d.steps.length !== 2) s.fail('steps', `two steps: ${op}, ${op}Backward`, d.steps);
  const steps = (d.steps as unknown[]).map((raw, i): Step => {
    const at = `steps[${i}]`;
    const st = s.obj(raw, at);
    const want = i === 0 ? op : `${op}Backward`;
    if (st.op !== want) s.fail(`${at}.op`, JSON.stringify(want), st.op);
    const rq = s.obj(st.request, `${at}.request`);
    const rs = s.obj(st.result, `${at}.result`);
    const R = `${at}.request`;
    if (!Array.isArray(rq.shape) || rq.shape.join(',') !== shape.join(',')) s.fail(`${R}.shape`, `the case's shape [${shape.join(', ')}]`, rq.shape);
    if (rq.axis !== axis) s.fail(`${R}.axis`, `the case's axis ${axis}`, rq.axis);
    if (rq.eps !== eps) s.fail(`${R}.eps`, `the case's eps ${eps}`, rq.eps);
    if (rq.dtype !== dtype || rq.paramDtype !== paramDtype) s.fail(`${R}.dtype`, `dtype ${dtype} and paramDtype ${paramDtype} named`, [rq.dtype, rq.paramDtype]);
    if (op === 'groupNorm' ? rq.groups !== G : rq.groups !== undefined) s.fail(`${R}.groups`, op === 'groupNorm' ? `${G}` : 'absent', rq.groups);
    // representable in its dtype (Schema.arr), held as doubles for the float64 computation
    const big = (o: Record<string, unknown>, f: string, p: string) => Float64Array.from(s.arr(o[f], `${p}.${f}`, numel, dtype));
    const small = (o: Record<string, unknown>, f: string, p: string, n = P) => Float64Array.from(s.arr(o[f], `${p}.${f}`, n, paramDtype));
    const absent = (o: Record<string, unknown>, f: string, p: string) => {
      if (o[f] !== undefined) s.fail(`${p}.${f}`, 'absent for this op', o[f]);
    };
    const O = `${at}.result`;
    const stats: Record<string, Float64Array> = {};
    for (const f of ['mean', 'invStdDev']) if (rs[f] !== undefined) stats[f] = small(rs, f, O, groupCount);
    if (i === 0) {
      if (!centred(op)) absent(rq, 'beta', R);
      if (!centred(op) && rs.mean !== undefined) s.fail(`${O}.mean`, 'absent for rmsNorm', rs.mean);
      return {
        op: want,
        request: { x: big(rq, 'x', R), gamma: small(rq, 'gamma', R), ...(centred(op) ? { beta: small(rq, 'beta', R) } : {}) },
        result: { y: big(rs, 'y', O), ...stats },
      };
    }
    absent(rq, 'beta', R);
    if (!centred(op)) absent(rs, 'dbeta', O);
    return {
      op: want,
      request: { x: big(rq, 'x', R), dy: big(rq, 'dy', R), gamma: small(rq, 'gamma', R) },
      result: { dx: big(rs, 'dx', O), dgamma: small(rs, 'dgamma', O), ...(centred(op) ? { dbeta: small(rs, 'dbeta', O) } : {}) },
    };
  });
  return { file, name, op, dtype, paramDtype, shape, axis, G, groupCount, groupSize, eps, ...(offsetToSpread === undefined ? {} : { offsetToSpread }), knownIssues: ki, omitted, steps };
}

/** Every family file under dir: on disk = in the manifest, sha256 matching; parsed. */
function loadFamily(dir: string): FamilyFixture[] {
  const manifest = readManifest(dir);
  const out: FamilyFixture[] = [];
  for (const src of FAMILY_FIXTURE_SOURCES) {
    const d = join(dir, src);
    const files = existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.json')).sort() : [];
    for (const f of files) {
      const rel = `${src}/${f}`;
      if (!(rel in manifest)) throw new FixtureFileError(rel, '(manifest)', 'a file listed in manifest.json');
      const bytes = readFileSync(join(d, f));
      const digest = sha256Hex(bytes);
      if (digest !== manifest[rel]) throw new FixtureFileError(rel, '(sha256)', `sha256 ${manifest[rel]} from manifest.json`, digest);
      out.push(parseFamily(rel, JSON.parse(bytes.toString('utf8'))));
    }
  }
  for (const rel of Object.keys(manifest)) {
    if (FAMILY_FIXTURE_SOURCES.includes(rel.split('/')[0] as never) && !out.some((f) => f.file === rel)) {
      throw new FixtureFileError(rel, '(file)', 'the file listed in manifest.json to exist');
    }
  }
  return out;
}

// ------------------------------------------------------------------ exact float64 answer

/**
 * idx[g] = the flat indices of statistics group g (row-major group order). layerNorm/rmsNorm: a
 * group per index of axes [0, axis); groupNorm/instanceNorm: a group per (sample, block of C/G
 * channels).
 */
function grouping(f: Pick<FamilyFixture, 'op' | 'shape' | 'axis' | 'G' | 'groupCount'>): number[][] {
  const { shape, axis, G } = f;
  const idx: number[][] = Array.from({ length: f.groupCount }, () => []);
  const numel = prod(shape);
  const n = prod(shape.slice(axis));
  const C = shape[axis]!;
  const inner = prod(shape.slice(axis + 1));
  const perSample = prod(shape.slice(1));
  for (let i = 0; i < numel; i++) {
    const g = f.op === 'layerNorm' || f.op === 'rmsNorm' ? Math.floor(i / n) : Math.floor(i / perSample) * G + Math.floor((Math.floor(i / inner) % C) / (C / G));
    idx[g]!.push(i);
  }
  return idx;
}

interface Exact {
  y: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  /** the bound for each, for a program of unit roundoff u with outputs rounded to uOut (0: not narrower) */
  bound(u: number, uOut: number, tiny: number): Record<'y' | 'dx' | 'dgamma' | 'dbeta', Float64Array>;
}

/** Misreadings the check must be able to tell from the contract (a negative control). */
type Variant = 'contract' | 'bessel' | 'interleaved-groups' | 'next-axis';

/**
 * The contract's outputs in float64 (two-pass mean with one correction step):
 *   y = gamma (x - mean)/s + beta, s = sqrt(var + eps), var biased (rmsNorm: y = gamma x / s,
 *   s = sqrt(mean(x^2) + eps)); with g = gamma dy and x_hat = (x - mean)/s:
 *   dx = (g - mean(g) - x_hat mean(g x_hat)) / s (rmsNorm: no mean(g) term),
 *   dgamma = sum dy x_hat, dbeta = sum dy, the sums over every element of that parameter.
 */
function exact(f: FamilyFixture, x: Float64Array, gamma: Float64Array, beta: Float64Array | undefined, dy: Float64Array | undefined, variant: Variant = 'contract'): Exact {
  const c = centred(f.op);
  let grp = f;
  if (variant === 'next-axis') grp = { ...f, axis: f.axis + 1, groupCount: prod(f.shape.slice(0, f.axis + 1)), groupSize: prod(f.shape.slice(f.axis + 1)) };
  const idx = grouping(grp);
  // gamma/beta index of element i: over [axis, rank) (layerNorm, rmsNorm; also in the next-axis misreading), else its channel
  const paramOf = (i: number) => (f.op === 'layerNorm' || f.op === 'rmsNorm' ? i % prod(f.shape.slice(f.axis)) : Math.floor(i / prod(f.shape.slice(f.axis + 1))) % f.shape[f.axis]!);
  if (variant === 'interleaved-groups') {
    // channel c in group c mod G instead of the contiguous block c div (C/G)
    const C = f.shape[f.axis]!;
    const inner = prod(f.shape.slice(f.axis + 1));
    const per = prod(f.shape.slice(1));
    for (const row of idx) row.length = 0;
    for (let i = 0; i < x.length; i++) idx[Math.floor(i / per) * f.G + ((Math.floor(i / inner) % C) % f.G)]!.push(i);
  }
  const P = gamma.length;
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(P);
  const dbeta = new Float64Array(P);
  const keep: Array<{ I: number[]; pi: number[]; xh: number[]; s: number; M: number }> = [];
  for (const I of idx) {
    const n = I.length;
    const pi = I.map(paramOf);
    let mu = 0;
    if (c) {
      for (const i of I) mu += x[i]!;
      mu /= n;
      let corr = 0;
      for (const i of I) corr += x[i]! - mu;
      mu += corr / n;
    }
    let ss = 0;
    for (const i of I) ss += (x[i]! - mu) ** 2;
    const s = Math.sqrt(ss / (variant === 'bessel' && n > 1 ? n - 1 : n) + f.eps);
    const xh = I.map((i) => (x[i]! - mu) / s);
    let M = 0;
    for (const i of I) M = Math.max(M, Math.abs(x[i]!));
    // (a backward request has no beta: its y is not compared)
    I.forEach((i, j) => (y[i] = gamma[pi[j]!]! * xh[j]! + (beta?.[pi[j]!] ?? 0)));
    if (dy) {
      const g = I.map((i, j) => gamma[pi[j]!]! * dy[i]!);
      const mg = g.reduce((a, v) => a + v, 0) / n;
      const mgx = g.reduce((a, v, j) => a + v * xh[j]!, 0) / n;
      I.forEach((i, j) => {
        dx[i] = (g[j]! - (c ? mg : 0) - xh[j]! * mgx) / s;
        dgamma[pi[j]!]! += dy[i]! * xh[j]!;
        dbeta[pi[j]!]! += dy[i]!;
      });
    }
    keep.push({ I, pi, xh, s, M });
  }
  /*
   * The bound on |float program - exact| per element. n values per group, M = max|x| there,
   * s as above. A sum of n terms in any order errs by <= n u sum|terms| (sequential is the worst),
   * so the mean by <= n u M, x - mean by <= (n + 2) u M, var relatively by
   * <= 2 (n + 2) u M / s + (n + 1) u and s by half that plus a few ulp for the (r)sqrt. Hence
   * x_hat errs by <= rho (1 + |x_hat|), rho = (n + 8) u (1 + M/s) (rmsNorm has no cancellation:
   * rho = (n + 8) u). Then:
   *   y:      rho |gamma| (1 + |x_hat|) + 4 u (|y| + |beta|)        (scale, shift, add)
   *   dx:     2 (rho + (n + 2) u) / s (|g| + mean|g| + (1 + |x_hat|) mean(|g| (1 + |x_hat|)))
   *           (three paths through x, the mean and the variance, each relatively off by <= the
   *           first factor; twice for their products; rmsNorm has no mean|g| path)
   *   dgamma: sum |dy| (rho (1 + |x_hat|) + (k + 2) u |x_hat|)   (k terms per parameter)
   *   dbeta:  (k + 2) u sum |dy|
   * Outputs rounded to a narrower dtype (mixed_float16's float16 y and dx) add 2 u_out times the
   * absolute scale (|gamma x_hat| + |beta|, or dx's bracket), which also covers a float16 rounding
   * of gamma (RMSNormalization's autocast), and the dtype's smallest subnormal.
   * The float64 reference's own error is the same bound at u = 2^-53, added by the caller.
   * Headroom: the largest error/bound over the committed files is 0.25 for float32 outputs and
   * 0.76 for float16 ones (RMSNormalization's y: its float16 scale and y both round), and every
   * misreading in the negative control is beyond 1.
   */
  const bound = (u: number, uOut: number, tiny: number) => {
    const by = new Float64Array(x.length);
    const bdx = new Float64Array(x.length);
    const bg = new Float64Array(P);
    const bb = new Float64Array(P);
    const k = x.length / P;
    for (const { I, pi, xh, s, M } of keep) {
      const n = I.length;
      const rho = (n + 8) * u * (1 + (c ? M / s : 0));
      const ag = I.map((i, j) => Math.abs(gamma[pi[j]!]! * (dy ? dy[i]! : 0)));
      const mag = ag.reduce((a, v) => a + v, 0) / n;
      const magx = ag.reduce((a, v, j) => a + v * (1 + Math.abs(xh[j]!)), 0) / n;
      I.forEach((i, j) => {
        const gm = Math.abs(gamma[pi[j]!]!);
        const b = c ? Math.abs(beta?.[pi[j]!] ?? 0) : 0;
        const axh = Math.abs(xh[j]!);
        by[i] = rho * gm * (1 + axh) + 4 * u * (Math.abs(y[i]!) + b) + 2 * uOut * (gm * axh + b) + tiny;
        const sdx = (ag[j]! + (c ? mag : 0) + (1 + axh) * magx) / s;
        bdx[i] = 2 * (rho + (n + 2) * u) * sdx + 2 * uOut * sdx + tiny;
        if (dy) {
          bg[pi[j]!]! += Math.abs(dy[i]!) * (rho * (1 + axh) + (k + 2) * u * axh);
          bb[pi[j]!]! += (k + 2) * u * Math.abs(dy[i]!);
        }
      });
    }
    return { y: by, dx: bdx, dgamma: bg, dbeta: bb };
  };
  return { y, dx, dgamma, dbeta, bound };
}

const UNIT: Record<DType, number> = { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };
const TINY: Record<DType, number> = { float64: 0, float32: 2 ** -149, float16: 2 ** -24, bfloat16: 2 ** -133 };
const WIDTH: Record<DType, number> = { bfloat16: 0, float16: 1, float32: 2, float64: 3 };

/**
 * The worst error/bound per recorded field. The framework computes in the wider of dtype and
 * paramDtype (Keras mixed_float16: float32 math on float16 x; the files' api notes say so); y and
 * dx are rounded to dtype.
 */
function assess(f: FamilyFixture, variant: Variant = 'contract'): Record<string, { ratio: number; at: number; got: number; want: number }> {
  const comp = WIDTH[f.paramDtype] > WIDTH[f.dtype] ? f.paramDtype : f.dtype;
  const uOut = comp === f.dtype ? 0 : UNIT[f.dtype];
  const out: Record<string, { ratio: number; at: number; got: number; want: number }> = {};
  for (const st of f.steps) {
    const e = exact(f, st.request.x, st.request.gamma, st.request.beta, st.request.dy, variant);
    const b = e.bound(UNIT[comp], uOut, TINY[f.dtype]);
    const ref = e.bound(UNIT.float64, 0, 0);
    for (const field of ['y', 'dx', 'dgamma', 'dbeta'] as const) {
      const got = st.result[field];
      if (!got) continue;
      let worst = { ratio: 0, at: 0, got: got[0]!, want: e[field][0]! };
      got.forEach((v, i) => {
        const r = Math.abs(v - e[field][i]!) / (b[field][i]! + ref[field][i]!);
        if (r > worst.ratio) worst = { ratio: r, at: i, got: v, want: e[field][i]! };
      });
      out[field] = worst;
    }
  }
  return out;
}

// ------------------------------------------------------------------ the tests

const DIR = defaultFixturesDir();
const all = loadFamily(DIR);
const keras = all.filter((f) => f.file.startsWith('keras-family/'));
const tfjs = all.filter((f) => f.file.startsWith('tfjs-family/'));

describe('family fixtures: files', () => {
  it('at least 40, from Keras and TF.js, every op, ranks 2-5, channels first and last, the dtypes', () => {
    expect(all.length).toBeGreaterThanOrEqual(40);
    expect(keras.length).toBeGreaterThanOrEqual(30);
    expect(tfjs.length).toBeGreaterThanOrEqual(10);
    expect(new Set(keras.map((f) => f.op))).toEqual(new Set(FWD_OPS));
    expect(new Set(all.map((f) => f.shape.length))).toEqual(new Set([2, 3, 4, 5]));
    expect(new Set(keras.map((f) => f.dtype))).toEqual(new Set(['float32', 'float64', 'float16']));
    expect(keras.filter((f) => f.dtype === 'float16').every((f) => f.paramDtype === 'float32')).toBe(true);
    const gn = keras.filter((f) => f.op === 'groupNorm' || f.op === 'instanceNorm');
    expect(gn.some((f) => f.axis === 1) && gn.some((f) => f.axis === f.shape.length - 1)).toBe(true);
    expect(new Set(keras.filter((f) => f.op === 'groupNorm').map((f) => f.G === 1 ? '1' : f.G === f.shape[f.axis] ? 'C' : 'between'))).toEqual(new Set(['1', 'C', 'between']));
    // layerNorm at every contract axis 1..rank-1 that a rank-4 input has
    expect(new Set(all.filter((f) => f.op === 'layerNorm' && f.shape.length === 4).map((f) => f.axis))).toEqual(new Set([1, 2, 3]));
  });

  it('the manifest lists exactly the files on disk, with their sha256', () => {
    const manifest = readManifest(DIR);
    const listed = Object.keys(manifest).filter((f) => FAMILY_FIXTURE_SOURCES.includes(f.split('/')[0] as never));
    expect(listed.sort()).toEqual(all.map((f) => f.file).sort());
  });

  let tmp: string | undefined;
  afterEach(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    tmp = undefined;
  });
  const copy = () => {
    tmp = mkdtempSync(join(tmpdir(), 'bn-family-'));
    cpSync(DIR, tmp, { recursive: true });
    return tmp;
  };
  const FILE = 'keras-family/keras-gn-nchw-g3-float32.json';

  it('a changed byte is a sha256 mismatch; a wrong length, a missing field, a wrong op are named errors', () => {
    const dir = copy();
    const p = join(dir, FILE);
    const text = readFileSync(p, 'utf8');
    writeFileSync(p, text.replace('"eps": 0.001', '"eps": 0.002'));
    expect(() => loadFamily(dir)).toThrow(/keras-gn-nchw-g3-float32\.json: field \(sha256\)/);
    const manifestFix = (t: string) => {
      writeFileSync(p, t);
      const m = readManifest(dir);
      m[FILE] = sha256Hex(t);
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ algorithm: 'sha256', files: m, format: 'bn-conformance-manifest/1' }));
    };
    const doc = () => JSON.parse(text) as { op: string; steps: Array<{ request: Record<string, unknown>; result: Record<string, number[]> }> };
    let d = doc();
    d.steps[1]!.result.dgamma!.pop();
    manifestFix(JSON.stringify(d));
    expect(() => loadFamily(dir)).toThrow(/field steps\[1\]\.result\.dgamma: expected an array of 6 numbers/);
    d = doc();
    delete d.steps[0]!.request.beta;
    manifestFix(JSON.stringify(d));
    expect(() => loadFamily(dir)).toThrow(/field steps\[0\]\.request\.beta: expected an array of 6 numbers.*field missing/);
    d = doc();
    d.steps[0]!.request.groups = 4;
    manifestFix(JSON.stringify(d));
    expect(() => loadFamily(dir)).toThrow(/field steps\[0\]\.request\.groups: expected 3/);
    d = doc();
    d.op = 'batchNorm';
    manifestFix(JSON.stringify(d));
    expect(() => loadFamily(dir)).toThrow(FixtureFileError);
    manifestFix(text);
    expect(loadFamily(dir).length).toBe(all.length);
    rmSync(join(dir, 'keras-family', 'keras-ln-nc-float32.json'));
    expect(() => loadFamily(dir)).toThrow(/keras-ln-nc-float32\.json: field \(file\)/);
  });
});

describe('family fixtures: what the frameworks computed is the contract', () => {
  const results = all.map((f) => ({ f, r: assess(f) }));

  it('every y, dx, dgamma, dbeta is within its bound of the exact float64 answer, except the known issues', () => {
    let worst = 0;
    for (const { f, r } of results) {
      const affected = new Set(f.knownIssues.flatMap((k) => k.affects));
      for (const [field, w] of Object.entries(r)) {
        if (affected.has(field)) {
          // a recorded known issue must be real: beyond the bound
          expect(w.ratio, `${f.name} ${field} (known issue)`).toBeGreaterThan(1);
        } else {
          expect(w.ratio, `${f.name} ${field}[${w.at}]: got ${w.got}, exact ${w.want}`).toBeLessThanOrEqual(1);
          worst = Math.max(worst, w.ratio);
        }
      }
    }
    // the bound is not vacuous: float32 two-pass programs come within a sizeable fraction of it
    expect(worst).toBeGreaterThan(0.05);
  });

  it('two known issues, each in the files it names and nowhere else', () => {
    const known = all.filter((f) => f.knownIssues.length > 0);
    expect(known.map((f) => `${f.name}: ${f.knownIssues.map((k) => k.id).join()}`).sort()).toEqual([
      'keras-rms-mixed-float16-nc: keras-rmsnorm-mixed-float16-dgamma-float16',
      'keras-rms-mixed-float16-nhwc-axis123: keras-rmsnorm-mixed-float16-dgamma-float16',
      'tfjs-ln-nhwc-axis32-unsorted: tfjs-layernorm-unsorted-axes',
    ]);
  });

  it('Keras RMSNormalization under mixed_float16 rounds dgamma to float16', () => {
    for (const f of all.filter((g) => g.knownIssues.some((k) => k.id === 'keras-rmsnorm-mixed-float16-dgamma-float16'))) {
      expect(f.knownIssues.map((k) => k.id)).toEqual(['keras-rmsnorm-mixed-float16-dgamma-float16']);
      const dg = f.steps[1]!.result.dgamma!;
      // every recorded value is a float16 value, though the variable (and paramDtype) is float32
      expect(dg.every((v) => roundTo('float16', v) === v)).toBe(true);
      // while LayerNormalization's and GroupNormalization's mixed_float16 dgamma are float32 values
      const ln = all.find((g) => g.name === 'keras-ln-mixed-float16-nc')!;
      expect(ln.steps[1]!.result.dgamma!.some((v) => roundTo('float16', v) !== v)).toBe(true);
    }
  });

  it('TF.js layerNormalization with axes out of order [3, 2]: off; the same axes in order [2, 3] and Keras [-1, -2]: right', () => {
    const bad = all.find((f) => f.name === 'tfjs-ln-nhwc-axis32-unsorted')!;
    const r = assess(bad);
    for (const field of ['y', 'dx', 'dgamma', 'dbeta']) expect(r[field]!.ratio, field).toBeGreaterThan(1e3);
    for (const name of ['tfjs-ln-nhwc-axis23', 'keras-ln-nhwc-axis-neg1-neg2-float32']) {
      const f = all.find((g) => g.name === name)!;
      expect(f.axis).toBe(bad.axis);
      expect(Math.max(...Object.values(assess(f)).map((w) => w.ratio)), name).toBeLessThanOrEqual(1);
    }
  });

  it('negative control: each misreading of the contract is beyond the bound on the recorded y', () => {
    let tried = 0;
    for (const f of all) {
      // Not where the precision cannot tell them apart: a float32 program at |mean|/std = 1e6 may be
      // off by (n + 8) u 1e6 ~ 1 (the bound), more than n/(n - 1) changes y; so only where that
      // relative bound (n + 8) u |mean|/std is below 5 %.
      const u = f.dtype === 'float64' ? UNIT.float64 : UNIT.float32;
      if ((f.groupSize + 8) * u * (f.offsetToSpread ?? 0) > 0.05) continue;
      const variants: Variant[] = [];
      if (f.groupSize > 1) variants.push('bessel');
      if (f.op === 'groupNorm' && f.G > 1 && f.G < f.shape[f.axis]!) variants.push('interleaved-groups');
      if (f.op === 'layerNorm' && f.axis < f.shape.length - 1) variants.push('next-axis');
      for (const v of variants) {
        tried++;
        expect(assess(f, v).y!.ratio, `${f.name} read as ${v}`).toBeGreaterThan(1);
      }
    }
    expect(tried).toBeGreaterThan(all.length);
  });
});
