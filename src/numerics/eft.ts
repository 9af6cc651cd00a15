/**
 * Error-free transformations and compensated summation in float64 (Knuth's TwoSum, Dekker's
 * TwoProduct, Neumaier's sum). These give the reference its accuracy: a sum carried as an
 * unevaluated pair (hi, lo) with hi + lo equal to the exact sum to within about u^2 relative.
 */

/** Knuth TwoSum: s + e = a + b exactly, s = fl(a + b). */
export function twoSum(a: number, b: number, out: Float64Array): void {
  const s = a + b;
  const bb = s - a;
  out[0] = s;
  out[1] = a - (s - bb) + (b - bb);
}

const SPLITTER = 134217729; // 2^27 + 1, Dekker's split for 53-bit significands

/** Dekker TwoProduct: p + e = a * b exactly (barring overflow), p = fl(a * b). */
export function twoProd(a: number, b: number, out: Float64Array): void {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  out[0] = p;
  out[1] = al * bl - (p - ah * bh - al * bh - ah * bl);
}

/**
 * Neumaier's improved Kahan–Babuška summation. The running pair (sum, comp) is a
 * double-double whose value sum + comp is the exact sum to within about
 * 2u * |exact| + O(n u^2) sum|x_i| (Higham, Accuracy and Stability, §4.3).
 */
export class CompensatedSum {
  sum = 0;
  comp = 0;

  reset(): void {
    this.sum = 0;
    this.comp = 0;
  }

  add(x: number): void {
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.comp += this.sum - t + x;
    else this.comp += x - t + this.sum;
    this.sum = t;
  }

  /** The sum rounded once to float64. */
  value(): number {
    return this.sum + this.comp;
  }
}

const scratch = new Float64Array(2);

/**
 * Divide the double-double (hi, lo) by a positive integer n; returns [qHi, qLo] with
 * qHi + qLo = (hi + lo) / n to about u^2 relative, and qHi = fl(qHi + qLo) (normalized).
 */
export function ddDivInt(hi: number, lo: number, n: number, out: Float64Array): void {
  const q = hi / n;
  twoProd(q, n, scratch);
  // remainder (hi + lo) - q*n, computed with the exact product: hi - p is exact by Sterbenz
  const r = hi - scratch[0]! - scratch[1]! + lo;
  const qlo = r / n;
  twoSum(q, qlo, out);
}
