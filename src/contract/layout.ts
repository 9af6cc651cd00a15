/**
 * Shape and request validation shared by every kernel of ours.
 *
 * A dense row-major tensor with channel axis `axis` is viewed as [outer, C, inner]:
 * outer = prod(shape[0..axis)), inner = prod(shape(axis..]). Element (o, c, i) sits at
 * (o * C + c) * inner + i, and channel c's m = outer * inner values are the same batch
 * positions for every c (one mini-batch, per-channel statistics).
 */
import type { Arr, BackwardRequest, DType, ForwardInferRequest, ForwardTrainRequest, Op } from './contract.js';
import { BatchNormInputError } from './errors.js';

export interface Layout {
  outer: number;
  channels: number;
  inner: number;
  /** Values per channel. */
  m: number;
  numel: number;
}

export function layoutOf(shape: readonly number[], axis: number): Layout {
  if (!Array.isArray(shape)) throw new BatchNormInputError(`shape must be an array of positive integers, got ${describe(shape)}`);
  if (shape.length < 2) throw new BatchNormInputError(`rank must be >= 2, got shape [${shape.join(', ')}]`);
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new BatchNormInputError(`shape must hold positive integers, got [${shape.join(', ')}]`);
    }
  }
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new BatchNormInputError(`axis must be an integer in [0, ${shape.length - 1}] for shape [${shape.join(', ')}], got ${axis}`);
  }
  let outer = 1;
  for (let k = 0; k < axis; k++) outer *= shape[k]!;
  let inner = 1;
  for (let k = axis + 1; k < shape.length; k++) inner *= shape[k]!;
  const channels = shape[axis]!;
  const numel = outer * channels * inner;
  if (!Number.isSafeInteger(numel)) throw new BatchNormInputError(`shape [${shape.join(', ')}] has too many elements`);
  return { outer, channels, inner, m: outer * inner, numel };
}

export function dtypeOf(a: unknown): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  return undefined;
}

const DTYPE_NAMES: readonly string[] = ['float32', 'float64', 'float16', 'bfloat16'];
const storageName = (dtype: DType) => (dtype === 'float32' ? 'Float32Array' : dtype === 'float64' ? 'Float64Array' : 'Uint16Array');
const holds = (a: unknown, dtype: DType) =>
  dtype === 'float32' ? a instanceof Float32Array : dtype === 'float64' ? a instanceof Float64Array : a instanceof Uint16Array;

/** A value as an error message names it: null, undefined, Float32Array(6), Array(3), string, … */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  if (Array.isArray(v)) return `Array(${v.length})`;
  return typeof v;
}

/**
 * `named`: the request names its dtypes (dtype / paramDtype fields, required for half); otherwise
 * every array has x's dtype, read from its type.
 */
export function checkArray(name: string, a: unknown, dtype: DType, length: number, named: boolean): asserts a is Arr {
  if (!holds(a, dtype)) {
    const d = dtypeOf(a);
    if (!named && d !== undefined) throw new BatchNormInputError(`${name} is ${d} but x is ${dtype}: every array of a request has one dtype`);
    throw new BatchNormInputError(`${name} must be a ${storageName(dtype)} (${dtype}), got ${describe(a)}`);
  }
  if ((a as Arr).length !== length) throw new BatchNormInputError(`${name} has length ${(a as Arr).length}, expected ${length}`);
}

export function checkEps(eps: unknown): void {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new BatchNormInputError(`eps must be a finite number >= 0, got ${String(eps)}`);
  }
}

export interface Validated {
  layout: Layout;
  /** x, dy, y, dx. */
  dtype: DType;
  /** gamma, beta, running and batch statistics, dgamma, dbeta (= dtype unless the request names another). */
  paramDtype: DType;
}

/**
 * A request's (dtype, paramDtype): its named fields, else x's array type (float32 / float64; a
 * half request must name its dtype). `named` says which (checkArray's message depends on it).
 * Every op's validation reads the precision here (BN's below, the family's in grouping.ts).
 */
export function requestPrecision(req: { x: unknown; dtype?: unknown; paramDtype?: unknown }): { dtype: DType; paramDtype: DType; named: boolean } {
  const named = req.dtype !== undefined || req.paramDtype !== undefined;
  for (const [k, v] of [['dtype', req.dtype], ['paramDtype', req.paramDtype]] as const) {
    if (v !== undefined && !DTYPE_NAMES.includes(v as string)) throw new BatchNormInputError(`${k} must be one of ${DTYPE_NAMES.join(', ')}, got ${String(v)}`);
  }
  const dtype = (req.dtype as DType | undefined) ?? dtypeOf(req.x);
  if (dtype === undefined) {
    if (req.x instanceof Uint16Array) throw new BatchNormInputError('x is a Uint16Array: a float16 or bfloat16 request must name its dtype');
    throw new BatchNormInputError(`x must be a Float32Array or Float64Array, got ${describe(req.x)}`);
  }
  return { dtype, paramDtype: (req.paramDtype as DType | undefined) ?? dtype, named };
}

/** Validate a request of the given op against the contract; throws BatchNormInputError. */
export function validateRequest(op: Op, req: ForwardTrainRequest | ForwardInferRequest | BackwardRequest): Validated {
  if (typeof req !== 'object' || req === null) throw new BatchNormInputError(`${op}: request must be an object`);
  const layout = layoutOf(req.shape, req.axis);
  const { dtype, paramDtype, named } = requestPrecision(req);
  checkArray('x', req.x, dtype, layout.numel, named);
  checkArray('gamma', req.gamma, paramDtype, layout.channels, named);
  checkEps(req.eps);
  if (op === 'forwardTrain') {
    const r = req as ForwardTrainRequest;
    checkArray('beta', r.beta, paramDtype, layout.channels, named);
    checkArray('runningMean', r.runningMean, paramDtype, layout.channels, named);
    checkArray('runningVar', r.runningVar, paramDtype, layout.channels, named);
    if (typeof r.momentum !== 'number' || !Number.isFinite(r.momentum)) {
      throw new BatchNormInputError(`momentum must be a finite number, got ${String(r.momentum)}`);
    }
  } else if (op === 'forwardInfer') {
    const r = req as ForwardInferRequest;
    checkArray('beta', r.beta, paramDtype, layout.channels, named);
    checkArray('runningMean', r.runningMean, paramDtype, layout.channels, named);
    checkArray('runningVar', r.runningVar, paramDtype, layout.channels, named);
  } else {
    const r = req as BackwardRequest;
    checkArray('dy', r.dy, dtype, layout.numel, named);
    if (typeof r.training !== 'boolean') throw new BatchNormInputError(`training must be a boolean, got ${describe(r.training)}`);
    if (!r.training) {
      checkArray('runningMean', r.runningMean, paramDtype, layout.channels, named);
      checkArray('runningVar', r.runningVar, paramDtype, layout.channels, named);
    }
  }
  return { layout, dtype, paramDtype };
}
export function allocLike(dtype: DType, n: number): Arr {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'float64' ? new Float64Array(n) : new Uint16Array(n);
}
