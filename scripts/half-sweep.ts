/**
 * False-alarm sweep for half precision (issue 12): the reference (all four half precisions) and
 * cpu-f32 (ts and wasm engines; float16 / bfloat16 with float32 parameters) through every half
 * check, under every profile, at many runs and seeds. Any failure is a false alarm (these are
 * honest implementations) and exits 1.
 *
 *   npx tsx scripts/half-sweep.ts [runs=100] [seeds=11,12,13]
 */
import { runConformance } from '../src/harness/runner.js';
import { createReference } from '../src/reference/reference.js';
import { createCpuF32 } from '../src/kernels/cpu-f32/index.js';
import { profiles } from '../src/contract/profiles.js';
import type { BatchNormImplementation, Profile } from '../src/contract/contract.js';

const runs = Number(process.argv[2] ?? 100);
const seeds = (process.argv[3] ?? '11,12,13').split(',').map(Number);
const makers: Array<[string, (p: Profile) => BatchNormImplementation]> = [
  ['reference', (p) => createReference(p)],
  ['cpu-f32 ts', (p) => createCpuF32(p, { engine: 'ts' })],
  ['cpu-f32 wasm', (p) => createCpuF32(p, { engine: 'wasm' })],
];
let failures = 0;
let cases = 0;
for (const seed of seeds) {
  for (const profile of Object.values(profiles)) {
    for (const [name, make] of makers) {
      const r = await runConformance(make(profile), { seed, runs, golden: false, only: ['*float16*'] });
      cases += r.summary.total;
      const failed = r.results.filter((x) => x.status === 'fail');
      failures += failed.length;
      console.log(`${name} ${profile.name} seed ${seed}: ${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.skipped} skipped`);
      for (const f of failed) console.log(`  FAIL ${f.id}: ${f.failure?.message}\n    replay: ${f.failure?.replay}`);
    }
  }
}
console.log(`${cases} cases at ${runs} runs per property, seeds ${seeds.join(',')}: ${failures} false alarms`);
process.exit(failures ? 1 : 0);
