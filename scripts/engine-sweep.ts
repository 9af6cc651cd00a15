/**
 * The CPU kernel's engines in process (scripts/false-alarm-sweep.ts is the CLI campaign for every
 * implementation). No false alarms at 10x the default runs: the reference, the plain JS example and every engine of
 * the CPU kernel (auto, ts, wasm, and auto with its threaded forwards forced on) under every
 * profile, full check, fixed seeds. Prints one line per (implementation, profile) and exits 1 on
 * any failure. `npx tsx scripts/engine-sweep.ts [runs] [seed] [label-prefix]` (the prefix
 * keeps only the implementations whose label starts with it, e.g. cpu-f32).
 */
import { runConformance, DEFAULT_RUNS } from '../src/harness/runner.js';
import { profiles } from '../src/contract/profiles.js';
import { createReference } from '../src/reference/reference.js';
import { createCpuF32 } from '../src/kernels/cpu-f32/index.js';
import { counters as threadCounters } from '../src/kernels/cpu-f32/threads.js';
// @ts-expect-error plain JavaScript example
import { createPlainBatchNorm } from '../examples/plain-bn.mjs';

const runs = Number(process.argv[2] ?? DEFAULT_RUNS * 10);
const seed = Number(process.argv[3] ?? 1);
const only = process.argv[4] ?? '';
let failed = 0;
for (const profile of Object.values(profiles)) {
  for (const [label, impl] of [
    ['reference', createReference(profile)],
    ['plain-js', createPlainBatchNorm(profile.name)],
    ['cpu-f32', createCpuF32(profile)],
    ['cpu-f32-ts', createCpuF32(profile, { engine: 'ts' })],
    ['cpu-f32-wasm', createCpuF32(profile, { engine: 'wasm' })],
    // the threaded ops on every shape they can split, tiny ones too (the pool warms during the
    // first cases, which run on one thread meanwhile)
    ['cpu-f32-thr', createCpuF32(profile, { threads: 'always' })],
  ] as const) {
    if (!label.startsWith(only)) continue;
    const t0 = Date.now();
    const threadedBefore = threadCounters.threaded;
    const r = await runConformance(impl, { runs, seed });
    failed += r.summary.failed;
    const threaded = threadCounters.threaded - threadedBefore;
    console.log(
      `${label.padEnd(13)} ${profile.name.padEnd(17)} runs=${runs} seed=${seed}: ${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.skipped} skipped (${((Date.now() - t0) / 1000).toFixed(1)} s)${threaded ? `, ${threaded} calls split over threads` : ''}`,
    );
    for (const x of r.results.filter((y) => y.status === 'fail')) console.log(`  ✗ ${x.id}: ${x.failure?.message}`);
  }
}
process.exitCode = failed ? 1 : 0;
