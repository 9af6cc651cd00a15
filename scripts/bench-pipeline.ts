/**
 * Where the time of the large channel-contiguous training forward goes: the pieces of the
 * float32 CPU kernel's pipeline of channel groups (src/kernels/cpu-f32/threads.ts), timed side by
 * side in ONE process against the copy, so the bench's bandwidth target can be read against
 * what each piece costs on this machine.
 *
 *   copy                      y.set(x) into a preallocated y: the bandwidth yardstick (the bench's)
 *   fresh array + copy in/out x through a 256 KiB buffer into a fresh y (the bench's yardstick)
 *   caller's copies           what the pipeline's calling thread does besides waiting: every
 *                             channel group gathered from x into a shared slot and scattered from
 *                             it into a fresh y, no arithmetic. Only the calling thread can read x
 *                             and write y, so no split over the cores goes below this.
 *   caller's copies, kept y   the same into one preallocated y: the difference is what a fresh
 *                             25.7 MB output costs the calling thread (its allocation, and the
 *                             collections and page faults that come with it)
 *   worker's share            what a worker does per group (wasm.trainGathered: the group copied
 *                             into its linear memory, reduced, normalized, copied back), for every
 *                             group, on this thread
 *   one thread                createCpuF32('onnx', { engine: 'wasm' }).forwardTrain
 *   pipeline                  createCpuF32('onnx', { threads: 'always' }).forwardTrain
 *   pipeline, kept y          the same into one preallocated y (the kernel's caller-owned
 *                             output: forwardTrain(request, { y }))
 *   default (auto)            createCpuF32('onnx').forwardTrain
 *   default (auto), kept y    the same into one preallocated y
 *
 * The bandwidth target of `npm run bench` ("the large training forward at >= 50% of the copy's
 * bandwidth") counts the same bytes as the copy (x read, y written), so it asks for a call within
 * 2x the copy's time; this prints that time beside the caller's copies.
 *
 * --ballast MB keeps about MB megabytes of small JavaScript objects alive while measuring, as a
 * library like TF.js leaves in a process: V8 then marks that heap on its helper threads at every
 * major collection (each call allocates a 25.7 MB y), and on 2 cores those threads compete with
 * the pipeline's worker.
 *
 * Run: npm run bench:pipeline -- [--shape 32,64,56,56] [--ballast 0] [--rounds 31] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { createCpuF32, overwrittenOutput, prewarmCpuF32Threads } from '../src/kernels/cpu-f32/index.js';
import * as threads from '../src/kernels/cpu-f32/threads.js';
import * as wasm from '../src/kernels/cpu-f32/wasm-engine.js';
import { mulberry32 } from '../src/numerics/random.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const SHAPE = (opt('--shape') ?? '32,64,56,56').split(',').map(Number);
const BALLAST_MB = Number(opt('--ballast') ?? 0);
const ROUNDS = Number(opt('--rounds') ?? 31);
const OUT = opt('--out');
if (SHAPE.length < 3 || SHAPE.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`--shape wants N,C,H[,W] positive integers, got ${opt('--shape')}`);
if (!(BALLAST_MB >= 0) || !(ROUNDS >= 5)) throw new Error('--ballast wants MB >= 0, --rounds at least 5');

const [N, C] = [SHAPE[0]!, SHAPE[1]!];
const inner = SHAPE.slice(2).reduce((a, b) => a * b, 1);
const L = { outer: N, channels: C, inner, m: N * inner };
const numel = N * C * inner;
if (!wasm.trainsByGroup(L)) throw new Error(`[${SHAPE}] is not taken a group of channels at a time (too small, or no WebAssembly SIMD): nothing to break down`);

const r = mulberry32(7);
const x = new Float32Array(numel).map(() => 3 + (r() + r() + r() - 1.5) * 2);
const gamma = new Float32Array(C).fill(1), beta = new Float32Array(C);
const request = { x, gamma, beta, runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1), shape: SHAPE, axis: 1, eps: 1e-5, momentum: 0.9 };

const G = wasm.groupSize(L);
const groups = Math.ceil(C / G);
const groupOf = (j: number): [number, number] => [j * G, Math.min(G, C - j * G)];

// the caller's copies: through as many slots as the pipeline keeps (one worker: 2·(2 + 1) + 2)
const SLOTS = Math.min(groups, 8);
const slotArena = new SharedArrayBuffer(SLOTS * G * L.m * 4);
const slot = (j: number) => new Float32Array(slotArena, (j % SLOTS) * G * L.m * 4, groupOf(j)[1] * L.m);
// the worker's share: every group gathered once, up front, into a tensor-sized shared arena
const gathered = new SharedArrayBuffer(numel * 4);
const gatheredSlot = (j: number) => new Float32Array(gathered, j * G * L.m * 4, groupOf(j)[1] * L.m);
for (let j = 0; j < groups; j++) wasm.gatherGroup(x, L, groupOf(j)[0], groupOf(j)[1], gatheredSlot(j), 0);
const scratchStats = { mean: new Float64Array(C), variance: new Float64Array(C) };

const BOUNCE = 65536;
const bounce = new Float32Array(BOUNCE);
const yCopy = new Float32Array(numel);
const one = createCpuF32('onnx', { engine: 'wasm' });
const pipe = createCpuF32('onnx', { threads: 'always' });
const auto = createCpuF32('onnx');

/** Keeps outputs observable so nothing is optimized away. */
export let sink = 0;
const yKept = new Float32Array(numel);
function callersCopies(y: Float32Array): void {
  for (let j = 0; j < groups; j++) {
    const [c0, g] = groupOf(j);
    wasm.gatherGroup(x, L, c0, g, slot(j), 0);
    wasm.scatterGroup(slot(j), 0, L, c0, g, y);
  }
  sink += y[0]!;
}

const contenders: [string, () => void][] = [
  ['copy', () => { yCopy.set(x); sink += yCopy[0]!; }],
  ['fresh array + copy in/out', () => {
    const y = overwrittenOutput(numel);
    for (let k = 0; k < numel; k += BOUNCE) {
      const n = Math.min(BOUNCE, numel - k);
      bounce.set(x.subarray(k, k + n));
      y.set(bounce.subarray(0, n), k);
    }
    sink += y[0]!;
  }],
  ["caller's copies", () => callersCopies(overwrittenOutput(numel))],
  ["caller's copies, kept y", () => callersCopies(yKept)],
  ["worker's share", () => {
    for (let j = 0; j < groups; j++) wasm.trainGathered(gatheredSlot(j), L, groupOf(j)[0], groupOf(j)[1], gamma, beta, 1e-5, scratchStats);
    sink += scratchStats.mean[0]!;
  }],
  ['one thread', () => { sink += one.forwardTrain(request).y[0]!; }],
  ['pipeline', () => { sink += pipe.forwardTrain(request).y[0]!; }],
  ['pipeline, kept y', () => { sink += pipe.forwardTrain(request, { y: yKept }).y[0]!; }],
  ['default (auto)', () => { sink += auto.forwardTrain(request).y[0]!; }],
  ['default (auto), kept y', () => { sink += auto.forwardTrain(request, { y: yKept }).y[0]!; }],
];

/** About `mb` megabytes of small live objects (a linked graph, as a library's heap is). */
function makeBallast(mb: number): unknown[] {
  const out: unknown[] = [];
  // one object with a 4-element array: about 100 bytes on a 64-bit V8 heap
  for (let i = 0; i < mb * 10_000; i++) out.push({ i, next: out[i - 1], v: [i, i + 1, i + 2, i + 3] });
  return out;
}

async function main(): Promise<void> {
  const ballast = makeBallast(BALLAST_MB);
  await prewarmCpuF32Threads();
  if (!threads.pipelines(L)) throw new Error(`the pipeline does not run here (${os.availableParallelism()} core(s): it needs a worker besides the calling thread)`);
  // untimed calls: the JIT, the workers' first tasks, and auto's chooser (its first 10 calls alternate paths)
  for (let k = 0; k < 12; k++) for (const [, run] of contenders) run();
  const times = contenders.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    // the order rotates every round, so whoever follows an allocating contender changes
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length;
      const t0 = performance.now();
      contenders[i]![1]();
      times[i]!.push(performance.now() - t0);
    }
  }
  const q = (t: number[], f: number) => [...t].sort((a, b) => a - b)[Math.floor(f * (t.length - 1))]!;
  const copy = q(times[0]!, 0.5);
  const lines = [
    `# The large training forward, piece by piece`,
    '',
    `NCHW [${SHAPE}] (${(numel * 4 / 1e6).toFixed(1)} MB; groups of ${G} channel(s), ${groups} groups), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus()[0]?.model.trim()} (${os.availableParallelism()} cores), Node ${process.version}, ballast ${BALLAST_MB} MB (heap used ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB), load average ${os.loadavg().map((v) => v.toFixed(1)).join(', ')}; ${ROUNDS} interleaved rounds, medians.`,
    `Reproduce: \`npx tsx scripts/bench-pipeline.ts --shape ${SHAPE} --ballast ${BALLAST_MB} --rounds ${ROUNDS}\``,
    '',
    '| piece | median | q1–q3 | × copy | % of copy bandwidth |',
    '| --- | --- | --- | --- | --- |',
    ...contenders.map(([name], i) => {
      const t = times[i]!, med = q(t, 0.5);
      return `| ${name} | ${med.toFixed(2)} ms | ${q(t, 0.25).toFixed(2)}–${q(t, 0.75).toFixed(2)} ms | ${(med / copy).toFixed(2)} | ${(100 * copy / med).toFixed(0)}% |`;
    }),
    '',
    `The bench's bandwidth target (50% of the copy's bandwidth) is a call of at most ${(2 * copy).toFixed(2)} ms here (2 × copy); the caller's copies alone take ${q(times[2]!, 0.5).toFixed(2)} ms (into a kept y: ${q(times[3]!, 0.5).toFixed(2)} ms).`,
  ];
  void ballast.length;
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  if (OUT) writeFileSync(OUT, text);
  process.exit(0); // the worker pool would keep the process alive
}
void main();
