/**
 * What the normalization family's check files share (issue 23): the four targets (LayerNorm,
 * RMSNorm, GroupNorm, InstanceNorm) as data, so each family file writes a check ONCE over the
 * grouping and instantiates it per target with IDs `<prefix>:<family>:<check>:dtype=…;axis=…`
 * (ln, rms, gn, in); the guarded call for family ops; agreement with the reference through the
 * family's expectation (src/judge/compare.ts); the exact group statistics of a request.
 *
 * Planning (src/checks/index.ts): a target's checks are planned for an implementation that
 * defines its forward or backward op (`plannedWith`); a check whose `needs` the implementation
 * lacks is reported not supported, never passed.
 */
import type { AnyOp, FamilyOp, FamilyRequest } from '../contract/contract.js';
import { FAMILY, groupingFor, groupOf, type Grouping } from '../contract/grouping.js';
import { effectiveEps } from '../contract/profiles.js';
import type { FamilyForwardOp } from '../arbitraries/family.js';
import { checkAgainst, expectationFor, type Comparison, type Expectation } from '../judge/compare.js';
import { Mismatch, fmt, type CheckContext } from '../harness/check.js';
import type { AxisVariant } from '../harness/types.js';
import { groupStats } from '../reference/grouped.js';
import { countComparison } from '../judge/tally.js';
import type { CheckSpec } from './spec.js';

export type FamilyPrefix = 'ln' | 'rms' | 'gn' | 'in';

export interface FamilyTarget {
  prefix: FamilyPrefix;
  /** For titles and messages: LayerNorm, RMSNorm, GroupNorm, InstanceNorm. */
  name: string;
  forward: FamilyForwardOp;
  backward: FamilyOp;
  kind: 'layer' | 'group' | 'instance';
  /** Subtracts the group mean (all but RMSNorm). */
  centred: boolean;
  hasBeta: boolean;
  /**
   * The axis variants of its IDs: layerNorm / rmsNorm the first normalized axis ('first' axis 1,
   * 'last' rank - 1, 'other' a middle axis); groupNorm / instanceNorm the channel axis (1 or rank - 1).
   */
  variants: AxisVariant[];
}

const target = (prefix: FamilyPrefix, name: string, forward: FamilyForwardOp, variants: AxisVariant[]): FamilyTarget => {
  const f = FAMILY[forward];
  return { prefix, name, forward, backward: `${forward}Backward` as FamilyOp, kind: f.kind, centred: f.centred, hasBeta: f.hasBeta, variants };
};

export const FAMILY_TARGETS: readonly FamilyTarget[] = [
  target('ln', 'LayerNorm', 'layerNorm', ['first', 'last', 'other']),
  target('rms', 'RMSNorm', 'rmsNorm', ['first', 'last', 'other']),
  target('gn', 'GroupNorm', 'groupNorm', ['first', 'last']),
  target('in', 'InstanceNorm', 'instanceNorm', ['first', 'last']),
];

export const TARGET: Readonly<Record<FamilyPrefix, FamilyTarget>> = Object.fromEntries(FAMILY_TARGETS.map((t) => [t.prefix, t])) as Record<FamilyPrefix, FamilyTarget>;

/** A family check as a family file writes it: the spec minus what the target decides. */
export type FamilyCheck = Omit<CheckSpec, 'prefix' | 'variants' | 'plannedWith'> & { variants?: AxisVariant[] };

/** The spec of one target's check: its ID prefix, its variants, planned when the implementation has one of its ops. */
export function familySpec(t: FamilyTarget, c: FamilyCheck): CheckSpec {
  return { ...c, prefix: t.prefix, variants: c.variants ?? t.variants, plannedWith: [t.forward, t.backward] };
}

export type Outputs = Record<string, Float32Array | Float64Array>;

/** The guarded call (ctx.call) for a family op: half outputs come back decoded, as numbers. */
export function callFamily(ctx: CheckContext, op: FamilyOp, req: FamilyRequest): Promise<Outputs> {
  return (ctx.call as unknown as (op: AnyOp, r: FamilyRequest) => Promise<Outputs>)(op, req);
}

/** The reference's outputs and per-element bounds for this case's precision and accumulation. */
export function familyExpectation(ctx: CheckContext, op: FamilyOp, req: FamilyRequest): Expectation {
  return expectationFor(op, ctx.profile, req, { accumulation: ctx.accumulation, precision: { dtype: ctx.dtype, paramDtype: ctx.paramDtype } });
}

/** Throw a Mismatch naming the worst element by its position in the grouping. */
export function expectFamilyAgreement(cmp: Comparison, e: Expectation, what: string): void {
  if (cmp.ok) return;
  const w = cmp.worst!;
  const where = e.where?.(w.output, w.index) ?? `${w.output}[${w.index}]`;
  throw new Mismatch(`${what}: ${where} = ${w.got} but expected ${w.expected} (error ${fmt(w.error)} > allowed ${fmt(w.bound)})`, {
    worst: { ...w, where },
    boundReason: cmp.reason,
  });
}

/** Call op and require every output (mean / invStdDev when returned) within its bound of the reference. */
export async function agreeFamily(ctx: CheckContext, op: FamilyOp, req: FamilyRequest, what: string = op): Promise<{ got: Outputs; e: Expectation }> {
  const got = await callFamily(ctx, op, req);
  const e = familyExpectation(ctx, op, req);
  expectFamilyAgreement(checkAgainst(e, got), e, what);
  return { got, e };
}

export interface ExactGroupStats {
  G: Grouping;
  /** Per group: the exact mean (0 for RMSNorm), variance (RMSNorm: mean(x^2)), s = sqrt(var + eps). */
  mean: Float64Array;
  variance: Float64Array;
  s: Float64Array;
  eps: number;
  /** x-hat of element i, from the double-double mean (digits kept when |mean| >> s). */
  xhat(i: number): number;
  group(i: number): number;
}

/** The exact statistics of a family request's x (the reference's groupStats, eps as the profile applies it). */
export function exactGroupStats(ctx: Pick<CheckContext, 'profile'>, op: FamilyOp, req: FamilyRequest): ExactGroupStats {
  const G = groupingFor(op, req as FamilyRequest & { groups?: number });
  const st = groupStats(req.x, G, FAMILY[op].centred);
  const eps = effectiveEps(ctx.profile, req.eps);
  const mean = st.meanHi.map((h, g) => h + st.meanLo[g]!);
  const s = st.variance.map((v) => Math.sqrt(v + eps));
  return {
    G,
    mean,
    variance: st.variance,
    s,
    eps,
    xhat: (i) => {
      const g = groupOf(G, i);
      return (req.x[i]! - st.meanHi[g]! - st.meanLo[g]!) / s[g]!;
    },
    group: (i) => groupOf(G, i),
  };
}

/**
 * Require two values to differ by more than `bound` (a property that something must change): one
 * compared value, informative when the bound is finite. The caller guarantees by construction that
 * the exact values differ by more than twice the bound, so an honest implementation passes.
 */
export function expectApart(what: string, a: number, b: number, bound: number, reason: string): void {
  countComparison(bound < Infinity);
  if (!(bound < Infinity)) return;
  const d = Math.abs(a - b);
  if (!(d > bound)) {
    throw new Mismatch(`${what}: ${a} and ${b} differ by ${fmt(d)}, not more than ${fmt(bound)}`, {
      boundReason: reason,
      worst: { output: what, index: -1, channel: -1, expected: NaN, got: b, error: d, bound, where: what },
    });
  }
}

/** Output names a family op returns, per element (y / dx) or per parameter (dgamma / dbeta). */
export const perElementOutput = (backward: boolean) => (backward ? 'dx' : 'y');
