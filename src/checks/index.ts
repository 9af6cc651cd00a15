/**
 * Every property family, and their expansion into cases with stable IDs
 * bn:<family>:<check>:dtype=<dtype>;axis=<first|last|other>.
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
    const precisions = precisionsOf(impl).filter((p) => !spec.dtypes || spec.dtypes.includes(p.dtype));
    const axes = spec.axes === 'one' ? variants.slice(0, 1) : variants;
    for (const { dtype, paramDtype } of precisions) {
      for (const axis of axes) {
        const id = `bn:${spec.family}:${spec.name}:${caseSuffix(dtype, axis, paramDtype)}`;
        out.push({
          spec,
          dtype,
          paramDtype,
          axis,
          def: { id, family: spec.family, title: spec.title, needs: spec.needs, ...(spec.uses ? { uses: spec.uses } : {}), ...(spec.skip ? { skip: spec.skip } : {}), run: spec.run },
        });
      }
    }
  }
  return out;
}
