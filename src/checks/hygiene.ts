/**
 * bn:hygiene:* — the contract's rules, each on its own so a report names the broken one even
 * when numbers are fine: inputs are never modified; results have the request's dtype and the
 * right lengths; finite inputs give finite outputs (with eps > 0), save where the tolerance admits
 * ±Infinity: an exact value past a half format's range (65,597 is +Infinity in float16).
 */
import { backwardRequest, inferRequest, problemArb, trainRequest, type Problem } from '../arbitraries/problem.js';
import type { AnyRequest, Op } from '../contract/contract.js';
import { OPS } from '../contract/contract.js';
import { ContractFault, supportedOps } from '../harness/call.js';
import { Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import { layoutOf } from '../contract/layout.js';
import { admitsNonFinite, type Expectation } from '../judge/compare.js';
import { expectation } from './common.js';
import type { CheckSpec } from './spec.js';

function requests(p: Problem, ops: Op[]): Array<[Op, AnyRequest]> {
  const out: Array<[Op, AnyRequest]> = [];
  const m = layoutOf(p.shape, p.axis).m;
  if (ops.includes('forwardTrain') && m > 1) out.push(['forwardTrain', trainRequest(p)]);
  if (ops.includes('forwardInfer')) out.push(['forwardInfer', inferRequest(p)]);
  if (ops.includes('backward')) out.push(['backward', backwardRequest(p, true)], ['backward', backwardRequest(p, false)]);
  return out;
}

/** Run every op once; pass only the faults this check is about up as failures. */
function faultCheck(name: string, title: string, faults: string[]): CheckSpec {
  return {
    family: 'hygiene',
    name,
    title,
    needs: [],
    uses: [...OPS], // every op the implementation has
    run: (ctx: CheckContext) =>
      runProperty(
        ctx,
        problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }),
        async (p, c) => {
          for (const [op, req] of requests(p, supportedOps(c.impl))) {
            try {
              await c.call(op, req);
            } catch (e) {
              if (e instanceof ContractFault && faults.includes(e.fault)) throw new Mismatch(e.message, { fault: e.fault });
              if (!(e instanceof ContractFault)) throw e; // our own bug (InternalError): never swallowed
              // other faults are other checks' business
            }
          }
        },
        // a quarter of the runs (at least 3): these faults show on any input, not rare ones
        Math.max(3, Math.ceil(ctx.runs / 4)),
      ),
  };
}

export const hygieneChecks: CheckSpec[] = [
  faultCheck('inputs-unchanged', 'inputs are never modified: every array and the shape are identical, byte for byte, after every call', ['input-mutated']),
  faultCheck('output-types', 'every result is an object with each output, as a typed array of the request\'s dtype and the right length', [
    'not-an-object',
    'missing-output',
    'not-a-typed-array',
    'wrong-dtype',
    'wrong-length',
  ]),
  faultCheck('settles', 'every call returns or settles within the time limit and does not throw on a valid request', ['threw', 'rejected', 'timeout']),
  {
    family: 'hygiene',
    name: 'finite-outputs',
    title: 'finite inputs with eps > 0 give finite outputs (save an exact value past a half format\'s range, which rounds to ±Infinity)',
    needs: [],
    uses: [...OPS],
    run: (ctx) =>
      runProperty(
        ctx,
        problemArb({ dtype: ctx.dtype, paramDtype: ctx.paramDtype, axis: ctx.axis }),
        async (p, c) => {
          for (const [op, req] of requests(p, supportedOps(c.impl))) {
            let got: Record<string, ArrayLike<number>>;
            try {
              got = (await c.call(op, req)) as unknown as Record<string, ArrayLike<number>>;
            } catch (e) {
              if (!(e instanceof ContractFault)) throw e;
              continue; // faults are reported by the checks above
            }
            // computed only when an output is not finite (most runs never need it)
            let e: Expectation | undefined;
            for (const [name, arr] of Object.entries(got)) {
              for (let i = 0; i < arr.length; i++) {
                if (Number.isFinite(arr[i])) continue;
                // an exact value past the half format's range rounds to ±Infinity, and a singular
                // channel bounds nothing: the tolerance admits those (admitsNonFinite)
                e ??= expectation(c, op, req);
                const bound = e.bounds[name]?.[i];
                if (bound !== undefined && admitsNonFinite(e.expected[name]![i]!, arr[i]!, bound, e.overflowAt?.[name])) continue;
                throw new Mismatch(`${op} returned ${name}[${i}] = ${arr[i]} for finite inputs and eps = ${req.eps}`);
              }
            }
          }
        },
        // a quarter of the runs (at least 3): these faults show on any input, not rare ones
        Math.max(3, Math.ceil(ctx.runs / 4)),
      ),
  },
];
