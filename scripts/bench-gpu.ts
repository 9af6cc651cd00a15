/**
 * Times the gpu.js kernel against the project's float32 CPU kernel (createCpuF32, src/kernels/cpu-f32,
 * TypeScript and WebAssembly SIMD engines).
 *
 *   xvfb-run -a npx tsx scripts/bench-gpu.ts [--mode headlessgl] [--reps 5]
 *
 * Reports, per shape: compile (first call minus a steady call), steady-state call split into upload,
 * reduction passes and output kernel + single readback (gl.finish() between phases), and the CPU
 * loop. NOTE: measured on Mesa llvmpipe (software GL); no real GPU was available, so these are
 * NOT GPU speeds.
 */
import { createCpuF32 } from '../src/kernels/cpu-f32/index.js';
import { createGpu, gpuAvailability, type GpuMode } from '../src/kernels/gpu/index.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const mode = opt('mode', 'headlessgl') as GpuMode;
const reps = Number(opt('reps', '5'));

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;

const probe = await gpuAvailability(mode);
if (!probe.available) {
  console.error(`gpu.js mode ${mode} not available: ${probe.reason}`);
  process.exit(2);
}
console.log(`gpu.js mode ${mode}: ${probe.reason}`);
console.log('NOTE: software GL (llvmpipe) on the CI CPU; real-GPU speed was not measured.\n');
const shapes: Array<[string, number[]]> = [
  ['[32,64,8,8] NCHW', [32, 64, 8, 8]],
  ['[64,16,32,32] NCHW', [64, 16, 32, 32]],
  ['[16,64,32,32] NCHW', [16, 64, 32, 32]],
  ['[4096,256] NC', [4096, 256]],
];
const rows: string[] = [];
rows.push('| shape | numel | first call ms | compile ms | steady ms | upload | passes | output + readback | cpu-f32 ts ms | cpu-f32 wasm ms | gpu / cpu-f32 ts |');
rows.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [label, shape] of shapes) {
  const [N, C, ...rest] = shape as [number, number, ...number[]];
  const inner = rest.reduce((a, b) => a * b, 1);
  const n = N * C * inner;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3 + 1);
  const gamma = new Float32Array(C).fill(1.25);
  const beta = new Float32Array(C).fill(0.5);
  const req = { x, shape, axis: 1, gamma, beta, eps: 1e-3, momentum: 0.99, runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1) };
  const impl = createGpu('keras', { mode, timings: true });
  const t0 = performance.now();
  await impl.forwardTrain(req);
  const first = performance.now() - t0;
  const steady: number[] = [];
  const up: number[] = [];
  const pass: number[] = [];
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    await impl.forwardTrain(req);
    const t = impl.lastTimings!;
    steady.push(t.totalMs);
    up.push(t.uploadMs);
    pass.push(t.passesMs);
    out.push(t.outputAndReadbackMs);
  }
  await impl.dispose();
  const cpuMs: Record<string, number> = {};
  for (const engine of ['ts', 'wasm'] as const) {
    const cpuImpl = createCpuF32('keras', { engine });
    await cpuImpl.forwardTrain!(req); // warm-up (JIT, wasm instantiation)
    const t: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t1 = performance.now();
      await cpuImpl.forwardTrain!(req);
      t.push(performance.now() - t1);
    }
    cpuMs[engine] = median(t);
  }
  const s = median(steady);
  const c = cpuMs.ts!;
  rows.push(
    `| ${label} | ${n} | ${first.toFixed(0)} | ${(first - s).toFixed(0)} | ${s.toFixed(1)} | ${median(up).toFixed(1)} | ${median(pass).toFixed(1)} | ${median(out).toFixed(1)} | ${c.toFixed(1)} | ${cpuMs.wasm!.toFixed(1)} | ${(s / c).toFixed(1)}x |`,
  );
}
console.log(`forwardTrain, keras profile, tile 64, median of ${reps}:\n`);
console.log(rows.join('\n'));
