/**
 * Grid facts of a group of values (src/judge/tolerance.ts `exactness`): the coarsest power of two
 * q = 2^e every value is an integer multiple of, and in units of q: Σ|v|, the range, and whether
 * the exact mean is itself a multiple of q. One pass, no allocation: the tolerance needs it for
 * every channel of every comparison, up to 2^21 values each.
 */
import type { GridFacts } from './tolerance.js';

const word = new Float64Array(1);
const bits = new Uint32Array(word.buffer);
/** Bit 0 of the 32-bit word is the float64's least significant mantissa bit (little-endian typed arrays on every platform Node runs). */
const LO = 0;
const HI = 1;

/** Trailing zeros of a non-zero 32-bit integer. */
const ctz = (x: number) => 31 - Math.clz32(x & -x);

/** e such that v = odd * 2^e (v finite, non-zero). */
export function lowestBitExponent(v: number): number {
  word[0] = v;
  const lo = bits[LO]!;
  const hi = bits[HI]!;
  const biased = (hi >>> 20) & 0x7ff;
  // value = mantissa * 2^e0, the mantissa with its implicit bit (normal) or without (subnormal)
  const e0 = biased === 0 ? -1074 : biased - 1075;
  if (lo !== 0) return e0 + ctz(lo);
  const mantHi = (hi & 0xfffff) | (biased === 0 ? 0 : 0x100000);
  return e0 + 32 + ctz(mantHi);
}

/**
 * Accumulates one group's values (add each, then facts()). Σ|v| and Σv are float64 sums: exact
 * whenever the facts can matter (the tolerance uses them only when Σ|v| / q <= 2^52, where every
 * partial sum of these multiples of q is a float64).
 */
export class GridAccumulator {
  private minExp = Infinity;
  private absSum = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;
  private finite = true;
  private n = 0;

  add(v: number): void {
    this.n++;
    if (v === 0) {
      if (0 < this.min) this.min = 0;
      if (0 > this.max) this.max = 0;
      return;
    }
    if (!Number.isFinite(v)) {
      this.finite = false;
      return;
    }
    const e = lowestBitExponent(v);
    if (e < this.minExp) this.minExp = e;
    this.absSum += Math.abs(v);
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The group's grid facts; undefined when a value is not finite (no sum of it is exact). */
  facts(): GridFacts | undefined {
    if (!this.finite) return undefined;
    if (this.minExp === Infinity) return { sumUnits: 0, rangeUnits: 0, meanOnGrid: true }; // all zeros
    const q = 2 ** this.minExp;
    const sumUnits = this.absSum / q;
    const total = this.sum / q;
    return { sumUnits, rangeUnits: (this.max - this.min) / q, meanOnGrid: Number.isSafeInteger(total) && total % this.n === 0 };
  }
}
