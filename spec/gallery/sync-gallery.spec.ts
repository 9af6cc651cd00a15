/**
 * The synchronized-BN gallery: each broken cross-replica implementation is rejected by the
 * bn:sync check that names its bug; the same implementation with no bug passes; a sync failure
 * replays alone from its seed and path, and its counterexample is a small split.
 */
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/harness/runner.js';
import { profiles } from '../../src/contract/profiles.js';
import type { Profile } from '../../src/contract/contract.js';
import { type SyncBug, syncMutant } from './sync-mutants.js';

// BN_GALLERY_SEED: the same gallery at another seed (every bug must be rejected at any seed)
const SEED = Number(process.env.BN_GALLERY_SEED ?? 20261125);

const GALLERY: Array<{ bug: SyncBug; profile: Profile; rejectedBy: string }> = [
  { bug: 'bessel-local-count', profile: profiles.pytorch, rejectedBy: 'bn:sync:running-var-bessel' },
  { bug: 'mean-of-means', profile: profiles.keras, rejectedBy: 'bn:sync:split-invariance' },
  { bug: 'sum-of-squares', profile: profiles.keras, rejectedBy: 'bn:sync:large-offset' },
  { bug: 'backward-local-reduction', profile: profiles.pytorch, rejectedBy: 'bn:sync:backward' },
  { bug: 'running-stats-replica0-only', profile: profiles.keras, rejectedBy: 'bn:sync:replicas-agree' },
];

describe('the synchronized gallery is rejected, each by the check that names its bug', () => {
  for (const { bug, profile, rejectedBy } of GALLERY) {
    it(`${bug} (${profile.name}) fails ${rejectedBy}`, async () => {
      const report = await runConformance(syncMutant(profile, bug), { seed: SEED, runs: 10, golden: false, only: [rejectedBy] });
      const failed = report.results.filter((r) => r.status === 'fail');
      expect(failed.length, report.results.map((r) => `${r.id} ${r.status}`).join('\n')).toBeGreaterThan(0);
      for (const r of failed) {
        expect(r.failure?.message).toBeTruthy();
        expect(r.failure?.counterexample?.op).toMatch(/Sync$/);
        expect(r.failure?.replay).toContain(`--only '${r.id}'`);
      }
    });
  }

  it('the same implementation without a bug passes the whole family (keras and pytorch)', async () => {
    for (const profile of [profiles.keras, profiles.pytorch]) {
      const report = await runConformance(syncMutant(profile, 'none'), { seed: SEED, runs: 10, golden: false, only: ['bn:sync'] });
      expect(report.results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
      expect(report.summary.passed).toBe(24);
    }
  });
});

describe('sync replay and shrinking', () => {
  const id = 'bn:sync:concatenation:dtype=float64;axis=first';
  it('a failure replays alone to the same counterexample, shrunk to a small split', async () => {
    const impl = syncMutant(profiles.keras, 'mean-of-means');
    const first = await runConformance(impl, { seed: SEED, runs: 15, golden: false, only: [id] });
    const f = first.results[0]!.failure!;
    expect(f.path).toBeTruthy();
    const shards = (f.counterexample!.request as { shards: Array<{ shape: number[] }> }).shards;
    // a mean of means is only wrong for unequal counts: the smallest witness has 2 or 3 shards of a few examples
    expect(shards.length).toBeLessThanOrEqual(3);
    expect(shards.reduce((a, s) => a + s.shape[0]!, 0)).toBeLessThanOrEqual(4);
    const again = await runConformance(impl, { seed: SEED, golden: false, only: [id], replayPath: f.path! });
    expect(again.results[0]!.status).toBe('fail');
    expect(again.results[0]!.failure!.counterexample).toEqual(f.counterexample);
  });
});

describe('every door gives the same verdict on a synchronized implementation', () => {
  it('a shard modified in place is input-mutated directly and through --isolate', async () => {
    const { createIsolatedImplementation } = await import('../../src/harness/isolate.js');
    const path = new URL('../fixtures/hostile/sync-mutates.mjs', import.meta.url).pathname;
    // @ts-expect-error plain JavaScript fixture
    const direct = (await import('../fixtures/hostile/sync-mutates.mjs')).default;
    const isolated = await createIsolatedImplementation(path);
    try {
      for (const impl of [direct, isolated]) {
        const report = await runConformance(impl, { seed: SEED, runs: 3, golden: false, only: ['bn:sync:uneven-shards:dtype=float64;axis=first'] });
        expect(report.results[0]!.failure?.fault, impl.name).toBe('input-mutated');
        expect(report.results[0]!.failure?.message).toMatch(/modified its input shards\[\d+\]\.x/);
      }
    } finally {
      await isolated.close();
    }
  });
});
