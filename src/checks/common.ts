/**
 * Helpers shared by the property families: compare with the reference through the tolerance,
 * expect an error where a profile demands one, and read the exact statistics of a batch.
 */
import { admitsNonFinite, checkAgainst, expectationFor, type Expectation } from '../judge/compare.js';
import type { AnyRequest, DType, Op } from '../contract/contract.js';
import { layoutOf } from '../contract/layout.js';
import { effectiveEps } from '../contract/profiles.js';
import { channelStats } from '../reference/reference.js';
import { expectAgreement, Mismatch, type CheckContext } from '../harness/check.js';
import { ContractFault } from '../harness/call.js';
import { exactStencil, scaleBound, withinBound } from '../judge/tolerance.js';

export function expectation(ctx: CheckContext, op: Op, req: AnyRequest): Expectation {
  return expectationFor(op, ctx.profile, req, { accumulation: ctx.accumulation, precision: { dtype: ctx.dtype, paramDtype: ctx.paramDtype } });
}

/** Call op and require every output within the tolerance of the reference; returns the result. */
export async function callAndAgree(ctx: CheckContext, op: Op, req: AnyRequest, what: string = op) {
  const got = await ctx.call(op, req);
  expectAgreement(checkAgainst(expectation(ctx, op, req), got), req, what);
  return got;
}

/** The profile demands an error (m = 1 under pytorch/paper): any thrown or rejected error passes. */
export async function expectRefusal(ctx: CheckContext, op: Op, req: AnyRequest, why: string): Promise<void> {
  try {
    await ctx.call(op, req);
  } catch (e) {
    if (e instanceof ContractFault && (e.fault === 'threw' || e.fault === 'rejected')) return;
    throw e;
  }
  throw new Mismatch(`${op} returned a result, but ${why}`);
}

/**
 * Exact per-channel mean and biased variance of x, s = sqrt(var + eps), and x-hat of an element
 * from the double-double mean: (x - meanHi) - meanLo keeps x-hat's digits when |mean| >> std,
 * where the float64-rounded mean would cost u * |mean| / s.
 */
export function exactStats(ctx: CheckContext, req: AnyRequest) {
  const L = layoutOf(req.shape, req.axis);
  const st = channelStats(Float64Array.from(req.x), L);
  const eps = effectiveEps(ctx.profile, req.eps);
  const mean = Float64Array.from(st.meanHi, (h, c) => h + st.meanLo[c]!);
  const s = Float64Array.from(st.variance, (v) => Math.sqrt(v + eps));
  const xhat = (i: number, c: number) => (req.x[i]! - st.meanHi[c]! - st.meanLo[c]!) / s[c]!;
  return { L, mean, variance: st.variance, s, eps, xhat };
}

/** Indices of channel c's values. */
export function channelIndices(shape: number[], axis: number, c: number): number[] {
  const L = layoutOf(shape, axis);
  const out: number[] = [];
  for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) out.push((o * L.channels + c) * L.inner + i);
  return out;
}

/**
 * Require |got - expected| <= bound for one scalar, with a message naming it (and it as the worst
 * element). An Infinity bound makes no claim (src/judge/tolerance.ts errorRatio) and is counted as
 * inconclusive, as is one the caller knows to be uninformative (`informative` false).
 */
export function expectClose(what: string, got: number, expected: number, bound: number, reason: string, informative = true, overflowAt = Infinity): void {
  // the same value is no error, ±Infinity included (two honest results past paramDtype's range);
  // so is an honest overflow of a finite exact value within its bound of overflowAt (admitsNonFinite)
  const admitted = got === expected || (Number.isFinite(expected) && bound < Infinity && admitsNonFinite(expected, got, bound, overflowAt));
  const err = admitted ? 0 : Math.abs(got - expected);
  // a bound (or an expected value) built from the implementation's own non-finite output is NaN:
  // that is the implementation's failure, not the tolerance's (errorRatio's InternalError is for ours)
  if (Number.isNaN(bound) && (!Number.isFinite(got) || !Number.isFinite(expected))) {
    throw new Mismatch(`${what} = ${got} but expected ${expected}: a non-finite value from finite inputs`, {
      boundReason: reason,
      worst: { output: what, index: -1, channel: -1, expected, got, error: err, bound: 0, where: what },
    });
  }
  if (!withinBound(err, bound, informative)) {
    throw new Mismatch(`${what} = ${got} but expected ${expected} (error ${err.toExponential(3)} > allowed ${bound.toExponential(3)})`, {
      boundReason: reason,
      worst: { output: what, index: -1, channel: -1, expected, got, error: err, bound, where: what },
    });
  }
}

/**
 * L = sum w_i y_i over an implementation's forward output, and its error bound: each y_i within
 * its tolerance bound, plus our own float64 evaluation (n products and an n-term sequential sum:
 * gamma(n) sum|w y|, Higham). The loss central differences are taken of (gradients, family-gradients).
 */
export function weightedLoss(y: ArrayLike<number>, w: ArrayLike<number>, bounds: ArrayLike<number>): { L: number; err: number } {
  let L = 0;
  let err = 0;
  let abs = 0;
  for (let i = 0; i < y.length; i++) {
    L += w[i]! * y[i]!;
    err += scaleBound(bounds[i]!, w[i]!);
    abs += Math.abs(w[i]! * y[i]!);
  }
  const n = y.length;
  return { L, err: err + ((n * 2 ** -53) / (1 - n * 2 ** -53)) * abs };
}

/**
 * The element (from start on, cyclically) whose central-difference stencil is exact, with its
 * step; undefined when none is (x values all at a binade edge or far below the step).
 */
export function exactElement(dtype: DType, values: number[], start: number, stepOf: (i: number) => number) {
  for (let k = 0; k < values.length; k++) {
    const i = (start + k) % values.length;
    const h = stepOf(i);
    if (exactStencil(dtype, values[i]!, h)) return { index: i, h };
  }
  return undefined;
}
