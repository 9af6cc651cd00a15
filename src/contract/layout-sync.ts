/**
 * Shards of a synchronized (cross-replica) request: validation and layout.
 *
 * A shard is a dense row-major tensor like any other (viewed as [outer, C, inner] around the
 * channel axis), except that its non-channel axes may be 0: a replica may hold no examples.
 * Shards share rank, axis and C; the global batch of channel c is every value of channel c in
 * every shard, m = sum of the shards' m (docs/CONTRACT.md, "Synchronized BatchNorm").
 */
import type { Arr, BackwardSyncRequest, DType, ForwardTrainSyncRequest, SyncOp } from './contract.js';
import { BatchNormInputError } from './errors.js';
import { describe } from './layout.js';

export interface ShardLayout {
  outer: number;
  channels: number;
  inner: number;
  /** Values per channel in this shard (0 for an empty replica). */
  m: number;
  numel: number;
}

export interface SyncLayout {
  shards: ShardLayout[];
  channels: number;
  /** Values per channel in the global batch. */
  m: number;
  /** Largest per-replica m. */
  maxLocalM: number;
}

/** The typed array class that carries a dtype (half dtypes travel as Uint16Array bit patterns). */
export function typedArrayClassFor(dtype: string): Function | undefined {
  switch (dtype) {
    case 'float32':
      return Float32Array;
    case 'float64':
      return Float64Array;
    case 'float16':
    case 'bfloat16':
      return Uint16Array;
    default:
      return undefined;
  }
}

export function shardLayout(shape: unknown, axis: number, where: string): ShardLayout {
  if (!Array.isArray(shape)) throw new BatchNormInputError(`${where}.shape must be an array of integers, got ${describe(shape)}`);
  if (shape.length < 2) throw new BatchNormInputError(`${where}: rank must be >= 2, got shape [${shape.join(', ')}]`);
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new BatchNormInputError(`axis must be an integer in [0, ${shape.length - 1}] for ${where}.shape [${shape.join(', ')}], got ${axis}`);
  }
  shape.forEach((d: unknown, k) => {
    const min = k === axis ? 1 : 0;
    if (!Number.isSafeInteger(d) || (d as number) < min) {
      throw new BatchNormInputError(
        `${where}.shape must hold integers >= 0 (>= 1 on the channel axis), got [${shape.join(', ')}]`,
      );
    }
  });
  let outer = 1;
  for (let k = 0; k < axis; k++) outer *= shape[k] as number;
  let inner = 1;
  for (let k = axis + 1; k < shape.length; k++) inner *= shape[k] as number;
  const channels = shape[axis] as number;
  const numel = outer * channels * inner;
  if (!Number.isSafeInteger(numel)) throw new BatchNormInputError(`${where}.shape [${shape.join(', ')}] has too many elements`);
  return { outer, channels, inner, m: outer * inner, numel };
}

function checkArray(name: string, a: unknown, dtype: DType, length: number): asserts a is Arr {
  const ctor = typedArrayClassFor(dtype);
  if (!ctor) throw new BatchNormInputError(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!ArrayBuffer.isView(a)) throw new BatchNormInputError(`${name} must be a typed array of ${dtype}, got ${describe(a)}`);
  if (!(a instanceof (ctor as new () => object))) throw new BatchNormInputError(`${name} is ${a.constructor.name} but the request's dtype for it is ${dtype}`);
  if ((a as unknown as ArrayLike<number>).length !== length) {
    throw new BatchNormInputError(`${name} has length ${(a as unknown as ArrayLike<number>).length}, expected ${length}`);
  }
}

/** Validate a synchronized request against the contract; throws BatchNormInputError. */
export function validateSyncRequest(op: SyncOp, req: ForwardTrainSyncRequest | BackwardSyncRequest): SyncLayout {
  if (typeof req !== 'object' || req === null) throw new BatchNormInputError(`${op}: request must be an object`);
  if (typeof req.dtype !== 'string' || !typedArrayClassFor(req.dtype)) throw new BatchNormInputError(`${op}: dtype must be a dtype name, got ${describe(req.dtype)}`);
  if (typeof req.paramDtype !== 'string' || !typedArrayClassFor(req.paramDtype)) {
    throw new BatchNormInputError(`${op}: paramDtype must be a dtype name, got ${describe(req.paramDtype)}`);
  }
  if (!Array.isArray(req.shards) || req.shards.length === 0) throw new BatchNormInputError(`${op}: shards must be a non-empty array (one per replica), got ${describe(req.shards)}`);
  const shards: ShardLayout[] = [];
  let rank = -1;
  let C = -1;
  req.shards.forEach((s, r) => {
    const where = `shards[${r}]`;
    if (typeof s !== 'object' || s === null) throw new BatchNormInputError(`${where} must be an object { x, shape }`);
    const L = shardLayout(s.shape, req.axis, where);
    if (r === 0) {
      rank = s.shape.length;
      C = L.channels;
    } else if (s.shape.length !== rank || L.channels !== C) {
      throw new BatchNormInputError(
        `${where}.shape [${s.shape.join(', ')}] does not match shards[0] (rank ${rank}, C = ${C} on axis ${req.axis}): shards share rank and channel count`,
      );
    }
    checkArray(`${where}.x`, s.x, req.dtype, L.numel);
    if (op === 'backwardSync') checkArray(`${where}.dy`, (s as BackwardSyncRequest['shards'][number]).dy, req.dtype, L.numel);
    shards.push(L);
  });
  checkArray('gamma', req.gamma, req.paramDtype, C);
  if (typeof req.eps !== 'number' || !Number.isFinite(req.eps) || req.eps < 0) throw new BatchNormInputError(`eps must be a finite number >= 0, got ${String(req.eps)}`);
  if (op === 'forwardTrainSync') {
    const f = req as ForwardTrainSyncRequest;
    checkArray('beta', f.beta, req.paramDtype, C);
    checkArray('runningMean', f.runningMean, req.paramDtype, C);
    checkArray('runningVar', f.runningVar, req.paramDtype, C);
    if (typeof f.momentum !== 'number' || !Number.isFinite(f.momentum)) throw new BatchNormInputError(`momentum must be a finite number, got ${String(f.momentum)}`);
  }
  const m = shards.reduce((a, L) => a + L.m, 0);
  if (m === 0) throw new BatchNormInputError(`${op}: the global batch is empty (every shard has 0 examples)`);
  return { shards, channels: C, m, maxLocalM: Math.max(...shards.map((L) => L.m)) };
}

/**
 * Channel-last rows of one shard: out[k * C + c] is the k-th value of channel c in the shard
 * (k < m), in the shard's own element order. Row-major [outer, C, inner] maps (o, c, i) to row
 * o * inner + i.
 */
export function shardRows(x: ArrayLike<number>, L: ShardLayout): Float64Array {
  const out = new Float64Array(L.m * L.channels);
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < L.channels; c++) {
      const base = (o * L.channels + c) * L.inner;
      for (let i = 0; i < L.inner; i++) out[(o * L.inner + i) * L.channels + c] = x[base + i]!;
    }
  }
  return out;
}

/** The inverse of shardRows: rows back to the shard's own layout. */
export function shardFromRows(rows: ArrayLike<number>, L: ShardLayout, offsetRows = 0): Float64Array {
  const out = new Float64Array(L.numel);
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < L.channels; c++) {
      const base = (o * L.channels + c) * L.inner;
      for (let i = 0; i < L.inner; i++) out[base + i] = rows[(offsetRows + o * L.inner + i) * L.channels + c]!;
    }
  }
  return out;
}

/** The concatenation of every shard's rows: the global batch as an [m, C] channels-last matrix. */
export function concatenatedRows(xs: ArrayLike<number>[], layout: SyncLayout): Float64Array {
  const C = layout.channels;
  const out = new Float64Array(layout.m * C);
  let row = 0;
  layout.shards.forEach((L, r) => {
    out.set(shardRows(xs[r]!, L), row * C);
    row += L.m;
  });
  return out;
}
