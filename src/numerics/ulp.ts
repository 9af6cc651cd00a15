/**
 * Units in the last place, for every dtype, and a bit-exact float32 ULP distance
 * (fast-check's floatToIndex idea: consecutive floats map to consecutive integers).
 */
import type { DType } from '../contract/contract.js';

/** Unit roundoff u (half the machine epsilon): the relative error of one correct rounding. */
export function unitRoundoff(dtype: DType): number {
  return UNIT_ROUNDOFF[dtype];
}
const UNIT_ROUNDOFF: Record<DType, number> = { float32: 2 ** -24, float64: 2 ** -53, float16: 2 ** -11, bfloat16: 2 ** -8 };

const MIN_NORMAL: Record<DType, number> = { float32: 2 ** -126, float64: 2 ** -1022, float16: 2 ** -14, bfloat16: 2 ** -126 };
const MANTISSA_BITS: Record<DType, number> = { float32: 23, float64: 52, float16: 10, bfloat16: 7 };

/** The spacing of dtype floats at |x| (the ULP of x); subnormal spacing below the normal range. */
export function ulp(x: number, dtype: DType = 'float64'): number {
  const a = Math.abs(x);
  if (!Number.isFinite(a)) return Infinity;
  const min = MIN_NORMAL[dtype];
  const bits = MANTISSA_BITS[dtype];
  if (a < min) return min * 2 ** -bits;
  return 2 ** (Math.floor(Math.log2(a)) - bits) * (2 ** Math.floor(Math.log2(a)) > a ? 0.5 : 1);
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** Index of a float32 on the number line: +0 and -0 are adjacent, NaN has no index. */
export function float32Index(x: number): number {
  f32[0] = x;
  const bits = i32[0]!;
  return bits >= 0 ? bits : -(bits & 0x7fffffff) - 1;
}

/** Number of float32 values between a and b (0 when equal); Infinity when either is NaN. */
export function ulpDistanceF32(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity;
  return Math.abs(float32Index(a) - float32Index(b));
}
