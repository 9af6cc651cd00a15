/**
 * The synchronized mode of cpu-f32: replicas on worker threads of their own (a gang), statistics
 * all-reduced through shared memory. It passes the whole bn:sync family (every check, 1 to 16
 * replicas) under pytorch here (unbiased running variance: the Bessel check bites); every profile
 * in `npx tsx scripts/sync-sweep.ts`
 * (docs/sync.md). The replicas really are distinct threads, and a process that used them exits.
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { runConformance } from '../../src/harness/runner.js';
import { createCpuF32 } from '../../src/kernels/cpu-f32/index.js';
import { lastReplicaThreads } from '../../src/kernels/cpu-f32/sync.js';
import { getPool } from '../../src/kernels/workers/pool.js';
import { profiles } from '../../src/contract/profiles.js';
import { threadId } from 'node:worker_threads';

// 16 replicas = 16 threads; start them before the timed calls (from TS source each loads tsx)
beforeAll(() => getPool().warm(16), 120_000);

describe('cpu-f32 synchronized mode', () => {
  for (const profile of [profiles.pytorch]) {
    it(`passes the bn:sync family under ${profile.name}`, async () => {
      const report = await runConformance(createCpuF32(profile, { synchronized: true }), { seed: 20261130, runs: 5, only: ['bn:sync'], golden: false });
      expect(report.results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.status} ${r.failure?.message ?? r.reason}`)).toEqual([]);
      expect(report.summary.passed).toBe(12);
    }, 120_000);
  }

  it('runs each replica on a thread of its own, none of them the caller', async () => {
    const impl = createCpuF32('keras', { synchronized: true });
    const C = 2;
    const shards = [3, 0, 1, 4, 2].map((n, r) => ({ x: Float32Array.from({ length: n * C }, (_, i) => r * 10 + i), shape: [n, C] }));
    const got = await impl.forwardTrainSync!({ shards, axis: 1, gamma: new Float32Array([1, 2]), beta: new Float32Array(C), eps: 1e-3, momentum: 0.9, runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1), dtype: 'float32', paramDtype: 'float32' });
    expect(got.replicas).toHaveLength(5);
    expect(new Set(lastReplicaThreads).size).toBe(5);
    expect(lastReplicaThreads).not.toContain(threadId);
  });

  it('refuses other dtypes by name, and the plain kernel has no sync ops', async () => {
    const impl = createCpuF32('keras', { synchronized: true });
    await expect(
      impl.forwardTrainSync!({ shards: [{ x: new Float64Array(4), shape: [2, 2] }], axis: 1, gamma: new Float64Array(2), beta: new Float64Array(2), eps: 1e-3, momentum: 0.9, runningMean: new Float64Array(2), runningVar: new Float64Array(2), dtype: 'float64', paramDtype: 'float64' }),
    ).rejects.toThrow(/dtype float64 is not supported/);
    expect(createCpuF32('keras').forwardTrainSync).toBeUndefined();
  });

  it('a process that ran synchronized calls exits by itself (the replicas\' workers are unref\'d)', () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'spec/kernels/fixtures/sync-exit.ts'], { encoding: 'utf8', timeout: 60_000 });
    expect(out.stderr).toBe('');
    expect(out.stdout).toBe('replicas 5\n');
    expect(out.status).toBe(0);
  }, 70_000);
});
