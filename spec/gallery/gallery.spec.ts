/**
 * The judge against the gallery: every broken implementation is rejected, by the check that
 * names its bug; the reference and a plain correct implementation pass under every profile.
 */
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/harness/runner.js';
import { profiles } from '../../src/contract/profiles.js';
import type { Profile } from '../../src/contract/contract.js';
import { createReference } from '../../src/reference/reference.js';
import { createCpuF32 } from '../../src/kernels/cpu-f32/index.js';
import type { Precision } from '../../src/contract/contract.js';
import { type Bug, mutant } from './mutants.js';
import { type HalfBug, halfMutant } from './half-mutants.js';
// @ts-expect-error the example is plain JavaScript
import { createPlainBatchNorm } from '../../examples/plain-bn.mjs';

// BN_GALLERY_SEED: the same gallery at another seed (every bug must be rejected at any seed)
const SEED = Number(process.env.BN_GALLERY_SEED ?? 20261125);

const GALLERY: Array<{ bug: Bug; profile: Profile; rejectedBy: string; only?: string[] }> = [
  { bug: 'eps-outside-root', profile: profiles.keras, rejectedBy: 'bn:agreement:forward-train' },
  { bug: 'eps-ignored', profile: profiles.keras, rejectedBy: 'bn:normalization:variance' },
  { bug: 'momentum-inverted', profile: profiles.pytorch, rejectedBy: 'bn:running-stats:closed-form' },
  { bug: 'running-var-estimator-swapped', profile: profiles.pytorch, rejectedBy: 'bn:running-stats:closed-form' },
  { bug: 'running-var-estimator-swapped', profile: profiles.keras, rejectedBy: 'bn:running-stats:convergence' },
  { bug: 'stats-over-all-channels', profile: profiles.keras, rejectedBy: 'bn:invariance:channel-independence' },
  { bug: 'stats-over-batch-axis-only', profile: profiles.onnx, rejectedBy: 'bn:consistency:batch-statistics' },
  { bug: 'channel-axis-off-by-one', profile: profiles.keras, rejectedBy: 'bn:consistency:batch-statistics' },
  { bug: 'normalize-with-unbiased-variance', profile: profiles.paper, rejectedBy: 'bn:normalization:variance' },
  { bug: 'backward-missing-statistics-terms', profile: profiles.keras, rejectedBy: 'bn:gradients:analytic-training' },
  { bug: 'backward-missing-mean-term', profile: profiles.keras, rejectedBy: 'bn:gradients:identities' },
  { bug: 'backward-missing-mean-term', profile: profiles.keras, rejectedBy: 'bn:gradients:finite-difference-training' },
  { bug: 'dgamma-without-invstd', profile: profiles.keras, rejectedBy: 'bn:gradients:analytic-training' },
  { bug: 'one-pass-float32-variance', profile: profiles.keras, rejectedBy: 'bn:edge:large-offset:dtype=float32' },
  { bug: 'mutates-input', profile: profiles.keras, rejectedBy: 'bn:hygiene:inputs-unchanged' },
  { bug: 'returns-float64-for-float32', profile: profiles.keras, rejectedBy: 'bn:hygiene:output-types:dtype=float32' },
  { bug: 'running-var-nan-at-m1', profile: profiles['tensorflow-fused'], rejectedBy: 'bn:edge:m1' },
  { bug: 'gamma-applied-before-centering', profile: profiles.keras, rejectedBy: 'bn:normalization:affine' },
  { bug: 'inference-uses-batch-statistics', profile: profiles.keras, rejectedBy: 'bn:agreement:forward-infer' },
  // only large m (or inexact sums) expose these: run with the scale family alone
  { bug: 'float32-sums-declared-float64', profile: profiles.keras, rejectedBy: 'bn:scale:forward-train', only: ['bn:scale'] },
  { bug: 'chunked-merge-drops-tail', profile: profiles.pytorch, rejectedBy: 'bn:scale:forward-train', only: ['bn:scale'] },
  { bug: 'chunked-merge-drops-tail', profile: profiles.keras, rejectedBy: 'bn:scale:backward', only: ['bn:scale'] },
];

/** The scale family costs ~1 s per implementation; it has its own gallery cases and false-alarm test below. */
const SKIP_SCALE = ['bn:scale'];

describe('the broken gallery is rejected, each by the check that names its bug', () => {
  for (const { bug, profile, rejectedBy, only } of GALLERY) {
    it(`${bug} (${profile.name}) fails ${rejectedBy}`, async () => {
      const report = await runConformance(mutant(profile, bug), { seed: SEED, runs: 15, golden: false, ...(only ? { only } : { skip: SKIP_SCALE }) });
      const failed = report.results.filter((r) => r.status === 'fail').map((r) => r.id);
      expect(report.ok).toBe(false);
      expect(failed.filter((id) => id.startsWith(rejectedBy)), `failed: ${failed.join(', ')}`).not.toHaveLength(0);
      // every failure carries what a report needs: a message and, for properties, replay coordinates
      for (const r of report.results.filter((x) => x.status === 'fail')) {
        expect(r.failure?.message).toBeTruthy();
        expect(r.failure?.replay).toContain(`--only '${r.id}'`);
      }
    });
  }
});

describe('no false alarms', () => {
  for (const profile of Object.values(profiles)) {
    it(`the reference passes every check under ${profile.name}`, async () => {
      // float32 / float64 here; the half precisions below (one profile in CI time; every profile: scripts/half-sweep.ts)
      // BatchNorm's checks: the reference's normalization-family checks (ln, rms, gn, in) have their own run, spec/gallery/family-gallery.spec.ts
      const report = await runConformance(createReference(profile, { precisions: [{ dtype: 'float32', paramDtype: 'float32' }, { dtype: 'float64', paramDtype: 'float64' }] }), { seed: SEED, skip: [...SKIP_SCALE, 'ln', 'rms', 'gn', 'in'] });
      const failed = report.results.filter((r) => r.status === 'fail');
      expect(failed.map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
      expect(report.summary.passed).toBeGreaterThan(150);
    });
    it(`a plain, correct JS implementation passes every check under ${profile.name}`, async () => {
      const report = await runConformance(createPlainBatchNorm(profile.name), { seed: SEED + 1, skip: SKIP_SCALE });
      const failed = report.results.filter((r) => r.status === 'fail');
      expect(failed.map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
    });
  }
});

describe('no false alarms at scale (m up to 2^20)', () => {
  it('the reference (float64) and a plain JS implementation (float32) pass the scale family', async () => {
    // one dtype each keeps this at ~4 s; the campaign (npm run sweep) runs every dtype and seed
    for (const [impl, dtype] of [
      [createReference(profiles.pytorch), 'float64'],
      [createPlainBatchNorm('keras'), 'float32'],
    ] as const) {
      const report = await runConformance(impl, { seed: SEED, only: [`bn:scale:*:dtype=${dtype};*`], golden: false });
      expect(report.results.filter((r) => r.status === 'fail').map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
      expect(report.summary.passed).toBeGreaterThan(0);
    }
  });
});

const MIXED16: Precision = { dtype: 'float16', paramDtype: 'float32' };
const PURE16: Precision = { dtype: 'float16', paramDtype: 'float16' };
const MIXEDBF: Precision = { dtype: 'bfloat16', paramDtype: 'float32' };
const HALF_GALLERY: Array<{ bug: HalfBug; profile: Profile; precisions: Precision[]; rejectedBy: string }> = [
  { bug: 'params-cast-to-half', profile: profiles.keras, precisions: [MIXED16], rejectedBy: 'bn:edge:half-running-var-overflow:dtype=float16;params=float32' },
  { bug: 'stats-accumulated-in-half', profile: profiles.keras, precisions: [MIXED16], rejectedBy: 'bn:edge:half-sum-overflow:dtype=float16;params=float32' },
  { bug: 'bessel-in-half', profile: profiles.pytorch, precisions: [PURE16], rejectedBy: 'bn:edge:half-bessel-large-m:dtype=float16;axis' },
  { bug: 'eps-rounded-to-half', profile: profiles.pytorch, precisions: [MIXED16], rejectedBy: 'bn:edge:half-eps:dtype=float16;params=float32' },
  { bug: 'centred-in-bfloat16', profile: profiles.onnx, precisions: [MIXEDBF], rejectedBy: 'bn:edge:large-offset:dtype=bfloat16;params=float32' },
];

describe('half precision: the broken gallery is rejected by name, honest kernels pass', () => {
  for (const { bug, profile, precisions, rejectedBy } of HALF_GALLERY) {
    it(`${bug} (${profile.name}) fails ${rejectedBy}`, async () => {
      // the edge family (where the named checks live) and agreement: enough to name the bug, lean in CI
      const report = await runConformance(halfMutant(profile, bug, precisions), { seed: SEED, runs: 10, golden: false, only: ['bn:edge', 'bn:agreement'] });
      const failed = report.results.filter((r) => r.status === 'fail').map((r) => r.id);
      expect(failed.filter((id) => id.startsWith(rejectedBy)), `failed: ${failed.join(', ')}`).not.toHaveLength(0);
    });
  }
  const ALL_HALF: Precision[] = [MIXED16, MIXEDBF, PURE16, { dtype: 'bfloat16', paramDtype: 'bfloat16' }];
  // CI keeps one profile each (time); every profile at 100 runs x 3 seeds: scripts/half-sweep.sh, docs/edge-cases.md
  it('the same kernel without a bug passes the checks that name them (pytorch, every half precision)', async () => {
    // the checks that name the bugs above (so a rejection there is the bug's, not the kernel's)
    const report = await runConformance(halfMutant(profiles.pytorch, 'none', ALL_HALF), { seed: SEED, runs: 3, golden: false, only: ['bn:edge:half-*', 'bn:edge:large-offset', 'bn:agreement:forward-train'] });
    expect(report.results.filter((r) => r.status === 'fail').map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
  });
  for (const [make, profile] of [[createReference, profiles.keras], [createCpuF32, profiles.pytorch]] as const) {
    it(`${make.name} passes every half check under ${profile.name}`, async () => {
      const impl = make(profile);
      // BatchNorm's half checks (the family's run in spec/checks and spec/gallery/family-gallery.spec.ts);
      // the reference skips bn:scale's half cases (it is the judge's own reference there: the
      // kernel's copy of the same arithmetic, ~100 s on a loaded machine), cpu-f32 runs them
      const only = ['bn:*float16*', 'bn:*bfloat16*'];
      const report = await runConformance(impl, { seed: SEED, runs: 3, golden: false, only, ...(make === createReference ? { skip: ['bn:scale'] } : {}) });
      expect(report.summary.passed).toBeGreaterThan(impl.precisions!.length > 3 ? 300 : 150);
      expect(report.results.filter((r) => r.status === 'fail').map((r) => `${impl.name} ${r.id}: ${r.failure?.message}`)).toEqual([]);
    });
  }
});

describe('replay', () => {
  it('a failure replays alone from its printed seed and path, to the same counterexample', async () => {
    const impl = mutant(profiles.keras, 'eps-outside-root');
    const first = await runConformance(impl, { seed: SEED, runs: 15, golden: false, only: ['bn:agreement:forward-train:dtype=float64;axis=first'] });
    const f = first.results[0]!.failure!;
    expect(f.path).toBeTruthy();
    const again = await runConformance(impl, { seed: SEED, golden: false, only: ['bn:agreement:forward-train:dtype=float64;axis=first'], replayPath: f.path! });
    expect(again.results[0]!.status).toBe('fail');
    expect(again.results[0]!.failure!.counterexample).toEqual(f.counterexample);
  });
});
