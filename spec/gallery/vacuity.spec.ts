/**
 * Vacuity probes (issue 21): broken kernels that used to PASS because a bound silently became
 * unbounded, each now rejected or refused at every seed tried; and the honest kernels they are
 * built from still pass the same checks. A rejection is a failed check or an inconclusive one
 * (report.ok false): either way the run does not pass.
 */
import { describe, expect, it } from 'vitest';
import type { Arr, BatchNormImplementation, ForwardTrainRequest } from '../../src/contract/contract.js';
import { AccumulationError } from '../../src/contract/errors.js';
import { layoutOf } from '../../src/contract/layout.js';
import { emaWeights, profiles, runningVarFactor } from '../../src/contract/profiles.js';
import { runConformance } from '../../src/harness/runner.js';
import { createCpuF32 } from '../../src/kernels/cpu-f32/index.js';
import { tolerance } from '../../src/judge/tolerance.js';

// two seeds in CI (each probe at m = 2^21 costs seconds); BN_VACUITY_SEEDS=1-20 sweeps more
// (seeds 1-4 were run when the probes were written: every probe rejected at each)
const SEEDS = (() => {
  const m = /^(\d+)-(\d+)$/.exec(process.env.BN_VACUITY_SEEDS ?? '');
  return m ? Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i) : [1, 2];
})();
const LIMIT = 2 ** 20;
const SCALE_F32 = ['bn:scale:forward-train:dtype=float32;axis=first', 'bn:scale:backward:dtype=float32;axis=first'];

/** An honest float32 kernel (cpu-f32) whose outputs `corrupt` may spoil. */
function wrapped(name: string, corrupt: (op: string, req: { shape: number[]; axis: number }, out: Record<string, Arr>) => void, extra: Partial<BatchNormImplementation> = {}): BatchNormImplementation {
  const base = createCpuF32('keras', { threads: false });
  const call = (op: 'forwardTrain' | 'forwardInfer' | 'backward') => async (req: never) => {
    const out = (await base[op]!(req)) as unknown as Record<string, Arr>;
    const copy = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.slice()])) as Record<string, Arr>;
    corrupt(op, req, copy);
    return copy as never;
  };
  return { ...base, name, forwardTrain: call('forwardTrain'), forwardInfer: call('forwardInfer'), backward: call('backward'), ...extra };
}

const fillNaN = (out: Record<string, Arr>, names: string[]) => names.forEach((n) => out[n]?.fill(NaN));

/**
 * Statistics that read only the first 2^20 values of each channel (an index or grid limit) but
 * divide by the full m; otherwise a float64 two-pass kernel rounded to float32.
 */
function truncatedStats(req: ForwardTrainRequest) {
  const L = layoutOf(req.shape, req.axis);
  const C = L.channels;
  const mean = new Float32Array(C);
  const variance = new Float32Array(C);
  const y = new Float32Array(L.numel);
  const { keep, take } = emaWeights(profiles.keras, req.momentum);
  const runningMean = new Float32Array(C);
  const runningVar = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const idx: number[] = [];
    for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) idx.push((o * C + c) * L.inner + i);
    const seen = idx.slice(0, LIMIT);
    let s = 0;
    for (const i of seen) s += req.x[i]!;
    const mu = s / L.m;
    let q = 0;
    for (const i of seen) q += (req.x[i]! - mu) ** 2;
    const v = q / L.m;
    const inv = 1 / Math.sqrt(v + req.eps);
    for (const i of idx) y[i] = (req.x[i]! - mu) * inv * req.gamma[c]! + req.beta[c]!;
    mean[c] = mu;
    variance[c] = v;
    runningMean[c] = keep * req.runningMean[c]! + take * mu;
    runningVar[c] = keep * req.runningVar[c]! + take * v * runningVarFactor(profiles.keras, L.m);
  }
  return { y, mean, variance, runningMean, runningVar };
}

describe('vacuity probes: each broken kernel is rejected at every seed', () => {
  it('NaN for y, dx and dgamma whenever a channel holds more than 2^20 values: bn:scale rejects it', async () => {
    const impl = wrapped('nan-beyond-2^20', (op, req, out) => {
      if (layoutOf(req.shape, req.axis).m > LIMIT) fillNaN(out, ['y', 'dx', 'dgamma']);
    });
    for (const seed of SEEDS) {
      const r = await runConformance(impl, { only: SCALE_F32, seed, golden: false });
      expect(r.ok, `seed ${seed}`).toBe(false);
      for (const c of r.results) expect(c.status, `${c.id} at seed ${seed}`).toBe('fail');
    }
  }, 120_000);

  it('statistics over only the first 2^20 values of a channel, divided by the full m: bn:scale rejects it', async () => {
    const impl = wrapped('partial-sums-2^20', () => undefined, { forwardTrain: (req: ForwardTrainRequest) => truncatedStats(req) });
    for (const seed of SEEDS) {
      const r = await runConformance(impl, { only: [SCALE_F32[0]!], seed, golden: false });
      expect(r.results[0]!.status, `seed ${seed}`).toBe('fail');
      expect(r.results[0]!.failure!.message).toMatch(/m = (1056784|2097152) /); // only the million-value sizes exceed 2^20
    }
  }, 120_000);

  it('a float32 kernel declaring bfloat16 (or float16) sums is refused: the declaration cannot disarm the judge', async () => {
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const impl = wrapped('narrow-declaration', () => undefined, { accumulation: { dtype, order: 'sequential' } });
      await expect(runConformance(impl, { only: ['bn:agreement'], seed: 1 })).rejects.toThrow(AccumulationError);
      await expect(runConformance(impl, { only: ['bn:agreement'], seed: 1 })).rejects.toThrow(/narrower than the float32 data/);
    }
  });

  it('NaN for y on ill-conditioned channels (|mean| / std > 10^4) with eps > 0: rejected', async () => {
    const impl = wrapped('nan-when-ill-conditioned', (op, req, out) => {
      if (op !== 'forwardTrain') return;
      const r = req as unknown as ForwardTrainRequest;
      const L = layoutOf(r.shape, r.axis);
      const mean = out.mean!;
      const variance = out.variance!;
      for (let c = 0; c < L.channels; c++) {
        if (Math.abs(mean[c]!) <= 1e4 * Math.sqrt(variance[c]!)) continue;
        for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) out.y![(o * L.channels + c) * L.inner + i] = NaN;
      }
    });
    for (const seed of SEEDS) {
      const r = await runConformance(impl, { only: ['bn:edge:large-offset:dtype=float32;axis=first'], seed, golden: false });
      expect(r.results[0]!.status, `seed ${seed}`).toBe('fail');
    }
  });

  it('a float16 kernel declaring float16 sums, NaN everywhere past m = 2048: the run never passes', async () => {
    const base = createCpuF32('pytorch', { threads: false });
    const impl = wrapped(
      'half-sums-nan',
      (op, req, out) => {
        if (layoutOf(req.shape, req.axis).m > 2048) fillNaN(out, Object.keys(out));
      },
      { precisions: [{ dtype: 'float16', paramDtype: 'float32' }], dtypes: ['float16'], accumulation: { dtype: 'float16', order: 'sequential' }, profile: base.profile },
    );
    for (const seed of SEEDS) {
      const r = await runConformance(impl, { only: ['bn:scale:forward-train', 'bn:edge'], seed, golden: false });
      expect(r.ok, `seed ${seed}`).toBe(false);
      // where a bound exists it catches the NaN (inference y and dx keep theirs at any m); where
      // half sums make none, the values are counted inconclusive, never as checked
      expect(r.results.some((c) => c.status === 'fail'), `seed ${seed}`).toBe(true);
      const scale = r.results.filter((c) => c.id.startsWith('bn:scale'));
      for (const c of scale) expect(c.status === 'fail' || c.comparisons!.inconclusive > 0, c.id).toBe(true);
    }
  }, 120_000);
});

describe('the eps floor (src/judge/tolerance.ts): finite bounds where eps > 0, whatever the variance bound', () => {
  it('a channel whose variance bound reaches var + eps keeps a finite y bound when eps > 0, and none at eps = 0', () => {
    const facts = { m: 2 ** 20, mean: 1000, variance: 1e-4, absMean: 1000, maxDev: 0.02, gamma: 1, training: true };
    const withEps = tolerance({ dtype: 'float32' }, { ...facts, eps: 1e-3 });
    const noEps = tolerance({ dtype: 'float32' }, { ...facts, eps: 0 });
    expect(withEps.y(1, 1000.01, 1)).toBeLessThan(Infinity);
    expect(withEps.dx(1, 1000.01, 1, 0.5, 0.5, 0.1)).toBeLessThan(Infinity);
    expect(withEps.uninformative.has('y')).toBe(true);
    expect(noEps.y(1, 1000.01, 1)).toBe(Infinity);
  });
});
