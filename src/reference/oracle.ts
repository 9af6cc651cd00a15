/**
 * The oracle: Batch Normalization and the normalization family on mathjs BigNumber with 60
 * significant digits, the plain textbook mathematics with no numerical cleverness, used to prove
 * the float64 reference on small problems. Written once over a grouping (src/contract/grouping.ts):
 * BN is the batch grouping, the family's ops their own (groupForward, groupBackward). Inputs are converted from their exact binary value (not the shortest decimal
 * that prints them: 0.1 is 0.1000000000000000055511151231257827..., and that difference is
 * amplified |mean|/std times in x - mean).
 */
import { createRequire } from 'node:module';
import type { BigNumber } from 'mathjs';
import type { BackwardRequest, FamilyOp, FamilyRequest, ForwardInferRequest, ForwardTrainRequest, LayerNormBackwardRequest, LayerNormRequest, Profile } from '../contract/contract.js';
import { numericRequest } from '../contract/dtypes.js';
import { SingleValuePerChannelError } from '../contract/errors.js';
import { validateRequest } from '../contract/layout.js';
import { batchGroupingOf, FAMILY, indicesOf, paramOf, validateFamilyRequest, type Grouping } from '../contract/grouping.js';
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

/** 0/0 and x/0 follow IEEE (NaN, ±Infinity), as float64 code would. */
function div(a: Big, b: Big): Big {
  if (b.isZero()) return big(a.isZero() || a.isNaN() ? NaN : a.isNegative() ? -Infinity : Infinity);
  return a.div(b);
}

/**
 * Mean and biased variance. The mean is taken as x0 + mean(x - x0): the same number in exact
 * arithmetic, and at 60 digits it keeps a constant group's mean exactly x0 (the naive sum / m
 * would leave a 1e-60 residue that eps = 0 turns into a spurious finite x-hat). Uncentred
 * (RMSNorm): mean 0 and "variance" mean(x^2).
 */
function stats(x: Big[], idx: ArrayLike<number>, centred = true): { mean: Big; variance: Big } {
  const m = big(idx.length);
  if (!centred) {
    let q = big(0);
    for (const i of Array.from(idx)) q = q.plus(x[i]!.times(x[i]!));
    return { mean: big(0), variance: q.div(m) };
  }
  const x0 = x[idx[0]!]!;
  let s = big(0);
  for (const i of Array.from(idx)) s = s.plus(x[i]!.minus(x0));
  const mean = x0.plus(s.div(m));
  let q = big(0);
  for (const i of Array.from(idx)) {
    const d = x[i]!.minus(mean);
    q = q.plus(d.times(d));
  }
  return { mean, variance: q.div(m) };
}

const toBig = (a: ArrayLike<number>): Big[] => Array.from(a, exactBig);

/** Statistics given instead of computed (BN inference: the running statistics). */
interface Given {
  mean: Big[];
  variance: Big[];
}

/**
 * The forward over a grouping, the plain mathematics: per group mean and variance (or given),
 * s = sqrt(variance + eps), y = gamma[p] (x - mean) / s + beta[p].
 */
function groupForward(x: Big[], G: Grouping, gamma: Big[], beta: Big[] | undefined, eps: Big, centred: boolean, given?: Given) {
  const y: Big[] = new Array(G.numel);
  const mean: Big[] = [];
  const variance: Big[] = [];
  const s: Big[] = [];
  for (let g = 0; g < G.groups; g++) {
    const idx = indicesOf(G, g);
    const st = given ? { mean: given.mean[g]!, variance: given.variance[g]! } : stats(x, idx, centred);
    const sg = st.variance.plus(eps).sqrt();
    for (const i of Array.from(idx)) {
      const p = paramOf(G, i);
      const t = gamma[p]!.times(div(x[i]!.minus(st.mean), sg));
      y[i] = beta ? t.plus(beta[p]!) : t;
    }
    mean.push(st.mean);
    variance.push(st.variance);
    s.push(sg);
  }
  return { y, mean, variance, s };
}

export interface OracleBackward {
  dx: Big[];
  dgamma: Big[];
  dbeta: Big[];
  /** Per parameter, sum |dy * xhat| over the elements reading it: the scale at which dgamma is known. */
  dgammaScale: Big[];
  /** Per parameter, sum |dy|: dbeta's scale. */
  dbetaScale: Big[];
  /**
   * Per element, the scale at which dx is known (for scale-aware ULP errors), training:
   * (|dy'| + |mean dy'| + |xhat| mean|dy' xhat|) / s with dy' = gamma dy (BN: |gamma / s| (|dy| +
   * |mean dy| + |xhat| mean|dy xhat|)); inference |dx|.
   */
  dxScale: Big[];
}

/**
 * The gradients over a grouping, per group: dy' = gamma[p] dy, Q = mean(dy') (0 uncentred),
 * P = mean(dy' xhat), dx = (dy' - Q - xhat P) / s (training) or dy' / s (statistics given);
 * per parameter dgamma = sum dy xhat and dbeta = sum dy over every element reading it.
 */
function groupBackward(x: Big[], dy: Big[], G: Grouping, gamma: Big[], eps: Big, opts: { training: boolean; centred: boolean; given?: Given }): OracleBackward {
  const dx: Big[] = new Array(G.numel);
  const dxScale: Big[] = new Array(G.numel);
  const zeros = () => Array.from({ length: G.params }, () => big(0));
  const dgamma = zeros();
  const dbeta = zeros();
  const dgammaScale = zeros();
  const dbetaScale = zeros();
  const m = big(G.m);
  for (let g = 0; g < G.groups; g++) {
    const idx = Array.from(indicesOf(G, g));
    const st = opts.given ? { mean: opts.given.mean[g]!, variance: opts.given.variance[g]! } : stats(x, idx, opts.centred);
    const s = st.variance.plus(eps).sqrt();
    let sDy = big(0);
    let sDyXhat = big(0);
    let sAbs = big(0);
    const xhat = new Map<number, Big>();
    const dyp = new Map<number, Big>();
    for (const i of idx) {
      const p = paramOf(G, i);
      const h = div(x[i]!.minus(st.mean), s);
      const d = gamma[p]!.times(dy[i]!);
      xhat.set(i, h);
      dyp.set(i, d);
      sDy = sDy.plus(d);
      sDyXhat = sDyXhat.plus(d.times(h));
      sAbs = sAbs.plus(d.times(h).abs());
      dgamma[p] = dgamma[p]!.plus(dy[i]!.times(h));
      dgammaScale[p] = dgammaScale[p]!.plus(dy[i]!.times(h).abs());
      dbeta[p] = dbeta[p]!.plus(dy[i]!);
      dbetaScale[p] = dbetaScale[p]!.plus(dy[i]!.abs());
    }
    const Q = opts.centred ? sDy.div(m) : big(0);
    const P = sDyXhat.div(m);
    for (const i of idx) {
      const d = dyp.get(i)!;
      if (opts.training) {
        const h = xhat.get(i)!;
        dx[i] = div(d.minus(Q).minus(h.times(P)), s);
        // |xhat| mean|dy' xhat|, not |xhat P|: P is known only to u mean|dy' xhat| (its terms'
        // roundings), which cancellation in P does not shrink
        dxScale[i] = div(d.abs().plus(Q.abs()).plus(h.abs().times(sAbs.div(m))), s).abs();
      } else {
        dx[i] = div(d, s);
        dxScale[i] = dx[i]!.abs();
      }
    }
  }
  return { dx, dgamma, dbeta, dgammaScale, dbetaScale, dxScale };
}

export function oracleForwardTrain(profile: Profile, request: ForwardTrainRequest): OracleTrain {
  const { layout } = validateRequest('forwardTrain', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  if (layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const { keep, take } = emaWeights(profile, req.momentum);
  // keep/take as the exact values of what float64 code computes from momentum (1 - momentum is
  // exact for momentum in [0.5, 2] by Sterbenz, and correctly rounded otherwise).
  const bKeep = exactBig(keep);
  const bTake = exactBig(take);
  const unbiased = runningVarFactor(profile, layout.m) !== 1;
  const { y, mean, variance } = groupForward(toBig(req.x), batchGroupingOf(layout), toBig(req.gamma), toBig(req.beta), eps, true);
  const runningMean = mean.map((mu, c) => bKeep.times(exactBig(req.runningMean[c]!)).plus(bTake.times(mu)));
  const runningVar = variance.map((v, c) => {
    const fed = unbiased ? v.times(layout.m).div(layout.m - 1) : v;
    return bKeep.times(exactBig(req.runningVar[c]!)).plus(bTake.times(fed));
  });
  return { y, mean, variance, runningMean, runningVar };
}

export function oracleForwardInfer(profile: Profile, request: ForwardInferRequest): { y: Big[] } {
  const { layout } = validateRequest('forwardInfer', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  const eps = exactBig(effectiveEps(profile, req.eps));
  const given = { mean: toBig(req.runningMean), variance: toBig(req.runningVar) };
  return { y: groupForward(toBig(req.x), batchGroupingOf(layout), toBig(req.gamma), toBig(req.beta), eps, true, given).y };
}

export function oracleBackward(profile: Profile, request: BackwardRequest): OracleBackward {
  const { layout } = validateRequest('backward', request);
  const req = numericRequest(request); // half bit patterns decoded (exactly); float32/float64 as numbers
  if (req.training && layout.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const given = req.training ? undefined : { mean: toBig(req.runningMean!), variance: toBig(req.runningVar!) };
  return groupBackward(toBig(req.x), toBig(req.dy), batchGroupingOf(layout), toBig(req.gamma), eps, { training: req.training, centred: true, ...(given ? { given } : {}) });
}

// ------------------------------------------------------------ the normalization family (0.3.0)

export interface OracleFamilyForward {
  y: Big[];
  /** Per group (centred ops). */
  mean?: Big[];
  invStdDev: Big[];
  /** Per group: the variance (rmsNorm: mean(x^2)), for the spec's scales. */
  variance: Big[];
}

/** A family forward op on the oracle: the op's grouping, the plain mathematics. */
export function oracleFamilyForward(profile: Profile, op: FamilyOp, request: FamilyRequest): OracleFamilyForward {
  const f = FAMILY[op];
  const { grouping: G } = validateFamilyRequest(op, request);
  const req = numericRequest(request) as LayerNormRequest;
  if (f.singleValueRule && G.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = exactBig(effectiveEps(profile, req.eps));
  const r = groupForward(toBig(req.x), G, toBig(req.gamma), f.hasBeta ? toBig(req.beta) : undefined, eps, f.centred);
  return { y: r.y, ...(f.centred ? { mean: r.mean } : {}), invStdDev: r.s.map((s) => div(big(1), s)), variance: r.variance };
}

/** A family backward op on the oracle (training gradients through the group statistics). */
export function oracleFamilyBackward(profile: Profile, op: FamilyOp, request: FamilyRequest): OracleBackward {
  const f = FAMILY[op];
  const { grouping: G } = validateFamilyRequest(op, request);
  const req = numericRequest(request) as LayerNormBackwardRequest;
  if (f.singleValueRule && G.m === 1 && profile.singleValue === 'error') throw new SingleValuePerChannelError(1, req.shape, req.axis);
  const eps = exactBig(effectiveEps(profile, req.eps));
  return groupBackward(toBig(req.x), toBig(req.dy), G, toBig(req.gamma), eps, { training: true, centred: f.centred });
}
