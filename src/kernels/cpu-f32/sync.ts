/**
 * The synchronized mode of the float32 CPU kernel: every replica runs on a thread of its own (a
 * gang of the project's worker pool, src/kernels/workers), and the statistics are all-reduced
 * through shared memory, as data-parallel training does across devices:
 *
 *   1. each replica reduces its own shard to (count, mean, M2) per channel (two-pass, float64
 *      sums) and writes them into its row of a shared Float64Array;
 *   2. barrier; every replica merges all R rows with Chan's update over the same balanced tree
 *      (neighbours first): the same operations on the same numbers, so every replica holds the
 *      same bits, with no broadcast needed (an all-gather followed by a reduction);
 *   3. each replica normalizes its own shard and writes its own copy of the running statistics.
 * backward adds a second round: per-replica partial sums of dy and dy * xhat, barrier, the same
 * tree of additions on every replica, then dx of its own shard.
 *
 * Declared accumulation: float64 sequential sums within a replica, a tree all-reduce.
 * The main thread only validates, copies the shards into shared memory and back out.
 */
import type { BackwardSyncRequest, BackwardSyncResult, ForwardTrainSyncRequest, ForwardTrainSyncResult, Profile } from '../../contract/contract.js';
import { SingleValuePerChannelError, UnsupportedDTypeError } from '../../contract/errors.js';
import { shardLayout, validateSyncRequest } from '../../contract/layout-sync.js';
import { effectiveEps, emaWeights } from '../../contract/profiles.js';
import { threadId } from 'node:worker_threads';
import { getPool, taskRef, type TaskContext } from '../workers/pool.js';

/** A replica that never reaches the barrier breaks it after this long (no hang). */
const BARRIER_TIMEOUT_MS = 30_000;
const F32 = 4;

interface CommonArgs {
  axis: number;
  shapes: number[][];
  /** Element offset of each shard in x (and y / dy / dx). */
  offsets: number[];
  C: number;
  x: SharedArrayBuffer;
  gamma: number[];
  eps: number;
  /** R x C x 3 float64: count, mean, M2. */
  partials: SharedArrayBuffer;
}

interface ForwardArgs extends CommonArgs {
  y: SharedArrayBuffer;
  beta: number[];
  keep: number;
  take: number;
  unbiased: boolean;
  runningMean: number[];
  runningVar: number[];
  /** R x 2C float32: each replica's own copy of runningMean, runningVar. */
  running: SharedArrayBuffer;
  /** 2C float32: global mean, variance (written by replica 0). */
  global: SharedArrayBuffer;
}

interface BackwardArgs extends CommonArgs {
  dy: SharedArrayBuffer;
  dx: SharedArrayBuffer;
  /** R x C x 2 float64: partial sums of dy and dy * xhat. */
  sums: SharedArrayBuffer;
  /** 2C float32: dgamma, dbeta (written by replica 0). */
  global: SharedArrayBuffer;
}

/** Visit channel c's values of shard r: fn(element index in the shard). */
function forChannel(shape: number[], axis: number, c: number, fn: (i: number) => void): void {
  const L = shardLayout(shape, axis, 'shard');
  for (let o = 0; o < L.outer; o++) {
    const base = (o * L.channels + c) * L.inner;
    for (let i = base; i < base + L.inner; i++) fn(i);
  }
}

/** Step 1 and 2: local (n, mean, M2), exchange, tree merge. Returns the global mean and M2 and N. */
function allReduceMoments(a: CommonArgs, x: Float32Array, ctx: TaskContext) {
  const r = ctx.index;
  const R = ctx.count;
  const C = a.C;
  const shape = a.shapes[r]!;
  const P = new Float64Array(a.partials);
  for (let c = 0; c < C; c++) {
    let n = 0;
    let sum = 0;
    forChannel(shape, a.axis, c, (i) => {
      sum += x[i]!;
      n++;
    });
    const mean = n ? sum / n : 0;
    let m2 = 0;
    forChannel(shape, a.axis, c, (i) => {
      const d = x[i]! - mean;
      m2 += d * d;
    });
    P.set([n, mean, m2], (r * C + c) * 3);
  }
  ctx.barrier!.wait(BARRIER_TIMEOUT_MS);
  const N = new Float64Array(C);
  const mean = new Float64Array(C);
  const M2 = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let level: Array<[number, number, number]> = [];
    for (let q = 0; q < R; q++) level.push([P[(q * C + c) * 3]!, P[(q * C + c) * 3 + 1]!, P[(q * C + c) * 3 + 2]!]);
    while (level.length > 1) {
      const next: Array<[number, number, number]> = [];
      for (let k = 0; k < level.length; k += 2) next.push(k + 1 < level.length ? chan(level[k]!, level[k + 1]!) : level[k]!);
      level = next;
    }
    [N[c], mean[c], M2[c]] = level[0]!;
  }
  return { N, mean, M2 };
}

/** Chan's pairwise update of (n, mean, M2). */
function chan(a: [number, number, number], b: [number, number, number]): [number, number, number] {
  if (a[0] === 0) return b;
  if (b[0] === 0) return a;
  const n = a[0] + b[0];
  const delta = b[1] - a[1];
  return [n, a[1] + (delta * b[0]) / n, a[2] + b[2] + (delta * delta * a[0] * b[0]) / n];
}

/** A gang member: one replica of forwardTrainSync. */
export function forwardReplica(a: ForwardArgs, ctx: TaskContext): number {
  const r = ctx.index;
  const C = a.C;
  const shape = a.shapes[r]!;
  const numel = shapeNumel(shape);
  const x = new Float32Array(a.x, a.offsets[r]! * F32, numel);
  const y = new Float32Array(a.y, a.offsets[r]! * F32, numel);
  const { N, mean, M2 } = allReduceMoments(a, x, ctx);
  const running = new Float32Array(a.running, r * 2 * C * F32, 2 * C);
  const global = new Float32Array(a.global);
  for (let c = 0; c < C; c++) {
    const variance = Math.max(0, M2[c]! / N[c]!);
    const inv = 1 / Math.sqrt(variance + a.eps);
    const mu = mean[c]!;
    const g = a.gamma[c]!;
    const b = a.beta[c]!;
    forChannel(shape, a.axis, c, (i) => {
      y[i] = g * ((x[i]! - mu) * inv) + b;
    });
    const bessel = a.unbiased ? N[c]! / Math.max(N[c]! - 1, 1) : 1;
    running[c] = a.keep * a.runningMean[c]! + a.take * mu;
    running[C + c] = a.keep * a.runningVar[c]! + a.take * (variance * bessel);
    if (r === 0) {
      global[c] = mu;
      global[C + c] = variance;
    }
  }
  return threadId;
}

/** A gang member: one replica of backwardSync. */
export function backwardReplica(a: BackwardArgs, ctx: TaskContext): number {
  const r = ctx.index;
  const R = ctx.count;
  const C = a.C;
  const shape = a.shapes[r]!;
  const numel = shapeNumel(shape);
  const x = new Float32Array(a.x, a.offsets[r]! * F32, numel);
  const dy = new Float32Array(a.dy, a.offsets[r]! * F32, numel);
  const dx = new Float32Array(a.dx, a.offsets[r]! * F32, numel);
  const { N, mean, M2 } = allReduceMoments(a, x, ctx);
  const inv = Float64Array.from(M2, (m2, c) => 1 / Math.sqrt(Math.max(0, m2 / N[c]!) + a.eps));
  const S = new Float64Array(a.sums);
  for (let c = 0; c < C; c++) {
    let sDy = 0;
    let sDyXhat = 0;
    forChannel(shape, a.axis, c, (i) => {
      sDy += dy[i]!;
      sDyXhat += dy[i]! * ((x[i]! - mean[c]!) * inv[c]!);
    });
    S[(r * C + c) * 2] = sDy;
    S[(r * C + c) * 2 + 1] = sDyXhat;
  }
  ctx.barrier!.wait(BARRIER_TIMEOUT_MS);
  const global = new Float32Array(a.global);
  for (let c = 0; c < C; c++) {
    let level: Array<[number, number]> = [];
    for (let q = 0; q < R; q++) level.push([S[(q * C + c) * 2]!, S[(q * C + c) * 2 + 1]!]);
    while (level.length > 1) {
      const next: Array<[number, number]> = [];
      for (let k = 0; k < level.length; k += 2) next.push(k + 1 < level.length ? [level[k]![0] + level[k + 1]![0], level[k]![1] + level[k + 1]![1]] : level[k]!);
      level = next;
    }
    const [dbeta, dgamma] = level[0]!;
    const Q = dbeta / N[c]!;
    const Pm = dgamma / N[c]!;
    const k = a.gamma[c]! * inv[c]!;
    forChannel(shape, a.axis, c, (i) => {
      dx[i] = k * (dy[i]! - Q - (x[i]! - mean[c]!) * inv[c]! * Pm);
    });
    if (r === 0) {
      global[c] = dgamma;
      global[C + c] = dbeta;
    }
  }
  return threadId;
}

const shapeNumel = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** The thread ids the last synchronized call's replicas ran on (diagnostics: one thread each). */
export let lastReplicaThreads: number[] = [];

const FORWARD = taskRef(import.meta.url, 'forwardReplica');
const BACKWARD = taskRef(import.meta.url, 'backwardReplica');

function requireFloat32(req: ForwardTrainSyncRequest | BackwardSyncRequest): void {
  if (req.dtype !== 'float32') throw new UnsupportedDTypeError(req.dtype, ['float32']);
  if (req.paramDtype !== 'float32') throw new UnsupportedDTypeError(`${req.dtype} with parameters in ${req.paramDtype}`, ['float32']);
}

/** Shards copied into one shared Float32Array (offsets per shard), for the replicas' threads. */
function shareShards(arrays: Float32Array[]): { buffer: SharedArrayBuffer; offsets: number[] } {
  const offsets: number[] = [];
  let total = 0;
  for (const a of arrays) {
    offsets.push(total);
    total += a.length;
  }
  const buffer = new SharedArrayBuffer(Math.max(1, total) * F32);
  const view = new Float32Array(buffer);
  arrays.forEach((a, r) => view.set(a, offsets[r]!));
  return { buffer, offsets };
}

/** A replica's slice of a shared output, copied out to an ordinary Float32Array. */
const sliceOut = (buffer: SharedArrayBuffer, offset: number, length: number) => new Float32Array(new Float32Array(buffer, offset * F32, length));

export async function forwardTrainSyncThreads(profile: Profile, req: ForwardTrainSyncRequest): Promise<ForwardTrainSyncResult> {
  const layout = validateSyncRequest('forwardTrainSync', req);
  requireFloat32(req);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shards[0]!.shape, req.axis);
  const R = req.shards.length;
  const C = layout.channels;
  const { buffer: x, offsets } = shareShards(req.shards.map((s) => s.x as Float32Array));
  const y = new SharedArrayBuffer(x.byteLength);
  const running = new SharedArrayBuffer(R * 2 * C * F32);
  const global = new SharedArrayBuffer(2 * C * F32);
  const { keep, take } = emaWeights(profile, req.momentum);
  const args: ForwardArgs = {
    axis: req.axis,
    shapes: req.shards.map((s) => s.shape.slice()),
    offsets,
    C,
    x,
    y,
    gamma: Array.from(req.gamma),
    beta: Array.from(req.beta),
    eps: effectiveEps(profile, req.eps),
    keep,
    take,
    unbiased: profile.runningVar === 'unbiased',
    runningMean: Array.from(req.runningMean),
    runningVar: Array.from(req.runningVar),
    partials: new SharedArrayBuffer(R * C * 3 * 8),
    running,
    global,
  };
  lastReplicaThreads = await getPool().gang<number>(FORWARD, args, R, { timeoutMs: BARRIER_TIMEOUT_MS });
  return {
    replicas: layout.shards.map((L, r) => ({
      y: sliceOut(y, offsets[r]!, L.numel),
      runningMean: sliceOut(running, r * 2 * C, C),
      runningVar: sliceOut(running, r * 2 * C + C, C),
    })),
    mean: sliceOut(global, 0, C),
    variance: sliceOut(global, C, C),
  };
}

export async function backwardSyncThreads(profile: Profile, req: BackwardSyncRequest): Promise<BackwardSyncResult> {
  const layout = validateSyncRequest('backwardSync', req);
  requireFloat32(req);
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shards[0]!.shape, req.axis);
  const R = req.shards.length;
  const C = layout.channels;
  const { buffer: x, offsets } = shareShards(req.shards.map((s) => s.x as Float32Array));
  const { buffer: dy } = shareShards(req.shards.map((s) => s.dy as Float32Array));
  const dx = new SharedArrayBuffer(x.byteLength);
  const global = new SharedArrayBuffer(2 * C * F32);
  const args: BackwardArgs = {
    axis: req.axis,
    shapes: req.shards.map((s) => s.shape.slice()),
    offsets,
    C,
    x,
    dy,
    dx,
    gamma: Array.from(req.gamma),
    eps: effectiveEps(profile, req.eps),
    partials: new SharedArrayBuffer(R * C * 3 * 8),
    sums: new SharedArrayBuffer(R * C * 2 * 8),
    global,
  };
  lastReplicaThreads = await getPool().gang<number>(BACKWARD, args, R, { timeoutMs: BARRIER_TIMEOUT_MS });
  return {
    replicas: layout.shards.map((L, r) => ({ dx: sliceOut(dx, offsets[r]!, L.numel) })),
    dgamma: sliceOut(global, 0, C),
    dbeta: sliceOut(global, C, C),
  };
}
