import { createCpuF32, prewarmCpuF32Threads } from '../src/kernels/cpu-f32/index.js';
await prewarmCpuF32Threads();
const shape = [32, 64, 56, 56];
const n = shape.reduce((a, b) => a * b);
const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3 + 1);
const C = 64;
const p = (v: number) => new Float32Array(C).fill(v);
const req = { x, shape, axis: 1, gamma: p(1), beta: p(0), eps: 1e-5, momentum: 0.9, runningMean: p(0), runningVar: p(1) };
const impls = { always: createCpuF32('onnx', { threads: 'always' }), wasm: createCpuF32('onnx', { engine: 'wasm' }), auto: createCpuF32('onnx') };
const t: Record<string, number[]> = { always: [], wasm: [], auto: [] };
for (let r = 0; r < 25; r++) for (const [k, impl] of Object.entries(impls)) { const t0 = performance.now(); await impl.forwardTrain!(req as never); t[k]!.push(performance.now() - t0); }
for (const [k, v] of Object.entries(t)) { v.sort((a, b) => a - b); console.log(k, v[12]!.toFixed(2), 'min', v[0]!.toFixed(2)); }
process.exit(0);
