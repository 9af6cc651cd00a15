/**
 * The synchronized golden fixtures (fixtures/keras-sync/, from Keras 3 synchronized BN under
 * MirroredStrategy): they parse, Keras's recorded outputs are within its own bound of the exact
 * answer except where a known issue says otherwise (E[x^2] - E[x]^2 at |mean|/std = 1e4), and the
 * reference and the threaded cpu-f32 replay every case as bn:golden:<case>.
 */
import { describe, expect, it } from 'vitest';
import { assessSyncFixture, syncGoldenCases } from '../../src/checks/golden-sync.js';
import { loadSyncFixtures, parseSyncFixture } from '../../src/fixtures/sync-fixtures.js';
import { FixtureError } from '../../src/contract/errors.js';
import { runConformance } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';

const fixtures = loadSyncFixtures();

describe('keras-sync fixtures', () => {
  it('parse: uneven and empty shards, up to 16 replicas, float32 and float64', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(7);
    expect(fixtures.some((f) => f.counts.includes(0))).toBe(true);
    expect(fixtures.some((f) => new Set(f.counts).size > 1)).toBe(true);
    expect(Math.max(...fixtures.map((f) => f.counts.length))).toBe(16);
    expect(new Set(fixtures.map((f) => f.dtype))).toEqual(new Set(['float32', 'float64']));
    for (const f of fixtures) expect(f.steps.map((s) => s.op)).toEqual(['forwardTrainSync', 'backwardSync']);
  });

  it("Keras is within its own bound except at large offsets, where the files record the known issue", () => {
    for (const f of fixtures) {
      const worst = Math.max(...assessSyncFixture(f).map((t) => t.max));
      if (f.name.includes('offset')) {
        expect(worst, f.name).toBeGreaterThan(1);
        expect(f.knownIssues.map((k) => k.id)).toContain('keras-sync-one-pass-variance');
      } else {
        expect(worst, f.name).toBeLessThanOrEqual(1);
        expect(f.knownIssues).toEqual([]);
      }
    }
  });

  it('the reference replays every case, each as bn:golden:<case>, and plain implementations get none', async () => {
    const report = await runConformance(createReference('keras'), { seed: 1, only: ['bn:golden:keras-sync*'] });
    expect(report.results.map((r) => r.id).sort()).toEqual(fixtures.map((f) => `bn:golden:${f.name}`).sort());
    expect(report.results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
    const { forwardTrainSync: _a, backwardSync: _b, ...plain } = createReference('keras');
    expect(syncGoldenCases(plain)).toEqual([]);
  });

  it('a wrong-length recorded result is a named fixture error', () => {
    const f = fixtures[0]!;
    const doc = JSON.parse(JSON.stringify({ format: 'bn-conformance-fixture/1', name: f.name, description: 'x', generator: {}, profile: 'keras', dtype: f.dtype, shape: f.shape, axis: f.axis, layout: f.layout, m: f.m, counts: f.counts, steps: [] }));
    expect(() => parseSyncFixture(`keras-sync/${f.name}.json`, doc)).toThrow(FixtureError);
    expect(() => parseSyncFixture(`keras-sync/${f.name}.json`, doc)).toThrow(/steps/);
  });
});
