/**
 * Half-precision activations for the float32 kernel, at the boundary only (issue 12): a
 * float16 / bfloat16 request with float32 parameters is decoded to float32 (exact: every half
 * value is a float32 value), computed by the float32 kernel as it is, and y / dx are rounded once
 * to the request's dtype (the float32 statistics and parameter gradients stay float32). This is
 * what the frameworks do (PyTorch, Keras mixed policies, ONNX T=float16 / U=float32), and what
 * the half tolerance models: compute in float32, one rounding to each output's dtype.
 * Pure half (half parameters) is not offered: the caller gets UnsupportedDTypeError.
 */
import type { AnyRequest, BatchNormImplementation, Precision } from '../../contract/contract.js';
import { BatchNormInputError, UnsupportedDTypeError } from '../../contract/errors.js';
import { isHalf, type HalfDType } from '../../numerics/half.js';
import { toNumbers, toTyped } from '../../contract/dtypes.js';

export const CPU_F32_PRECISIONS: Precision[] = [
  { dtype: 'float32', paramDtype: 'float32' },
  { dtype: 'float16', paramDtype: 'float32' },
  { dtype: 'bfloat16', paramDtype: 'float32' },
];

const supported = CPU_F32_PRECISIONS.map((p) => (p.dtype === p.paramDtype ? p.dtype : `${p.dtype} with ${p.paramDtype} parameters`));

/**
 * Wrap a float32 implementation so it also takes float16 / bfloat16 activations with float32
 * parameters. A second argument (cpu-f32's caller-owned outputs, `into`) passes through with a
 * float32 request; with a half one it is refused, since the half y / dx are new arrays rounded
 * from float32 ones.
 */
export function withHalfActivations<T extends BatchNormImplementation>(f32: T): T {
  /** The half dtype of a request, or undefined for a float32 one (which passes through untouched). */
  const halfOf = (req: AnyRequest): HalfDType | undefined => {
    const d = req.dtype;
    if (d === undefined || !isHalf(d)) return undefined;
    if ((req.paramDtype ?? d) !== 'float32') throw new UnsupportedDTypeError(`${d} with ${req.paramDtype ?? d} parameters`, supported);
    return d;
  };
  const toF32 = (req: AnyRequest, d: HalfDType) => {
    const out: Record<string, unknown> = { ...req, dtype: 'float32', paramDtype: 'float32' };
    for (const k of ['x', 'dy'] as const) {
      const v = (req as unknown as Record<string, unknown>)[k];
      // a wrong array type is left for the float32 kernel's validation to name
      if (v instanceof Uint16Array) out[k] = Float32Array.from(toNumbers(v, d));
    }
    return out;
  };
  const round = (a: unknown, d: HalfDType) => (a instanceof Float32Array ? toTyped(d, a) : a);
  /**
   * One op of the wrapper: a float32 request, with its optional caller-owned output `into`, goes
   * to the float32 op as it is; a half one is decoded, run, and its output `out` rounded once.
   */
  const wrap = (op: 'forwardTrain' | 'forwardInfer' | 'backward', out: 'y' | 'dx') => {
    const run = f32[op] as ((req: unknown, into?: unknown) => Record<string, unknown>) | undefined;
    if (!run) return {};
    return {
      [op](req: AnyRequest, into?: unknown) {
        const d = halfOf(req);
        if (!d) return run.call(f32, req, into);
        if (into !== undefined) throw new BatchNormInputError(`caller-owned outputs (the second argument) take float32 requests only, got a ${d} request`);
        const r = run.call(f32, toF32(req, d));
        return { ...r, [out]: round(r[out], d) };
      },
    };
  };
  return {
    ...f32,
    dtypes: [...new Set(CPU_F32_PRECISIONS.map((p) => p.dtype))],
    precisions: CPU_F32_PRECISIONS,
    ...wrap('forwardTrain', 'y'),
    ...wrap('forwardInfer', 'y'),
    ...wrap('backward', 'dx'),
  };
}
