/**
 * <op>:agreement:* — the normalization family's outputs within the tolerance of the reference on
 * random problems (full-mantissa values, every conditioning up to |mean| / spread ~ 2^20, half
 * dtypes with large groups mixed in): forward y (and mean, invStdDev when the implementation
 * returns them), backward dx, dgamma (dbeta). Written once over the grouping; one check per target.
 */
import { familyBackwardRequest, familyProblemArb, familyRequest } from '../arbitraries/family.js';
import { runProperty } from '../harness/check.js';
import { agreeFamily, FAMILY_TARGETS, familySpec } from './family-common.js';
import type { CheckSpec } from './spec.js';

export const familyAgreementChecks: CheckSpec[] = FAMILY_TARGETS.flatMap((t) => [
  familySpec(t, {
    family: 'agreement',
    name: 'forward',
    title: `${t.name}: y (and ${t.centred ? 'mean, ' : ''}invStdDev when returned) within the tolerance of the reference`,
    needs: [t.forward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        await agreeFamily(c, t.forward, familyRequest(p));
      }),
  }),
  familySpec(t, {
    family: 'agreement',
    name: 'backward',
    title: `${t.name} backward: dx, dgamma${t.hasBeta ? ', dbeta' : ''} (through the group statistics) within the tolerance of the reference`,
    needs: [t.backward],
    run: (ctx) =>
      runProperty(ctx, familyProblemArb({ op: t.forward, dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis, values: 'full' }), async (p, c) => {
        await agreeFamily(c, t.backward, familyBackwardRequest(p));
      }),
  }),
]);
