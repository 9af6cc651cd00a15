/**
 * Dtypes and precisions in one place: which array type holds each dtype, rounding a number to a
 * dtype, which fields of a request or result are activations (dtype) and which are per-channel
 * (paramDtype), and the boundary between the numbers the checks work with and the arrays an
 * implementation receives (half dtypes travel as Uint16Array bit patterns).
 */
import type { AnyRequest, Arr, BatchNormImplementation, DType, FamilyRequest, Precision } from './contract.js';
import { decodeHalfArray, encodeHalfArray, HALF_FORMATS, isHalf, roundToHalf } from '../numerics/half.js';

/** Activations: x, dy in a request; y, dx in a result. Every other array is per-channel. */
const ACTIVATIONS = new Set(['x', 'dy', 'y', 'dx']);

export const fieldDtype = (field: string, p: Precision): DType => (ACTIVATIONS.has(field) ? p.dtype : p.paramDtype);

/** Round v to the nearest value of dtype (ties to even), once, from its exact float64 value. */
export function roundTo(dtype: DType, v: number): number {
  if (dtype === 'float64') return v;
  if (dtype === 'float32') return Math.fround(v);
  return roundToHalf(v, dtype);
}

export const rounder = (dtype: DType) => (v: number) => roundTo(dtype, v);

/**
 * The magnitude from which a value rounds to ±Infinity in dtype (round to nearest: halfway between
 * the largest finite value and the next power of two): float32 (2 - 2^-24) 2^127, the half
 * formats' from HALF_FORMATS; float64: Infinity (the reference's own numbers are float64).
 */
export function overflowThresholdOf(dtype: DType): number {
  if (dtype === 'float64') return Infinity;
  if (dtype === 'float32') return (2 - 2 ** -24) * 2 ** 127;
  return HALF_FORMATS[dtype].overflowThreshold;
}

type Storage = Float32ArrayConstructor | Float64ArrayConstructor | Uint16ArrayConstructor;
export function storageOf(dtype: DType): Storage {
  return dtype === 'float32' ? Float32Array : dtype === 'float64' ? Float64Array : Uint16Array;
}

/** The contract array for dtype holding `values`, each rounded once to dtype. */
export function toTyped(dtype: DType, values: ArrayLike<number>): Arr {
  if (isHalf(dtype)) return encodeHalfArray(values, dtype);
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
}

/** An array's values as numbers: half bit patterns decoded (exactly) to float64; others as they are. */
export function toNumbers(a: Arr, dtype: DType): Float32Array | Float64Array {
  if (a instanceof Uint16Array) {
    if (!isHalf(dtype)) throw new TypeError(`a Uint16Array holds float16 or bfloat16 bit patterns, not ${dtype}`);
    return decodeHalfArray(a, dtype);
  }
  return a;
}

/**
 * An implementation's supported precisions (0.3.0; docs/CONTRACT.md, Half precision), read so
 * that no declared precision is ever dropped silently: every entry of `precisions`, whatever
 * `dtypes` says (a precision implies its dtype: `dtypes: ['float32']` with
 * `precisions: [{ dtype: 'float16', paramDtype: 'float32' }]` runs float16/float32 too), then
 * each dtype of `dtypes` that no precision names, with paramDtype = dtype. A dtype some precision
 * names gets only the pairs listed (a mixed-only half kernel is not sent pure half requests).
 * Before 0.3.0 a precision whose dtype `dtypes` did not list was dropped without a word.
 */
export function precisionsOf(impl: Pick<BatchNormImplementation, 'dtypes' | 'precisions'>): Precision[] {
  const dtypes = Array.isArray(impl.dtypes) ? impl.dtypes : [];
  const listed = Array.isArray(impl.precisions) ? impl.precisions : [];
  const out: Precision[] = [];
  const seen = new Set<string>();
  const add = (p: Precision) => {
    const key = `${p.dtype}/${p.paramDtype}`;
    if (!seen.has(key)) (seen.add(key), out.push({ dtype: p.dtype, paramDtype: p.paramDtype }));
  };
  listed.forEach(add);
  for (const d of dtypes) if (!listed.some((p) => p.dtype === d)) add({ dtype: d, paramDtype: d });
  return out;
}

/** Every dtype the implementation supports: `dtypes`, then those only its `precisions` name. */
export function dtypesOf(impl: Pick<BatchNormImplementation, 'dtypes' | 'precisions'>): DType[] {
  return [...new Set([...(Array.isArray(impl.dtypes) ? impl.dtypes : []), ...precisionsOf(impl).map((p) => p.dtype)])];
}

/** The request's precision: its fields, else read from its arrays (float32 / float64 only). */
export function precisionOfRequest(req: AnyRequest | FamilyRequest): Precision {
  const fromArray = req.x instanceof Float32Array ? 'float32' : req.x instanceof Float64Array ? 'float64' : undefined;
  const dtype = req.dtype ?? fromArray;
  if (!dtype) throw new TypeError('a request with Uint16Array arrays must name its dtype (float16 or bfloat16)');
  const gamma = req.gamma instanceof Float32Array ? 'float32' : req.gamma instanceof Float64Array ? 'float64' : undefined;
  return { dtype, paramDtype: req.paramDtype ?? gamma ?? dtype };
}

/** `float16` or `float16/float32`, for messages. */
export const precisionLabel = (p: Precision) => (p.dtype === p.paramDtype ? p.dtype : `${p.dtype}/${p.paramDtype}`);

export class UnrepresentableInputError extends Error {
  constructor(field: string, index: number, value: number, dtype: DType) {
    super(`internal: ${field}[${index}] = ${value} is not a ${dtype} value; a check must build inputs exactly representable in their dtype`);
    this.name = 'UnrepresentableInputError';
  }
}

/**
 * A check's request (arrays of numbers, each exactly representable in its field's dtype) as the
 * contract request for precision p: every array in its field's dtype (half as bit patterns, fresh
 * arrays), dtype and paramDtype named. Arrays already in the right storage travel as they are.
 * A value that would need rounding is a bug in the check, never silently changed.
 */
export function toContractRequest<R extends AnyRequest | FamilyRequest>(req: R, p: Precision): R {
  const out: Record<string, unknown> = { ...(req as unknown as Record<string, unknown>), dtype: p.dtype, paramDtype: p.paramDtype };
  for (const [k, v] of Object.entries(req)) {
    if (!(v instanceof Float32Array || v instanceof Float64Array)) continue;
    const dt = fieldDtype(k, p);
    if (v instanceof storageOf(dt)) continue;
    const typed = toTyped(dt, v);
    const back = toNumbers(typed, dt);
    for (let i = 0; i < v.length; i++) {
      if (!Object.is(back[i], v[i]) && !(Number.isNaN(back[i]) && Number.isNaN(v[i]))) throw new UnrepresentableInputError(k, i, v[i]!, dt);
    }
    out[k] = typed;
  }
  return out as unknown as R;
}

/** A request's arrays as float64 numbers (half decoded), its precision named: what the reference and the tolerance read. */
export function numericRequest<R extends AnyRequest | FamilyRequest>(req: R): R {
  const p = precisionOfRequest(req);
  const out: Record<string, unknown> = { ...(req as unknown as Record<string, unknown>), dtype: p.dtype, paramDtype: p.paramDtype };
  for (const [k, v] of Object.entries(req)) {
    if (v instanceof Float32Array || v instanceof Float64Array || v instanceof Uint16Array) out[k] = Float64Array.from(toNumbers(v, fieldDtype(k, p)));
  }
  return out as unknown as R;
}
