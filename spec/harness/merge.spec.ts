import { describe, expect, it } from 'vitest';
import { createReference } from '../../src/reference/reference.js';
import { runConformance } from '../../src/harness/runner.js';
import { mergeReports } from '../../src/harness/merge.js';

describe('merge', () => {
  it('joins shards into the unsharded run, in order; refuses a missing shard', async () => {
    const impl = createReference('keras');
    const opts = { runs: 1, seed: 9, only: ['bn:agreement', 'bn:normalization'], golden: false };
    const whole = await runConformance(impl, opts);
    const shards = await Promise.all([1, 2, 3].map((index) => runConformance(impl, { ...opts, shard: { index, count: 3 } })));
    const merged = mergeReports([shards[2]!, shards[0]!, shards[1]!]);
    expect(merged.results.map((r) => r.id)).toEqual(whole.results.map((r) => r.id));
    expect(merged.ok).toBe(true);
    expect(() => mergeReports([shards[0]!, shards[1]!])).toThrow(/missing shard\(s\) 3\/3/);
  });
});
