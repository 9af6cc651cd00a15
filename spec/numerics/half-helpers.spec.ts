/**
 * The exported half-precision helpers (`bn-conformance/half`, src/half.ts), exhaustively:
 * - every one of the 65,536 patterns of each format round-trips (fromBits, then toBits) bit for
 *   bit, except NaN patterns, which all come back as the one quiet NaN (the documented rule);
 * - toBits agrees with the suite's conversion (encodeHalf, the judge's) on ~1.3M float32 values
 *   per format: a stride over all 2^32 float32 patterns, plus every rounding boundary (each
 *   midpoint between adjacent half values and the float32 values on either side of it);
 * - and, independently of that conversion, the result is the nearest half value with ties to
 *   the even pattern (decided exactly from the neighbouring patterns), and for bfloat16 equals
 *   the classic integer rounding of float32's bits.
 */
import { describe, expect, it } from 'vitest';
import { fromBfloat16Bits, fromFloat16Bits, toBfloat16Bits, toFloat16Bits } from '../../src/half.js';
import * as root from '../../src/index.js';
import { encodeHalf, type HalfDType } from '../../src/numerics/half.js';

const helpers = {
  float16: { to: toFloat16Bits, from: fromFloat16Bits, nan: 0x7e00, expBits: 0x7c00 },
  bfloat16: { to: toBfloat16Bits, from: fromBfloat16Bits, nan: 0x7fc0, expBits: 0x7f80 },
} as const;
const DTYPES: HalfDType[] = ['float16', 'bfloat16'];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromF32Bits = (b: number) => ((u32[0] = b >>> 0), f32[0]!);
const f32Bits = (v: number) => ((f32[0] = v), u32[0]!);
/** The float32 value next to v (v a float32 value) towards +Infinity / -Infinity. */
const nextUp = (v: number) => (v === 0 ? 2 ** -149 : fromF32Bits(f32Bits(v) + (v > 0 ? 1 : -1)));
const nextDown = (v: number) => -nextUp(-v);

const isNaNBits = (b: number, dt: HalfDType) => (b & helpers[dt].expBits) === helpers[dt].expBits && (b & ~helpers[dt].expBits & 0x7fff) !== 0;

/** float32 values: a stride over every pattern, then each midpoint between adjacent half values with its two float32 neighbours. */
function samples(dt: HalfDType): Float32Array {
  const out: number[] = [];
  // 4093 is prime, so the stride visits every residue of the low bits (mantissa tails, exponents)
  for (let b = 0; b < 2 ** 32; b += 4093) out.push(fromF32Bits(b));
  for (let b = 0; b < 0x8000; b++) {
    const lo = helpers[dt].from(b);
    if (!Number.isFinite(lo)) continue;
    // the next value up: the next pattern, or (past the largest finite) where Infinity starts, 2^16 / 2^128
    const hiBits = b + 1;
    const hi = (hiBits & helpers[dt].expBits) === helpers[dt].expBits ? (dt === 'float16' ? 2 ** 16 : 2 ** 128) : helpers[dt].from(hiBits);
    const mid = (lo + hi) / 2; // exact in float64, and a float32 value (a 12-bit / 9-bit significand)
    for (const v of [mid, nextDown(mid), nextUp(mid)]) out.push(v, -v);
  }
  return Float32Array.from(out);
}

/** The nearest half value to v by exact comparison with its neighbours, ties to the even pattern. */
function isNearestEven(v: number, bits: number, dt: HalfDType): boolean {
  const { from } = helpers[dt];
  const got = from(bits);
  if (!Number.isFinite(got)) {
    // overflow: v is at least max + half an ulp of max (the tie goes to Infinity, the "even" side)
    const max = from(dt === 'float16' ? 0x7bff : 0x7f7f);
    const threshold = dt === 'float16' ? 65520 : (2 - 2 ** -8) * 2 ** 127;
    return Math.sign(got) === Math.sign(v) && Math.abs(v) >= threshold && Math.abs(v) > max;
  }
  if (got === 0 && v !== 0 && Object.is(got, -0) !== v < 0) return false;
  const err = Math.abs(v - got); // exact: v and got are float32 values within a factor 2 (or tiny)
  for (const nb of [bits + 1, bits - 1, bits ^ 0x8000]) {
    if (nb < 0 || nb > 0xffff || isNaNBits(nb, dt)) continue;
    const w = from(nb);
    if (!Number.isFinite(w)) continue;
    const e = Math.abs(v - w);
    if (e < err) return false;
    if (e === err && w !== got && (bits & 1) === 1) return false; // a tie must go to the even pattern
  }
  return true;
}

describe('bn-conformance/half: toFloat16Bits, fromFloat16Bits, toBfloat16Bits, fromBfloat16Bits', () => {
  it('are exported from the package root too', () => {
    expect(root.toFloat16Bits).toBe(toFloat16Bits);
    expect(root.fromFloat16Bits).toBe(fromFloat16Bits);
    expect(root.toBfloat16Bits).toBe(toBfloat16Bits);
    expect(root.fromBfloat16Bits).toBe(fromBfloat16Bits);
  });

  it.each(DTYPES)('%s: all 65,536 patterns round-trip (fromBits then toBits), NaN patterns to the quiet NaN', (dt) => {
    const { to, from, nan } = helpers[dt];
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = from(all);
    expect(values).toBeInstanceOf(Float32Array);
    const back = to(values);
    const bad: string[] = [];
    let nans = 0;
    for (let b = 0; b < 65536; b++) {
      const v = from(b);
      // the array form and the scalar form agree, and the decode is exact (float32 holds every half value)
      if (!Object.is(values[b], v) && !(Number.isNaN(values[b]) && Number.isNaN(v))) bad.push(`from(0x${b.toString(16)}) ${v} vs array ${values[b]}`);
      const expected = isNaNBits(b, dt) ? nan : b;
      if (isNaNBits(b, dt)) nans++;
      if (to(v) !== expected || back[b] !== expected) bad.push(`0x${b.toString(16)} -> ${v} -> 0x${to(v).toString(16)} / 0x${back[b]!.toString(16)}`);
    }
    expect(bad.slice(0, 5)).toEqual([]);
    // 2 signs x (2^fraction bits - 1) NaN patterns
    expect(nans).toBe(dt === 'float16' ? 2 * 1023 : 2 * 127);
    expect(Object.is(from(0x8000), -0)).toBe(true);
    expect(from(dt === 'float16' ? 0x0001 : 0x0001)).toBe(dt === 'float16' ? 2 ** -24 : 2 ** -133);
  });

  it.each(DTYPES)('%s: toBits is the nearest value, ties to even, on a dense float32 sample and every rounding boundary; the same as the suite\'s conversion', (dt) => {
    const { to } = helpers[dt];
    const xs = samples(dt);
    expect(xs.length).toBeGreaterThan(1_200_000);
    const bits = to(xs);
    const bad: string[] = [];
    for (let i = 0; i < xs.length; i++) {
      const v = xs[i]!;
      const b = bits[i]!;
      if (Number.isNaN(v)) {
        if (b !== helpers[dt].nan) bad.push(`NaN -> 0x${b.toString(16)}`);
        continue;
      }
      if (b !== encodeHalf(v, dt) || b !== to(v)) bad.push(`${v}: 0x${b.toString(16)} vs encodeHalf 0x${encodeHalf(v, dt).toString(16)}`);
      if (!isNearestEven(v, b, dt)) bad.push(`${v} -> 0x${b.toString(16)} (${helpers[dt].from(b)}) is not the nearest-even value`);
      if (dt === 'bfloat16') {
        // float32 bits + 0x7fff + the kept lowest bit, truncated: round to nearest even on the integer (overflow carries into Infinity)
        const u = f32Bits(v);
        const r = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
        if (r !== b) bad.push(`${v}: 0x${b.toString(16)} vs the integer rounding 0x${r.toString(16)}`);
      }
      if (bad.length > 5) break;
    }
    expect(bad).toEqual([]);
  }, 60_000);

  it('rounds the documented boundary cases', () => {
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65519.99)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00); // max + half an ulp: a tie, to the even side (Infinity)
    expect(toFloat16Bits(-1e9)).toBe(0xfc00);
    expect(toFloat16Bits(2 ** -25)).toBe(0); // a tie between 0 and the smallest subnormal: even
    expect(toFloat16Bits(3 * 2 ** -25)).toBe(2); // between subnormals 1 and 2: even
    expect(toFloat16Bits(-0)).toBe(0x8000);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie down to even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie up to even
    expect(toBfloat16Bits(1 + 2 ** -8 + 2 ** -30)).toBe(0x3f81); // from the exact float64 value: above the tie
    expect(toBfloat16Bits(Infinity)).toBe(0x7f80);
    expect(toFloat16Bits(-NaN)).toBe(0x7e00);
    expect(toBfloat16Bits(NaN)).toBe(0x7fc0);
    expect(Array.from(toFloat16Bits([1, -2, 0.5]))).toEqual([0x3c00, 0xc000, 0x3800]);
    expect(Array.from(fromBfloat16Bits(Uint16Array.of(0x3f80, 0xc000)))).toEqual([1, -2]);
  });

  it('refuses what is not a number or a bit pattern, by name', () => {
    expect(() => fromFloat16Bits(65536)).toThrow(RangeError);
    expect(() => fromFloat16Bits(1.5)).toThrow(/fromFloat16Bits: must be an integer bit pattern 0\.\.65535, got 1\.5/);
    expect(() => fromBfloat16Bits(-1)).toThrow(RangeError);
    expect(() => fromFloat16Bits([1, 2] as unknown as Uint16Array)).toThrow(/fromFloat16Bits: expected a bit pattern \(number\) or a Uint16Array of them, got Array/);
    expect(() => toFloat16Bits(['1'] as unknown as number[])).toThrow(/toFloat16Bits: element 0 is string, not a number/);
    expect(() => toBfloat16Bits('1' as unknown as number)).toThrow(TypeError);
  });
});
