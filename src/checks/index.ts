/**
 * Every property family, and their expansion into cases with stable IDs
 * bn:<family>:<check>:dtype=<dtype>;axis=<first|last|other>; the normalization family's
 * (issue 23) <ln|rms|gn|in>:<family>:<check>:dtype=…;axis=…, planned for an implementation that
 * has the op (src/checks/family-common.ts).
 */
import type { BatchNormImplementation, DType } from '../contract/contract.js';
import { precisionsOf } from '../contract/dtypes.js';
import type { CheckDef } from '../harness/check.js';
import { axisSupported, caseSuffix } from '../harness/check.js';
import type { AxisVariant } from '../harness/types.js';
import { agreementChecks } from './agreement.js';
import { consistencyChecks } from './consistency.js';
import { edgeChecks } from './edge-cases.js';
import { gradientChecks } from './gradients.js';
import { hygieneChecks } from './hygiene.js';
import { invarianceChecks } from './invariance.js';
import { normalizationChecks } from './normalization.js';
import { runningStatsChecks } from './running-stats.js';
import { scaleChecks } from './scale.js';
import type { CheckSpec } from './spec.js';
import { syncChecks } from './sync.js';
import { familyAgreementChecks } from './family-agreement.js';
import { familyNormalizationChecks } from './family-normalization.js';
import { familyInvarianceChecks } from './family-invariance.js';
import { familyIdentityChecks } from './family-identities.js';
import { familyGradientChecks } from './family-gradients.js';
import { familyEdgeChecks } from './family-edge.js';
import { familyScaleChecks } from './family-scale.js';

export const ALL_CHECK_SPECS: CheckSpec[] = [
  ...normalizationChecks,
  ...invarianceChecks,
  ...consistencyChecks,
  ...runningStatsChecks,
  ...gradientChecks,
  ...agreementChecks,
  ...edgeChecks,
  ...hygieneChecks,
  ...syncChecks,
  ...scaleChecks,
  // the normalization family (0.3.0): LayerNorm, RMSNorm, GroupNorm, InstanceNorm
  ...familyAgreementChecks,
  ...familyNormalizationChecks,
  ...familyInvarianceChecks,
  ...familyIdentityChecks,
  ...familyGradientChecks,
  ...familyEdgeChecks,
  ...familyScaleChecks,
];

export const AXIS_VARIANTS: AxisVariant[] = ['first', 'last', 'other'];

export interface PlannedCase {
  def: CheckDef;
  spec: CheckSpec;
  dtype: DType;
  paramDtype: DType;
  axis: AxisVariant;
}

/**
 * Expand the specs for an implementation: its declared precisions (or dtypes, each with
 * paramDtype = dtype), its supported axis variants. A spec's `dtypes` filter applies to dtype.
 */
export function planCases(impl: BatchNormImplementation, specs: CheckSpec[] = ALL_CHECK_SPECS, extra: CheckSpec[] = []): PlannedCase[] {
  const variants = AXIS_VARIANTS.filter((v) => axisSupported(impl, v));
  const out: PlannedCase[] = [];
  for (const spec of [...specs, ...extra]) {
    // the family's checks: only for an implementation with one of the target's ops
    if (spec.plannedWith && !spec.plannedWith.some((op) => typeof impl[op] === 'function')) continue;
    const precisions = precisionsOf(impl).filter((p) => !spec.dtypes || spec.dtypes.includes(p.dtype));
    const own = spec.variants ? variants.filter((v) => spec.variants!.includes(v)) : variants;
    const axes = spec.axes === 'one' ? own.slice(0, 1) : own;
    const prefix = spec.prefix ?? 'bn';
    // a family target's results group as e.g. ln:agreement (reports, JUnit suites)
    const family = spec.prefix ? `${spec.prefix}:${spec.family}` : spec.family;
    for (const { dtype, paramDtype } of precisions) {
      for (const axis of axes) {
        const id = `${prefix}:${spec.family}:${spec.name}:${caseSuffix(dtype, axis, paramDtype)}`;
        out.push({
          spec,
          dtype,
          paramDtype,
          axis,
          def: { id, family, title: spec.title, needs: spec.needs, ...(spec.uses ? { uses: spec.uses } : {}), ...(spec.skip ? { skip: spec.skip } : {}), run: spec.run },
        });
      }
    }
  }
  return out;
}
