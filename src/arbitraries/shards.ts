/**
 * Arbitraries for synchronized (cross-replica) problems: one global batch of examples, split
 * into shards along the batch axis (the first non-channel axis), one shard per replica.
 *
 * The data is held as examples (each example: every value of every channel at every other
 * position), so the same global batch can be re-split any way (8 = 8 = 3+5 = 1+1+6) exactly.
 * Shrinking goes to few replicas with small counts (counts shrink toward 0, replicas toward 1;
 * the total is topped up on replica 0 to the smallest batch the case allows), small shapes and
 * small grid values, as in problem.ts: x = (offset_c + z) * 2^scale.
 */
import fc from 'fast-check';
import type { BackwardSyncRequest, DType, ForwardTrainSyncRequest } from '../contract/contract.js';
import type { AxisVariant } from '../harness/types.js';
import { mulberry32 } from '../numerics/random.js';
import { axisFor, typed } from './problem.js';

export interface SyncProblem {
  dtype: DType;
  /** Shard shape with the batch axis set to 0 (a template). */
  dims: number[];
  axis: number;
  /** The axis the shards are split along: the first non-channel axis. */
  batchAxis: number;
  /** Examples of the global batch, in order; each of length examplesSize(dims, batchAxis). */
  examples: number[][];
  dyExamples: number[][];
  /** Examples per replica (sum = examples.length). */
  counts: number[];
  gamma: number[];
  beta: number[];
  eps: number;
  momentum: number;
  runningMean: number[];
  runningVar: number[];
}

export interface ShardsOptions {
  dtype: DType;
  axis: AxisVariant;
  /** Smallest global batch in examples (2 unless the case is about m = 1). */
  minExamples?: number;
  minReplicas?: number;
  maxReplicas?: number;
  /** Largest examples on one replica. */
  maxCount?: number;
  maxLogRatio?: number;
  /** Minimum log2 of offset / spread (the large-offset case). */
  minLogRatio?: number;
  /**
   * Full-precision values (offset + a seeded uniform deviate, rounded to the dtype) instead of
   * the integer grid: needed where exactness would hide a bug (squares of grid values are exact
   * in float64, so a sum-of-squares merge would pass on them).
   */
  fullPrecision?: boolean;
}

export const batchAxisOf = (axis: number) => (axis === 0 ? 1 : 0);

/** Values in one example: the product of every dim but the batch axis. */
export function exampleSize(dims: number[], batchAxis: number): number {
  return dims.reduce((a, d, k) => (k === batchAxis ? a : a * d), 1);
}

/** Shard shapes for a split. */
export function shardShapes(p: Pick<SyncProblem, 'dims' | 'batchAxis'>, counts: number[]): number[][] {
  return counts.map((n) => p.dims.map((d, k) => (k === p.batchAxis ? n : d)));
}

/**
 * Materialize one shard's x (or dy) from examples [start, start + n): element (…, j at the batch
 * axis, …) is value q of example start + j, q the element's row-major index over the other axes.
 */
export function materialize(examples: number[][], dims: number[], batchAxis: number, start: number, n: number): number[] {
  const shape = dims.map((d, k) => (k === batchAxis ? n : d));
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Array<number>(numel);
  const idx = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < numel; e++) {
    let q = 0;
    for (let k = 0; k < shape.length; k++) if (k !== batchAxis) q = q * shape[k]! + idx[k]!;
    out[e] = examples[start + idx[batchAxis]!]![q]!;
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** The channel of value q of an example. */
export function channelOfExampleValue(dims: number[], axis: number, batchAxis: number, q: number): number {
  let rest = q;
  for (let k = dims.length - 1; k >= 0; k--) {
    if (k === batchAxis) continue;
    const i = rest % dims[k]!;
    rest = Math.floor(rest / dims[k]!);
    if (k === axis) return i;
  }
  return 0;
}

function requestParts(p: SyncProblem, counts: number[]) {
  const shapes = shardShapes(p, counts);
  let start = 0;
  const ranges = counts.map((n) => {
    const r = [start, n] as const;
    start += n;
    return r;
  });
  return { shapes, ranges };
}

export function syncTrainRequest(p: SyncProblem, counts: number[] = p.counts, over: Partial<SyncProblem> = {}): ForwardTrainSyncRequest {
  const q = { ...p, ...over };
  const { shapes, ranges } = requestParts(q, counts);
  return {
    shards: shapes.map((shape, r) => ({ x: typed(q.dtype, materialize(q.examples, q.dims, q.batchAxis, ranges[r]![0], ranges[r]![1])), shape })),
    axis: q.axis,
    gamma: typed(q.dtype, q.gamma),
    beta: typed(q.dtype, q.beta),
    eps: q.eps,
    momentum: q.momentum,
    runningMean: typed(q.dtype, q.runningMean),
    runningVar: typed(q.dtype, q.runningVar),
    dtype: q.dtype,
    paramDtype: q.dtype,
  };
}

export function syncBackwardRequest(p: SyncProblem, counts: number[] = p.counts): BackwardSyncRequest {
  const { shapes, ranges } = requestParts(p, counts);
  return {
    shards: shapes.map((shape, r) => ({
      x: typed(p.dtype, materialize(p.examples, p.dims, p.batchAxis, ranges[r]![0], ranges[r]![1])),
      dy: typed(p.dtype, materialize(p.dyExamples, p.dims, p.batchAxis, ranges[r]![0], ranges[r]![1])),
      shape,
    })),
    axis: p.axis,
    gamma: typed(p.dtype, p.gamma),
    eps: p.eps,
    dtype: p.dtype,
    paramDtype: p.dtype,
  };
}

/** The same problem with all its examples on one replica: single-device BN over the concatenation. */
export const oneReplica = (p: SyncProblem): number[] => [p.examples.length];

/** A split of M examples into k shards (k >= 1), cut points from `cuts` (each in [0, M]). */
export function splitOf(M: number, cuts: number[]): number[] {
  const sorted = cuts.map((c) => Math.min(M, Math.max(0, c))).sort((a, b) => a - b);
  const out: number[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(c - prev);
    prev = c;
  }
  out.push(M - prev);
  return out;
}

const round = (dtype: DType) => (v: number) => (dtype === 'float32' ? Math.fround(v) : v);

/** A synchronized problem: 1..maxReplicas shards of 0..maxCount examples each. */
export function shardsArb(opts: ShardsOptions): fc.Arbitrary<SyncProblem> {
  const minExamples = opts.minExamples ?? 2;
  const maxLogRatio = Math.min(opts.maxLogRatio ?? 16, 22);
  const minLogRatio = Math.min(opts.minLogRatio ?? 0, maxLogRatio);
  return fc
    .record({
      counts: fc.array(fc.nat({ max: opts.maxCount ?? 3 }), { minLength: opts.minReplicas ?? 1, maxLength: opts.maxReplicas ?? 16 }),
      // dims other than the batch axis; the batch axis is inserted below
      rest: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
      axisSeed: fc.nat({ max: 16 }),
      eps: fc.constantFrom(1e-3, 1e-5, 0.1, 1),
      momentum: fc.constantFrom(0.9, 0.1, 0.5, 0.99, 0),
      logRatio: fc.integer({ min: minLogRatio, max: maxLogRatio }),
      scale: fc.integer({ min: -4, max: 4 }),
    })
    .map((r) => {
      const counts = r.counts.slice();
      const total = counts.reduce((a, b) => a + b, 0);
      if (total < minExamples) counts[0] = counts[0]! + (minExamples - total);
      const rank = r.rest.length + 1;
      const axis = axisFor(opts.axis, rank, r.axisSeed);
      const batchAxis = batchAxisOf(axis);
      const dims = r.rest.slice();
      dims.splice(batchAxis, 0, 0);
      return { ...r, counts, axis, batchAxis, dims };
    })
    .chain((r) => {
      const M = r.counts.reduce((a, b) => a + b, 0);
      const E = exampleSize(r.dims, r.batchAxis);
      const C = r.dims[r.axis]!;
      const small = fc.integer({ min: -8, max: 8 });
      const grid = (n: number) => fc.array(fc.array(small, { minLength: n, maxLength: n }), { minLength: M, maxLength: M });
      return fc
        .record({
          z: grid(E),
          dy: grid(E),
          noiseSeed: fc.nat(),
          offsets: fc.array(fc.integer({ min: -(2 ** r.logRatio), max: 2 ** r.logRatio }), { minLength: C, maxLength: C }),
          gamma: fc.array(fc.integer({ min: -8, max: 8 }).filter((g) => g !== 0), { minLength: C, maxLength: C }),
          beta: fc.array(small, { minLength: C, maxLength: C }),
          runningMean: fc.array(small, { minLength: C, maxLength: C }),
          runningVar: fc.array(fc.integer({ min: 1, max: 16 }), { minLength: C, maxLength: C }),
        })
        .map((v): SyncProblem => {
          const f = round(opts.dtype);
          const g = 2 ** r.scale;
          const noise = mulberry32(v.noiseSeed);
          const channel = (q: number) => channelOfExampleValue(r.dims, r.axis, r.batchAxis, q);
          const examples = v.z.map((zs) =>
            zs.map((z, q) => {
              // large offsets: |offset| in [2^logRatio, 2^(logRatio + 1)], never near 0
              const off = opts.minLogRatio !== undefined ? 1.5 * 2 ** r.logRatio + v.offsets[channel(q)]! / 2 : v.offsets[channel(q)]!;
              return opts.fullPrecision ? f((off + z + noise()) * g) : f((off + z) * g);
            }),
          );
          return {
            dtype: opts.dtype,
            dims: r.dims,
            axis: r.axis,
            batchAxis: r.batchAxis,
            examples,
            dyExamples: v.dy.map((ds) => ds.map((d) => d / 4)),
            counts: r.counts,
            gamma: v.gamma.map((x) => x / 4),
            beta: v.beta.map((x) => x / 4),
            eps: f(r.eps),
            momentum: r.momentum,
            runningMean: v.runningMean.map((x) => x / 2),
            runningVar: v.runningVar.map((x) => x / 4),
          };
        });
    });
}

/** A problem from fixed examples (for the named examples of the sync family). */
export function fixedProblem(dtype: DType, values: number[][], counts: number[], extra: Partial<SyncProblem> = {}): SyncProblem {
  const C = values[0]!.length;
  const f = round(dtype);
  return {
    dtype,
    dims: [0, C],
    axis: 1,
    batchAxis: 0,
    examples: values.map((row) => row.map(f)),
    dyExamples: values.map((row) => row.map((_, c) => ((row.length + c) % 5) / 4 - 0.5)),
    counts,
    gamma: Array.from({ length: C }, (_, c) => 1 + c / 4),
    beta: Array.from({ length: C }, (_, c) => c / 8),
    eps: f(1e-3),
    momentum: 0.5,
    runningMean: new Array(C).fill(0),
    runningVar: new Array(C).fill(1),
    ...extra,
  };
}
