/**
 * The oracle: Batch Normalization on mathjs BigNumber with 60 significant digits, the plain
 * textbook mathematics with no numerical cleverness, used to prove the float64 reference on
 * small problems. Inputs are converted from their exact binary value (not the shortest decimal
 * that prints them: 0.1 is 0.1000000000000000055511151231257827..., and that difference is
 * amplified |mean|/std times in x - mean).
 */
import { createRequire } from 'node:module';
import type { BigNumber } from 'mathjs';
import type { BackwardRequest, ForwardInferRequest, ForwardTrainRequest, Profile } from '../contract/contract.js';
import { numericRequest } from '../contract/dtypes.js';
import { SingleValuePerChannelError } from '../contract/errors.js';
import { layoutOf, validateRequest } from '../contract/layout.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../contract/profiles.js';

export const ORACLE_DIGITS = 60;
type BigCtor = new (v: number | string | BigNumber) => BigNumber;
export type Big = BigNumber;

let BigClass: BigCtor | undefined;
/**
 * A BigNumber of mathjs's decimal.js class with 60 significant digits. mathjs is loaded on the
 * oracle's first use, not when the package is imported: loading it adds 29 MB to the JavaScript
 * heap, which every user of the package would carry, and a larger heap makes each garbage
 * collection longer (on 2 cores the collector's helper threads then took the cpu-f32 pipeline's
 * worker core: 5.5 ms a call with the kernel alone in the process, 17-23 ms with the package).
 */
function big(v: number | string): Big {
  if (!BigClass) {
    const mathjs = createRequire(import.meta.url)('mathjs') as typeof import('mathjs');
    const math = mathjs.create({ bignumberDependencies: mathjs.bignumberDependencies! }, { number: 'BigNumber', precision: ORACLE_DIGITS });
    BigClass = (math.bignumber(0) as unknown as { constructor: BigCtor }).constructor;
  }
  return new BigClass(v);
}

const view = new DataView(new ArrayBuffer(8));
/** 2 as a Big, made once (with the class, on first use). */
let TWO: Big | undefined;

/** The exact value of a float64 as a BigNumber (to 60 digits: relative error below 1e-59). */
export function exactBig(x: number): Big {
  if (!Number.isFinite(x) || x === 0) return big(x);
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  const fracHi = hi & 0xfffff;
  let mant = fracHi * 2 ** 32 + lo; // < 2^52, exact in a double
  let exp: number;
  if (biased === 0) exp = -1074; // subnormal
  else {
    mant += 2 ** 52;
    exp = biased - 1075;
  }
  const v = big(mant).times((TWO ??= big(2)).pow(exp));
  return x < 0 ? v.negated() : v;
}

export interface OracleTrain {
  y: Big[];
  mean: Big[];
  variance: Big[];
  runningMean: Big[];
  runningVar: Big[];
}

interface Channel {
  idx: number[];
}

/** The flat indices of each channel's m values. */
function channels(shape: number[], axis: number): Channel[] {
  const layout = layoutOf(shape, axis);
  const out: Channel[] = [];
  for (let c = 0; c < layout.channels; c++) {
    const idx: number[] = [];
    for (let o = 0; o < layout.outer; o++) for (let i = 0; i < layout.inner; i++) idx.push((o * layout.channels + c) * layout.inner + i);
    out.push({ idx });
  }
  return out;
}

/** 0/0 and x/0 follow IEEE (NaN, ±Infinity), as float64 code would. */
function div(a: Big, b: Big): Big {
  if (b.isZero()) return big(a.isZero() || a.isNaN() ? NaN : a.isNegative() ? -Infinity : Infinity);
  return a.div(b);
}

/**
 * Mean and biased variance. The mean is taken as x0 + mean(x - x0): the same number in exact
 * arithmetic, and at 60 digits it keeps a constant channel's mean exactly x0 (the naive sum / m
 * would leave a 1e-60 residue that eps = 0 turns into a spurious finite x-hat).
 */
function stats(x: Big[], idx: number[]): { mean: Big; variance: Big } {
  const m = big(idx.length);
  const x0 = x[idx[0]!]!;
  let s = big(0);
  for (const i of idx) s = s.plus(x[i]!.minus(x0));
  const mean = x0.plus(s.div(m));
  let q = big(0);
  for (const i of idx) {
    const d = x[i]!.minus(mean);
    q = q.plus(d.times(d));
  }
  return { mean, variance: q.div(m) };
}

const toBig = (a: ArrayLike<number>): Big[] => Array.from(a, exactBig);

export function oracleForwardTrain(profile: Profile, request: ForwardTrainRequest): OracleTrain {
  const { layout } = validateRequest('forwardTrain', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const x = toBig(req.x);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const { keep, take } = emaWeights(profile, req.momentum);
  // keep/take as the exact values of what float64 code computes from momentum (1 - momentum is
  // exact for momentum in [0.5, 2] by Sterbenz, and correctly rounded otherwise).
  const bKeep = exactBig(keep);
  const bTake = exactBig(take);
  const unbiased = runningVarFactor(profile, layout.m) !== 1;
  const y: Big[] = new Array(layout.numel);
  const mean: Big[] = [];
  const variance: Big[] = [];
  const runningMean: Big[] = [];
  const runningVar: Big[] = [];
  channels(req.shape, req.axis).forEach(({ idx }, c) => {
    const st = stats(x, idx);
    const s = st.variance.plus(eps).sqrt();
    const g = exactBig(req.gamma[c]!);
    const b = exactBig(req.beta[c]!);
    for (const i of idx) y[i] = g.times(div(x[i]!.minus(st.mean), s)).plus(b);
    mean.push(st.mean);
    variance.push(st.variance);
    runningMean.push(bKeep.times(exactBig(req.runningMean[c]!)).plus(bTake.times(st.mean)));
    const fed = unbiased ? st.variance.times(layout.m).div(layout.m - 1) : st.variance;
    runningVar.push(bKeep.times(exactBig(req.runningVar[c]!)).plus(bTake.times(fed)));
  });
  return { y, mean, variance, runningMean, runningVar };
}

export function oracleForwardInfer(profile: Profile, request: ForwardInferRequest): { y: Big[] } {
  const { layout } = validateRequest('forwardInfer', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  const x = toBig(req.x);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const y: Big[] = new Array(layout.numel);
  channels(req.shape, req.axis).forEach(({ idx }, c) => {
    const s = exactBig(req.runningVar[c]!).plus(eps).sqrt();
    const mu = exactBig(req.runningMean[c]!);
    const g = exactBig(req.gamma[c]!);
    const b = exactBig(req.beta[c]!);
    for (const i of idx) y[i] = g.times(div(x[i]!.minus(mu), s)).plus(b);
  });
  return { y };
}

export interface OracleBackward {
  dx: Big[];
  dgamma: Big[];
  dbeta: Big[];
  /** Per channel, sum |dy * xhat|: the scale at which dgamma is known. */
  dgammaScale: Big[];
  /**
   * Per element, the scale at which dx is known (for scale-aware ULP errors), training:
   * |gamma / s| (|dy| + |mean dy| + |xhat| mean|dy xhat|); inference |dx|.
   */
  dxScale: Big[];
}

export function oracleBackward(profile: Profile, request: BackwardRequest): OracleBackward {
  const { layout } = validateRequest('backward', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  if (req.training && layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const x = toBig(req.x);
  const dy = toBig(req.dy);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const dx: Big[] = new Array(layout.numel);
  const dxScale: Big[] = new Array(layout.numel);
  const dgamma: Big[] = [];
  const dbeta: Big[] = [];
  const dgammaScale: Big[] = [];
  const m = big(layout.m);
  channels(req.shape, req.axis).forEach(({ idx }, c) => {
    const st = req.training
      ? stats(x, idx)
      : { mean: exactBig(req.runningMean![c]!), variance: exactBig(req.runningVar![c]!) };
    const s = st.variance.plus(eps).sqrt();
    const g = exactBig(req.gamma[c]!);
    let sDy = big(0);
    let sDyXhat = big(0);
    let sAbs = big(0);
    const xhat = new Map<number, Big>();
    for (const i of idx) {
      const h = div(x[i]!.minus(st.mean), s);
      xhat.set(i, h);
      sDy = sDy.plus(dy[i]!);
      sDyXhat = sDyXhat.plus(dy[i]!.times(h));
      sAbs = sAbs.plus(dy[i]!.times(h).abs());
    }
    dgammaScale.push(sAbs);
    dbeta.push(sDy);
    dgamma.push(sDyXhat);
    const gs = div(g, s);
    for (const i of idx) {
      if (req.training) {
        const a = sDy.div(m);
        const bterm = xhat.get(i)!.times(sDyXhat.div(m));
        dx[i] = gs.times(dy[i]!.minus(a).minus(bterm));
        // |xhat| mean|dy xhat|, not |xhat P|: P = mean(dy xhat) is known only to u mean|dy xhat|
        // (its terms' roundings), which cancellation in P does not shrink
        dxScale[i] = gs.abs().times(dy[i]!.abs().plus(a.abs()).plus(xhat.get(i)!.abs().times(sAbs.div(m))));
      } else {
        dx[i] = gs.times(dy[i]!);
        dxScale[i] = dx[i]!.abs();
      }
    }
  });
  return { dx, dgamma, dbeta, dgammaScale, dxScale };
}

