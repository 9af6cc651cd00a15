/**
 * The judge for the normalization family (src/judge/compare.ts familyExpectation, tolerance.ts
 * section NORMALIZATION FAMILY): honest kernels pass at every offset and dtype tried, the bug
 * classes fail.
 *
 * The honest kernel is float32 throughout (Math.fround after every operation), written from the
 * formulas, not from our reference: two-pass statistics (mean, then mean((x - mean)^2)), sequential
 * float32 sums, rstd = 1 / sqrt(var + eps), y = (x - mean) rstd gamma + beta; backward with
 * dy' = gamma dy, Q = mean(dy'), P = mean(dy' xhat), dx = (dy' - Q - xhat P) rstd, dgamma and dbeta
 * summed in element order across groups. Its mutants change one thing each: the one-pass variance
 * E[x^2] - E[x]^2 (the bug class of onnxruntime #28463 and friends, docs in
 * /work/shared/reference/family-bugs.md), GroupNorm's scale read per group instead of per channel
 * (ONNX GroupNormalization-18 vs -21), LayerNorm's gradient without the mean term.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AccumulationInfo, Arr, DType, FamilyOp, FamilyRequest, Precision } from '../../src/contract/contract.js';
import { fieldDtype, roundTo, toContractRequest, toNumbers } from '../../src/contract/dtypes.js';
import { FAMILY_OPS } from '../../src/contract/contract.js';
import { FAMILY, groupingFor, groupOf, indicesOf, paramOf, type Grouping } from '../../src/contract/grouping.js';
import { profiles } from '../../src/contract/profiles.js';
import { checkAgainst, compareWithReference, expectationFor } from '../../src/judge/compare.js';
import { mulberry32 } from '../../src/numerics/random.js';
import { referenceFamily } from '../../src/reference/family.js';

const SEED = Number(process.env.BN_ORACLE_SEED ?? 1);
const F32_SEQ: AccumulationInfo = { dtype: 'float32', order: 'sequential' };
const f = Math.fround;

interface KernelOptions {
  onePass?: boolean;
  /** GroupNorm-18: gamma indexed by group, not channel. */
  gammaPerGroup?: boolean;
  /** LayerNorm backward without the mean(dy') term. */
  dropQ?: boolean;
}

/** A float32 kernel for any family op, from the formulas (see the file comment). */
function kernel(op: FamilyOp, req: FamilyRequest & { groups?: number }, o: KernelOptions = {}): Record<string, Float32Array> {
  const info = FAMILY[op];
  const G: Grouping = groupingFor(op, req);
  const r = req as FamilyRequest & { beta?: Float32Array; dy?: Float32Array; x: Float32Array; gamma: Float32Array };
  const eps = f(r.eps);
  const gammaOf = (i: number) => r.gamma[o.gammaPerGroup ? Math.floor(groupOf(G, i) % (req.groups ?? 1)) : paramOf(G, i)]!;
  const y = new Float32Array(G.numel);
  const dx = new Float32Array(G.numel);
  const mean = new Float32Array(G.groups);
  const rstd = new Float32Array(G.groups);
  const dgamma = new Float32Array(G.params);
  const dbeta = new Float32Array(G.params);
  for (let g = 0; g < G.groups; g++) {
    const idx = Array.from(indicesOf(G, g));
    let mu = 0;
    let v = 0;
    if (!info.centred) {
      for (const i of idx) v = f(v + f(r.x[i]! * r.x[i]!));
      v = f(v / G.m);
    } else if (o.onePass) {
      let s = 0;
      let s2 = 0;
      for (const i of idx) {
        s = f(s + r.x[i]!);
        s2 = f(s2 + f(r.x[i]! * r.x[i]!));
      }
      mu = f(s / G.m);
      v = Math.max(0, f(f(s2 / G.m) - f(mu * mu)));
    } else {
      for (const i of idx) mu = f(mu + r.x[i]!);
      mu = f(mu / G.m);
      for (const i of idx) {
        const d = f(r.x[i]! - mu);
        v = f(v + f(d * d));
      }
      v = f(v / G.m);
    }
    const rs = f(1 / f(Math.sqrt(f(v + eps))));
    mean[g] = mu;
    rstd[g] = rs;
    const xhat = (i: number) => f(f(r.x[i]! - mu) * rs);
    if (!info.backward) {
      for (const i of idx) y[i] = info.hasBeta ? f(f(xhat(i) * gammaOf(i)) + r.beta![paramOf(G, i)]!) : f(xhat(i) * gammaOf(i));
      continue;
    }
    let Q = 0;
    let P = 0;
    for (const i of idx) {
      const dyp = f(gammaOf(i) * r.dy![i]!);
      Q = f(Q + dyp);
      P = f(P + f(dyp * xhat(i)));
    }
    Q = info.centred && !o.dropQ ? f(Q / G.m) : 0;
    P = f(P / G.m);
    for (const i of idx) dx[i] = f(f(f(f(gammaOf(i) * r.dy![i]!) - Q) - f(xhat(i) * P)) * rs);
  }
  if (!info.backward) return { y, ...(info.centred ? { mean } : {}), invStdDev: rstd };
  // parameter gradients in element order, across groups
  for (let i = 0; i < G.numel; i++) {
    const g = groupOf(G, i);
    const p = paramOf(G, i);
    dgamma[p] = f(dgamma[p]! + f(r.dy![i]! * f(f(r.x[i]! - mean[g]!) * rstd[g]!)));
    dbeta[p] = f(dbeta[p]! + r.dy![i]!);
  }
  return { dx, dgamma, ...(info.hasBeta ? { dbeta } : {}) };
}

interface Case {
  op: FamilyOp;
  req: FamilyRequest & { groups?: number };
}

/** float32 problems: rank 2-4, the op's axes and groups, x = offset + spread z, offset / spread up to 1e4. */
const caseArb = (ops: readonly FamilyOp[], minLogRatio = -2, maxLogRatio = 4, minLogSpread = -3): fc.Arbitrary<Case> =>
  fc
    .record({
      op: fc.constantFrom(...ops),
      dims: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 3, maxLength: 4 }),
      rank2: fc.boolean(),
      axisSeed: fc.nat(),
      groupSeed: fc.nat(),
      eps: fc.constantFrom(1e-5, 1e-3, 0.1),
      logSpread: fc.double({ min: minLogSpread, max: 3, noNaN: true }),
      logRatio: fc.double({ min: minLogRatio, max: maxLogRatio, noNaN: true }),
      sign: fc.constantFrom(-1, 1),
      seed: fc.integer(),
    })
    .map((p) => {
      const kind = FAMILY[p.op].kind;
      const shape = p.rank2 && kind !== 'instance' ? p.dims.slice(0, 2) : p.dims;
      const rank = shape.length;
      const axis = kind === 'layer' ? 1 + (p.axisSeed % (rank - 1)) : p.axisSeed % 2 === 0 ? 1 : rank - 1;
      const C = shape[axis]!;
      const divisors = Array.from({ length: C }, (_, k) => k + 1).filter((d) => C % d === 0);
      const groups = divisors[p.groupSeed % divisors.length]!;
      const G = groupingFor(p.op, { shape, axis, groups });
      const rng = mulberry32(p.seed);
      const spread = 10 ** p.logSpread;
      const offset = p.sign * spread * 10 ** p.logRatio;
      const x = Float32Array.from({ length: G.numel }, () => offset + spread * (2 * rng() - 1));
      return {
        op: p.op,
        req: {
          x,
          dy: Float32Array.from({ length: G.numel }, () => 2 * rng() - 1),
          shape,
          axis,
          groups,
          gamma: Float32Array.from({ length: G.params }, () => (rng() < 0.2 ? -1 : 1) * (0.5 + rng())),
          beta: Float32Array.from({ length: G.params }, () => 2 * rng() - 1),
          eps: p.eps,
          dtype: 'float32',
          paramDtype: 'float32',
        } as FamilyRequest & { groups: number },
      };
    });

const profile = profiles.keras;
const judge = (c: Case, got: Record<string, ArrayLike<number> | undefined>, accumulation = F32_SEQ) =>
  compareWithReference(c.op, profile, c.req, got, { accumulation });

describe('the family judge', () => {
  it('the float32 two-pass kernel passes every op, offsets up to 1e4 x the spread', () => {
    const worst: Record<string, number> = {};
    fc.assert(
      fc.property(caseArb(FAMILY_OPS), (c) => {
        const cmp = judge(c, kernel(c.op, c.req));
        for (const [k, v] of Object.entries(cmp.ratios)) worst[`${c.op}.${k}`] = Math.max(worst[`${c.op}.${k}`] ?? 0, v);
        expect(cmp.ok, `${c.op}: ${JSON.stringify(cmp.worst)} ${cmp.reason}`).toBe(true);
      }),
      { numRuns: Number(process.env.FAMILY_JUDGE_RUNS ?? 400), seed: SEED },
    );
    if (process.env.FAMILY_JUDGE_RUNS) console.log(JSON.stringify(worst));
    // every output of every op was compared (the optional ones included)
    for (const op of FAMILY_OPS) for (const o of [...FAMILY[op].outputs, ...FAMILY[op].optionalOutputs]) expect(worst[`${op}.${o}`], `${op}.${o}`).toBeDefined();
  });

  it('the reference passes itself in float64 and float32 (its own error allowance), with no vacuous bound', () => {
    fc.assert(
      fc.property(caseArb(FAMILY_OPS), (c) => {
        for (const dtype of ['float32', 'float64'] as const) {
          const req = dtype === 'float64' ? { ...c.req, x: Float64Array.from(c.req.x), gamma: Float64Array.from(c.req.gamma), beta: Float64Array.from((c.req as { beta: Float32Array }).beta), dy: Float64Array.from((c.req as { dy: Float32Array }).dy), dtype, paramDtype: dtype } : c.req;
          const got = referenceFamily(profile, c.op, req as FamilyRequest) as unknown as Record<string, ArrayLike<number>>;
          const e = expectationFor(c.op, profile, req as FamilyRequest, { accumulation: { dtype, order: 'sequential' } });
          const cmp = checkAgainst(e, got);
          expect(cmp.ok, `${c.op} ${dtype}: ${JSON.stringify(cmp.worst)}`).toBe(true);
          // the bounds can fail something: each finite and below the output's magnitude somewhere
          for (const [k, b] of Object.entries(e.bounds)) expect(Array.from(b).some((v, i) => v < Math.abs(e.expected[k]![i]!) || e.expected[k]![i] === 0), `${c.op}.${k}`).toBe(true);
        }
      }),
      { numRuns: 100, seed: SEED },
    );
  });

  it('half precision: the reference in float16 / float32 and bfloat16 / bfloat16 passes its own judge, each output rounded once', () => {
    fc.assert(
      fc.property(caseArb(FAMILY_OPS, -2, 2, -1), fc.constantFrom(['float16', 'float32'], ['bfloat16', 'bfloat16']), (c, [dtype, paramDtype]) => {
        const p = { dtype, paramDtype } as Precision;
        const round = (d: DType, a: ArrayLike<number>) => Float64Array.from(a, (v) => roundTo(d, v));
        const r = c.req as FamilyRequest & { dy: Float32Array; beta: Float32Array };
        const numeric = { ...r, x: round(dtype, r.x), dy: round(dtype, r.dy), gamma: round(paramDtype, r.gamma), beta: round(paramDtype, r.beta), dtype: undefined, paramDtype: undefined };
        const req = toContractRequest(numeric as unknown as FamilyRequest, p);
        const got = referenceFamily(profile, c.op, req) as unknown as Record<string, Arr>;
        const decoded = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v instanceof Uint16Array ? toNumbers(v, fieldDtype(k, p)) : v]));
        const cmp = compareWithReference(c.op, profile, req, decoded, { accumulation: F32_SEQ, precision: p });
        expect(cmp.ok, `${c.op} ${dtype}/${paramDtype}: ${JSON.stringify(cmp.worst)}`).toBe(true);
      }),
      { numRuns: 60, seed: SEED },
    );
  });

  it('optional outputs: absent is fine, present is judged; required outputs absent fail', () => {
    const c: Case = { op: 'layerNorm', req: { x: Float32Array.of(1, 2, 3, 5), shape: [2, 2], axis: 1, gamma: Float32Array.of(1, 1), beta: Float32Array.of(0, 0), eps: 1e-3 } };
    const full = kernel('layerNorm', c.req);
    expect(judge(c, { y: full.y }).ok).toBe(true);
    expect(judge(c, { ...full, mean: Float32Array.of(1.5, 9) }).worst?.output).toBe('mean');
    expect(judge(c, { ...full, invStdDev: Float32Array.of(2, 0.99) }).worst?.output).toBe('invStdDev');
    expect(judge(c, { mean: full.mean }).ok).toBe(false);
    const e = expectationFor('layerNorm', profile, c.req, { accumulation: F32_SEQ });
    expect(e.where!('y', 3)).toBe('y[1, 1] (row [1] (axes 0..0); gamma[1])');
  });

  it('one-pass E[x^2] - E[x]^2 fails at offset 1e4 x the spread, for every centred op, or its bound is reported uninformative (never a pass)', () => {
    for (const op of ['layerNorm', 'groupNorm', 'instanceNorm'] as FamilyOp[]) {
      let failed = 0;
      let runs = 0;
      // spread >= 1 > 100 eps: eps does not hide the variance (a one-pass error far below eps moves
      // y by less than a rounding, and no judge could see it, nor need to). Groups of 4..16 values:
      // at |mean| / std = 1e4 the worst-case float32 sequential bound stays informative there
      // (g |mean| / s ~ 1e-3); from m ~ 20 on it reaches x-hat's own size and the comparison is
      // counted inconclusive (src/judge/tally.ts), which the property checks too.
      fc.assert(
        fc.property(
          caseArb([op], 4, 4, 0).filter((c) => {
            const m = groupingFor(c.op, c.req).m;
            return m >= 4 && m <= 16;
          }),
          (c) => {
            runs++;
            const e = expectationFor(c.op, profile, c.req, { accumulation: F32_SEQ });
            const cmp = checkAgainst(e, kernel(op, c.req, { onePass: true }));
            if (cmp.ok) {
              const G = groupingFor(c.op, c.req);
              for (let g = 0; g < G.groups; g++) expect(e.uninformative![g]!.has('y'), `${op} passed with an informative y bound`).toBe(true);
            } else {
              failed++;
              expect(['y', 'invStdDev', 'mean']).toContain(cmp.worst!.output);
            }
          },
        ),
        { numRuns: 30, seed: SEED },
      );
      // catastrophic cancellation at |mean| / std = 1e4 in float32 (u * 1e8 ~ 6 against a variance ~ 1/3)
      expect(failed, `${op}: ${failed} of ${runs} failed`).toBeGreaterThanOrEqual(runs * 0.9);
    }
    // and the same kernel two-pass passes on the same data (the offset alone is no reason to fail)
    fc.assert(
      fc.property(caseArb(['layerNorm'], 4, 4), (c) => {
        expect(judge(c, kernel('layerNorm', c.req)).ok).toBe(true);
      }),
      { numRuns: 30, seed: SEED },
    );
  });

  it('GroupNorm with its scale per group (opset 18) instead of per channel fails; LayerNorm backward without mean(dy\') fails', () => {
    fc.assert(
      fc.property(
        caseArb(['groupNorm'], -1, 1).filter((c) => {
          const G = groupingFor(c.op, c.req);
          return G.paramsPerGroup > 1 && (c.req.groups ?? 1) > 1;
        }),
        (c) => {
          const cmp = judge(c, kernel('groupNorm', c.req, { gammaPerGroup: true }));
          expect(cmp.ok).toBe(false);
          expect(cmp.worst!.output).toBe('y');
        },
      ),
      { numRuns: 30, seed: SEED },
    );
    fc.assert(
      fc.property(caseArb(['layerNormBackward'], -1, 1).filter((c) => groupingFor(c.op, c.req).m >= 4), (c) => {
        const cmp = judge(c, kernel('layerNormBackward', c.req, { dropQ: true }));
        expect(cmp.ok).toBe(false);
        expect(cmp.worst!.output).toBe('dx');
      }),
      { numRuns: 30, seed: SEED },
    );
  });
});
