/**
 * `bn-conformance/half`: float16 and bfloat16 bit patterns for your own kernel. The contract
 * (docs/CONTRACT.md, "Half precision") passes half arrays as Uint16Array bit patterns (Node 20
 * has no Float16Array); these four helpers turn numbers into patterns and back.
 *
 *   import { fromFloat16Bits, toFloat16Bits } from 'bn-conformance/half';
 *   const x = fromFloat16Bits(req.x);       // Float32Array, exact
 *   const y = toFloat16Bits(yFloat32);      // Uint16Array, each value rounded once
 *
 * Rounding (to*Bits): to the nearest value of the format, ties to even, from the exact value of
 * the number (a float32 or float64 value is rounded once, never through another format);
 * gradual underflow (subnormals), ±Infinity beyond the largest finite value plus half an ulp
 * (float16: 65520 and above), -0 kept. NaN becomes the quiet NaN 0x7e00 (float16) / 0x7fc0
 * (bfloat16): sign and payload are not kept.
 *
 * Decoding (from*Bits) is exact (every float16 and bfloat16 value is a float32 value); every NaN
 * pattern decodes to NaN. So every non-NaN pattern round-trips bit for bit (fromBits, then toBits,
 * -0 and the subnormals included), and every NaN pattern comes back as the quiet NaN above.
 *
 * These are the suite's own conversions (src/numerics/half.ts, the ones the judge uses), checked
 * on all 65,536 patterns against numpy float16 and ml_dtypes bfloat16 (spec/numerics/).
 */
import { decodeHalf, encodeHalf, type HalfDType } from './numerics/half.js';

export type { HalfDType };

function toBits(x: number | ArrayLike<number>, dtype: HalfDType, fn: string): number | Uint16Array {
  if (typeof x === 'number') return encodeHalf(x, dtype);
  if (x === null || typeof x !== 'object' || typeof (x as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${fn}: expected a number or an array of numbers, got ${x === null ? 'null' : typeof x}`);
  }
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number') throw new TypeError(`${fn}: element ${i} is ${typeof v}, not a number`);
    out[i] = encodeHalf(v, dtype);
  }
  return out;
}

function checkBits(b: number, fn: string, where: string): number {
  if (!Number.isInteger(b) || b < 0 || b > 0xffff) throw new RangeError(`${fn}: ${where}must be an integer bit pattern 0..65535, got ${b}`);
  return b;
}

function fromBits(bits: number | Uint16Array, dtype: HalfDType, fn: string): number | Float32Array {
  if (typeof bits === 'number') return decodeHalf(checkBits(bits, fn, ''), dtype);
  if (!(bits instanceof Uint16Array)) {
    throw new TypeError(`${fn}: expected a bit pattern (number) or a Uint16Array of them, got ${bits === null ? 'null' : (bits as object).constructor?.name ?? typeof bits}`);
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = decodeHalf(bits[i]!, dtype);
  return out;
}

/** float16 (IEEE binary16) bit pattern of a number, or a Uint16Array of patterns of an array; round to nearest even. */
export function toFloat16Bits(x: number): number;
export function toFloat16Bits(x: ArrayLike<number>): Uint16Array;
export function toFloat16Bits(x: number | ArrayLike<number>): number | Uint16Array;
export function toFloat16Bits(x: number | ArrayLike<number>): number | Uint16Array {
  return toBits(x, 'float16', 'toFloat16Bits');
}

/** Value of a float16 bit pattern (0..65535), or a Float32Array of the values of a Uint16Array; exact. */
export function fromFloat16Bits(bits: number): number;
export function fromFloat16Bits(bits: Uint16Array): Float32Array;
export function fromFloat16Bits(bits: number | Uint16Array): number | Float32Array;
export function fromFloat16Bits(bits: number | Uint16Array): number | Float32Array {
  return fromBits(bits, 'float16', 'fromFloat16Bits');
}

/** bfloat16 bit pattern of a number (float32's top 16 bits after rounding), or a Uint16Array of patterns; round to nearest even. */
export function toBfloat16Bits(x: number): number;
export function toBfloat16Bits(x: ArrayLike<number>): Uint16Array;
export function toBfloat16Bits(x: number | ArrayLike<number>): number | Uint16Array;
export function toBfloat16Bits(x: number | ArrayLike<number>): number | Uint16Array {
  return toBits(x, 'bfloat16', 'toBfloat16Bits');
}

/** Value of a bfloat16 bit pattern (0..65535), or a Float32Array of the values of a Uint16Array; exact. */
export function fromBfloat16Bits(bits: number): number;
export function fromBfloat16Bits(bits: Uint16Array): Float32Array;
export function fromBfloat16Bits(bits: number | Uint16Array): number | Float32Array;
export function fromBfloat16Bits(bits: number | Uint16Array): number | Float32Array {
  return fromBits(bits, 'bfloat16', 'fromBfloat16Bits');
}
