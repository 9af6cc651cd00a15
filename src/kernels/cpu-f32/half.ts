/**
 * Half-precision activations for the float32 kernel, at the boundary only (issue 12): a
 * float16 / bfloat16 request with float32 parameters is decoded to float32 (exact: every half
 * value is a float32 value), computed by the float32 kernel as it is, and y / dx are rounded once
 * to the request's dtype (the float32 statistics and parameter gradients stay float32). This is
 * what the frameworks do (PyTorch, Keras mixed policies, ONNX T=float16 / U=float32), and what
 * the half tolerance models: compute in float32, one rounding to each output's dtype.
 * Pure half (half parameters) is not offered: the caller gets UnsupportedDTypeError.
 */
import type { AnyRequest, BatchNormImplementation, Precision } from '../../contract.js';
import { BatchNormInputError, UnsupportedDTypeError } from '../../errors.js';
import { isHalf, type HalfDType } from '../../numerics/half.js';
import { toNumbers, toTyped } from '../../dtypes.js';

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
  const noInto = (into: unknown, d: HalfDType) => {
    if (into !== undefined) throw new BatchNormInputError(`caller-owned outputs (the second argument) take float32 requests only, got a ${d} request`);
  };
  // the float32 methods, with the optional second argument this wrapper forwards
  type Into = (req: never, into?: unknown) => never;
  return {
    ...f32,
    dtypes: [...new Set(CPU_F32_PRECISIONS.map((p) => p.dtype))],
    precisions: CPU_F32_PRECISIONS,
    ...(f32.forwardTrain && {
      forwardTrain(req: Parameters<NonNullable<T['forwardTrain']>>[0], into?: unknown) {
        const d = halfOf(req);
        if (!d) return (f32.forwardTrain as Into).call(f32, req as never, into);
        noInto(into, d);
        const r = f32.forwardTrain!(toF32(req, d) as never) as Awaited<ReturnType<NonNullable<typeof f32.forwardTrain>>>;
        return { ...r, y: round(r.y, d) as never };
      },
    }),
    ...(f32.forwardInfer && {
      forwardInfer(req: Parameters<NonNullable<T['forwardInfer']>>[0], into?: unknown) {
        const d = halfOf(req);
        if (!d) return (f32.forwardInfer as Into).call(f32, req as never, into);
        noInto(into, d);
        const r = f32.forwardInfer!(toF32(req, d) as never) as Awaited<ReturnType<NonNullable<typeof f32.forwardInfer>>>;
        return { y: round(r.y, d) as never };
      },
    }),
    ...(f32.backward && {
      backward(req: Parameters<NonNullable<T['backward']>>[0], into?: unknown) {
        const d = halfOf(req);
        if (!d) return (f32.backward as Into).call(f32, req as never, into);
        noInto(into, d);
        const r = f32.backward!(toF32(req, d) as never) as Awaited<ReturnType<NonNullable<typeof f32.backward>>>;
        return { ...r, dx: round(r.dx, d) as never };
      },
    }),
  };
}
