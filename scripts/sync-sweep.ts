/**
 * No false alarms in the bn:sync family at 10x the default runs, several seeds: the reference
 * (Chan merge in double-double), the threaded cpu-f32 synchronized mode, and the numpy --exec
 * adapter (float32 Chan merges replica after replica) under every profile. One line per
 * (implementation, profile, seed); exits 1 on any failure.
 *   npx tsx scripts/sync-sweep.ts [runs] [seeds] [python]
 */
import { createExecImplementation } from '../src/harness/exec.js';
import { runConformance, DEFAULT_RUNS } from '../src/harness/runner.js';
import { createCpuF32 } from '../src/kernels/cpu-f32/index.js';
import { getPool } from '../src/kernels/workers/pool.js';
import { profiles } from '../src/contract/profiles.js';
import { createReference } from '../src/reference/reference.js';

const runs = Number(process.argv[2] ?? DEFAULT_RUNS * 10);
const seeds = Number(process.argv[3] ?? 3);
const python = process.argv[4] ?? 'python3';
let failed = 0;
await getPool().warm(16);
for (const profile of Object.values(profiles)) {
  const numpy = await createExecImplementation(`${python} examples/numpy_adapter.py --profile ${profile.name}`);
  for (const [label, impl] of [
    ['reference', createReference(profile)],
    ['cpu-f32-sync', createCpuF32(profile, { synchronized: true })],
    ['numpy-exec', numpy],
  ] as const) {
    for (let seed = 1; seed <= seeds; seed++) {
      const t0 = Date.now();
      const r = await runConformance(impl, { runs, seed, only: ['bn:sync'], golden: false, timeoutMs: 60_000 });
      failed += r.summary.failed;
      console.log(`${label.padEnd(13)} ${profile.name.padEnd(17)} runs=${runs} seed=${seed}: ${r.summary.passed} passed, ${r.summary.failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      for (const x of r.results.filter((y) => y.status === 'fail')) console.log(`  ✗ ${x.id}: ${x.failure?.message}`);
    }
  }
  await numpy.close();
}
process.exitCode = failed ? 1 : 0;
