/**
 * The two 16-bit floating-point formats, held in JavaScript as Uint16Array bit patterns (Node 20
 * has no Float16Array): IEEE 754 binary16 ('float16': 1 sign, 5 exponent, 10 fraction bits) and
 * bfloat16 (1 sign, 8 exponent, 7 fraction bits: float32's top half).
 *
 * One job here: round a number to the nearest value of the format (ties to even), with gradual
 * underflow (subnormals), overflow to ±Infinity, NaN kept NaN; and encode/decode bit patterns.
 * Rounding works on the exact float64 value directly (a float32 input is a float64 value), never
 * through float32: float64 -> float32 -> bfloat16 rounds twice, and 1 + 2^-8 + 2^-30 would become
 * 1 (a tie after the first rounding, broken to even) instead of 1 + 2^-7.
 * Checked exhaustively against numpy float16 and ml_dtypes bfloat16 in spec/numerics/half.spec.ts.
 */

export type HalfDType = 'float16' | 'bfloat16';

export interface HalfFormat {
  /** Significand bits including the implicit one (11, 8). */
  precision: number;
  /** Smallest normal exponent (-14, -126). */
  emin: number;
  /** Largest finite value (65504, (2 - 2^-7) * 2^127). */
  max: number;
  /** Smallest positive subnormal (2^-24, 2^-133). */
  tiny: number;
  /** Smallest positive normal (2^-14, 2^-126). */
  minNormal: number;
  /** Magnitudes at or above this round to Infinity: max + half an ulp (65520). */
  overflowThreshold: number;
}

export const HALF_FORMATS: Record<HalfDType, HalfFormat> = {
  float16: { precision: 11, emin: -14, max: 65504, tiny: 2 ** -24, minNormal: 2 ** -14, overflowThreshold: 65520 },
  bfloat16: {
    precision: 8,
    emin: -126,
    max: (2 - 2 ** -7) * 2 ** 127,
    tiny: 2 ** -133,
    minNormal: 2 ** -126,
    overflowThreshold: (2 - 2 ** -8) * 2 ** 127,
  },
};

export const isHalf = (dtype: string): dtype is HalfDType => dtype === 'float16' || dtype === 'bfloat16';

const view = new DataView(new ArrayBuffer(8));

/** floor(log2 |a|) for a finite non-zero float64, exactly (from its bits; Math.log2 can be off by one). */
function exponentOf(a: number): number {
  view.setFloat64(0, a);
  const biased = (view.getUint16(0) >>> 4) & 0x7ff;
  if (biased === 0) return -1023; // float64 subnormal: far below every half format's range
  return biased - 1023;
}

/** Round v to the nearest value of the format, ties to even; ±Infinity beyond the range; NaN stays NaN. */
export function roundToHalf(v: number, dtype: HalfDType): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const f = HALF_FORMATS[dtype];
  const a = Math.abs(v);
  const e = Math.max(exponentOf(a), f.emin);
  const quantum = 2 ** (e - (f.precision - 1));
  const r = a / quantum; // exact: a power-of-two scaling of a normal float64
  const fl = Math.floor(r);
  const frac = r - fl; // exact: r < 2^53
  const n = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const rounded = n * quantum;
  if (rounded > f.max) return v < 0 ? -Infinity : Infinity;
  return v < 0 ? -rounded : rounded;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of v rounded to the format (NaN as the quiet NaN 0x7e00 / 0x7fc0). */
export function encodeHalf(v: number, dtype: HalfDType): number {
  if (Number.isNaN(v)) return dtype === 'float16' ? 0x7e00 : 0x7fc0;
  const r = roundToHalf(v, dtype);
  if (dtype === 'bfloat16') {
    // every bfloat16 value is a float32 value with a zero low half: take float32's top 16 bits
    f32[0] = r;
    return u32[0]! >>> 16;
  }
  const sign = r < 0 || Object.is(r, -0) ? 0x8000 : 0;
  const a = Math.abs(r);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | (a / 2 ** -24); // subnormal (or zero): fraction = a / 2^-24
  const e = exponentOf(a);
  return sign | ((e + 15) << 10) | (a / 2 ** (e - 10) - 1024);
}

/** The value of a bit pattern. */
export function decodeHalf(bits: number, dtype: HalfDType): number {
  if (dtype === 'bfloat16') {
    u32[0] = (bits & 0xffff) << 16;
    return f32[0]!;
  }
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (e === 0) return sign * frac * 2 ** -24;
  if (e === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (e - 25);
}

/** Encode numbers into a Uint16Array of bit patterns (each rounded once). */
export function encodeHalfArray(values: ArrayLike<number>, dtype: HalfDType): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = encodeHalf(values[i]!, dtype);
  return out;
}

/** Decode a Uint16Array of bit patterns into float64 numbers (exact). */
export function decodeHalfArray(bits: Uint16Array, dtype: HalfDType): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = decodeHalf(bits[i]!, dtype);
  return out;
}
