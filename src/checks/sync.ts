/**
 * bn:sync:* — synchronized (cross-replica) BatchNorm (issue 13): one global batch split into
 * shards, one per replica. Every check compares with single-device BatchNorm over the
 * concatenated batch (the proven reference), replica by replica, under the merged-statistics
 * tolerance (syncTolerance in src/judge/tolerance.ts, from the declared all-reduce structure).
 *
 *   concatenation      forwardTrainSync equals BN over the concatenation (1 to 16 replicas)
 *   split-invariance   8 = 3+5 = 1+1+6 of the same examples, then the same data split three ways
 *                      (whole, drawn, cut anew): the same answer
 *   uneven-shards      named splits: a replica with one example, one with none, 1+0, 7+1
 *   running-var-bessel the running variance's Bessel factor uses the global count, not a replica's
 *   backward           backwardSync with uneven counts equals the concatenated backward
 *   replicas-agree     every replica holds the same running statistics (bit for bit: copies of
 *                      one all-reduced value), and they are right
 *   large-offset       |mean| / std up to 2^20, full-precision values: a merge of sums of squares
 *                      fails, Chan's merge (or a global two-pass) passes
 *   replica-count      R = 1 to 16 replicas over the same 30 examples
 *
 * The calls go through ctx.callSync (callSyncImplementation: the same guarded call as every op,
 * then the nested result validated). A failure's counterexample is the harness's (Recorder in
 * src/harness/check.ts): the shrunk shards of the failing call, and every request of the case.
 */
import fc from 'fast-check';
import {
  fixedProblem,
  oneReplica,
  shardsArb,
  splitOf,
  syncBackwardRequest,
  syncTrainRequest,
  type SyncProblem,
} from '../arbitraries/shards.js';
import { checkSync, expectationForSync } from '../judge/compare.js';
import type { AnySyncRequest, SyncOp } from '../contract/contract.js';
import { ContractFault } from '../harness/call.js';
import type { SyncResultArrays } from '../harness/call.js';
import { InternalError } from '../contract/errors.js';
import { fmt, Mismatch, runExamples, runProperty, whereOf, type CheckContext } from '../harness/check.js';
import { runningVarFactor } from '../contract/profiles.js';
import { describeConvention } from './running-stats.js';
import type { CheckSpec } from './spec.js';

const FAMILY = 'sync';
const DTYPES = ['float32', 'float64'] as const;

const countsOf = (req: AnySyncRequest) => req.shards.map((s) => s.shape.reduce((a, d, k) => (k === req.axis ? a : a * d), 1));

// through the context: the runner's refuses an op the check does not declare, and the Recorder
// (runProperty, runExamples) records the request and supplies callSync to a hand-built context
const callSync = (ctx: CheckContext, op: SyncOp, req: AnySyncRequest) => {
  if (!ctx.callSync) throw new InternalError(`${op} called outside runProperty / runExamples (no ctx.callSync)`);
  return ctx.callSync(op, req);
};

/** The profile refuses m = 1 in training: any thrown or rejected error passes. */
async function expectSyncRefusal(ctx: CheckContext, op: SyncOp, req: AnySyncRequest): Promise<void> {
  try {
    await callSync(ctx, op, req);
  } catch (e) {
    if (e instanceof ContractFault && (e.fault === 'threw' || e.fault === 'rejected')) return;
    throw e;
  }
  throw new Mismatch(`${op} returned a result for a global batch of m = 1, but profile ${ctx.profile.name} demands an error (singleValue: 'error')`);
}

/** Name an output element: replicas[1].y[d0=0,c=2], mean[c=1]. */
function whereOfSync(output: string, index: number, req: AnySyncRequest): string {
  const m = /^replicas\[(\d+)\]\.(\w+)$/.exec(output);
  if (!m) return whereOf(output, index, [], req.axis);
  const r = Number(m[1]);
  return `replicas[${r}].${whereOf(m[2]!, index, req.shards[r]!.shape, req.axis)}`;
}

/**
 * Call a synchronized op and require every output of every replica within the merged tolerance
 * of single-device BN over the concatenation. `what` says which split or case it was.
 */
async function syncAgree(ctx: CheckContext, op: SyncOp, req: AnySyncRequest, what: string): Promise<SyncResultArrays | undefined> {
  const m = countsOf(req).reduce((a, b) => a + b, 0);
  if (m === 1 && ctx.profile.singleValue === 'error') {
    await expectSyncRefusal(ctx, op, req);
    return undefined;
  }
  const got = await callSync(ctx, op, req);
  const e = expectationForSync(op, ctx.profile, req, { accumulation: ctx.accumulation });
  const cmp = checkSync(e, got as never);
  if (!cmp.ok) {
    const w = cmp.worst!;
    const where = whereOfSync(w.output, w.index, req);
    throw new Mismatch(
      `${what}: ${where} = ${w.got} but single-device BN over the concatenation gives ${w.expected} (error ${fmt(w.error)} > allowed ${fmt(w.bound)}); replica counts [${countsOf(req).join(', ')}]`,
      { worst: { ...w, where }, boundReason: cmp.reason },
    );
  }
  return got;
}

const splitName = (counts: number[]) => (counts.length === 1 ? `one replica [${counts[0]}]` : `split [${counts.join('+')}]`);

/** M examples x 2 channels, the second half with a different mean (so a mean of means is wrong). */
function namedData(M: number): number[][] {
  return Array.from({ length: M }, (_, k) => [k < M / 2 ? k : 20 + 3 * k, (k % 3) - 1 + (k >= M / 2 ? 8 : 0)]);
}

export const syncChecks: CheckSpec[] = [
  {
    family: FAMILY,
    name: 'concatenation',
    title: 'forwardTrainSync equals single-device BN over the concatenated global batch, replica by replica (1 to 16 replicas, uneven, empty ones)',
    needs: ['forwardTrainSync'],
    dtypes: [...DTYPES],
    run: (ctx) =>
      runProperty(ctx, shardsArb({ dtype: ctx.dtype, axis: ctx.axis }), async (p, c) => {
        await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p), splitName(p.counts));
      }),
  },
  {
    family: FAMILY,
    name: 'split-invariance',
    title: 'the same global batch gives the same answer however it is split (whole, drawn, cut anew): 8 = 8 = 3+5 = 1+1+6',
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: async (ctx) => {
      // the issue's own example first: the same 8 examples as 8, 3+5 and 1+1+6
      const named = await runExamples(
        ctx,
        [[8], [3, 5], [1, 1, 6]].map((counts) => ({ name: splitName(counts), p: fixedProblem(ctx.dtype, namedData(8), counts) })),
        async ({ name, p }, c) => {
          await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p), `${name} of the same 8 examples`);
        },
      );
      if (named.status !== 'pass') return named;
      return runProperty(
        ctx,
        fc.tuple(shardsArb({ dtype: ctx.dtype, axis: ctx.axis, maxReplicas: 6 }), fc.array(fc.nat({ max: 24 }), { minLength: 1, maxLength: 5 })),
        async ([p, cuts], c) => {
          const M = p.examples.length;
          for (const counts of [oneReplica(p), p.counts, splitOf(M, cuts)]) {
            await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p, counts), `${splitName(counts)} of the same ${M} examples`);
          }
        },
      );
    },
  },
  {
    family: FAMILY,
    name: 'uneven-shards',
    title: 'named uneven splits: a replica with one example and one with none, 1+0 (m = 1), 7+1, 0+4, 1+1+1+1',
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: (ctx) => {
      const cases: Array<{ name: string; p: SyncProblem }> = [
        { name: '1 + 0 + 3 (one example, none, the rest)', p: fixedProblem(ctx.dtype, namedData(4), [1, 0, 3]) },
        { name: '0 + 4 (the first replica empty)', p: fixedProblem(ctx.dtype, namedData(4), [0, 4]) },
        { name: '7 + 1', p: fixedProblem(ctx.dtype, namedData(8), [7, 1]) },
        { name: '1 + 1 + 1 + 1', p: fixedProblem(ctx.dtype, namedData(4), [1, 1, 1, 1]) },
        { name: '3 + 0 + 0 + 5', p: fixedProblem(ctx.dtype, namedData(8), [3, 0, 0, 5]) },
        { name: '1 + 0 (a global batch of one example)', p: fixedProblem(ctx.dtype, namedData(1), [1, 0]) },
      ];
      return runExamples(ctx, cases, async ({ name, p }, c) => {
        await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p), name);
      });
    },
  },
  {
    family: FAMILY,
    name: 'running-var-bessel',
    title: "the running variance's Bessel factor uses the global count m, not a replica's own",
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: (ctx) => {
      const cases = [
        [1, 1],
        [1, 2],
        [2, 3, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
      ].map((counts) => {
        const M = counts.reduce((a, b) => a + b, 0);
        // the momentum that takes the whole batch statistic, so the Bessel factor shows undamped
        const momentum = ctx.profile.momentum === 'decay' ? 0 : 1;
        return { name: `split [${counts.join('+')}]`, p: fixedProblem(ctx.dtype, namedData(M), counts, { momentum }), counts, M };
      });
      return runExamples(ctx, cases, async ({ name, p, M }, c) => {
        const req = syncTrainRequest(p);
        await syncAgree(c, 'forwardTrainSync', req, name).catch((e: unknown) => {
          if (e instanceof Mismatch && /runningVar/.test(e.message)) {
            const local = Math.max(...p.counts);
            throw new Mismatch(
              `${e.message}; the running variance takes the batch variance times the Bessel factor of the global m = ${M} (${runningVarFactor(c.profile, M).toPrecision(4)}), not a replica's (m = ${local}: ${runningVarFactor(c.profile, local).toPrecision(4)}); ${describeConvention(c.profile)}`,
              e.details,
            );
          }
          throw e;
        });
      });
    },
  },
  {
    family: FAMILY,
    name: 'backward',
    title: 'backwardSync with uneven counts equals the backward of single-device BN over the concatenation (dx per replica, global dgamma, dbeta)',
    needs: ['backwardSync'],
    dtypes: [...DTYPES],
    run: (ctx) =>
      runProperty(ctx, shardsArb({ dtype: ctx.dtype, axis: ctx.axis, maxReplicas: 8 }), async (p, c) => {
        await syncAgree(c, 'backwardSync', syncBackwardRequest(p), splitName(p.counts));
      }),
  },
  {
    family: FAMILY,
    name: 'replicas-agree',
    title: 'every replica holds identical running statistics (bit for bit: copies of one all-reduced value), and they are right',
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: (ctx) =>
      runProperty(ctx, shardsArb({ dtype: ctx.dtype, axis: ctx.axis, minReplicas: 2, maxReplicas: 8 }), async (p, c) => {
        const req = syncTrainRequest(p);
        if (!(p.examples.length === 1 && c.profile.singleValue === 'error')) {
          const got = await callSync(c, 'forwardTrainSync', req);
          const first = got.replicas[0]!;
          got.replicas.forEach((rep, r) => {
            for (const name of ['runningMean', 'runningVar'] as const) {
              const a = first[name]!;
              const b = rep[name]!;
              for (let k = 0; k < a.length; k++) {
                if (!Object.is(a[k], b[k])) {
                  throw new Mismatch(
                    `replicas[${r}].${name}[c=${k}] = ${b[k]} but replicas[0].${name}[c=${k}] = ${a[k]}: the replicas' running statistics diverge (each must hold the same all-reduced value); replica counts [${p.counts.join(', ')}]`,
                  );
                }
              }
            }
          });
        }
        await syncAgree(c, 'forwardTrainSync', req, splitName(p.counts));
      }),
  },
  {
    family: FAMILY,
    name: 'large-offset',
    title: '|mean| / std up to 2^20 with full-precision values: merging sums of squares fails, a Chan merge or a global two-pass passes',
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: (ctx) =>
      runProperty(ctx, shardsArb({ dtype: ctx.dtype, axis: ctx.axis, maxReplicas: 6, minLogRatio: 12, maxLogRatio: 20, fullPrecision: true }), async (p, c) => {
        await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p), `${splitName(p.counts)} at |mean| ~ 2^${Math.round(Math.log2(Math.abs(p.examples[0]![0]!) + 1))}`);
      }),
  },
  {
    family: FAMILY,
    name: 'replica-count',
    title: 'R = 1 to 16 replicas over the same 30 examples all equal single-device BN over them',
    needs: ['forwardTrainSync'],
    axes: 'one',
    dtypes: [...DTYPES],
    run: (ctx) => {
      const M = 30;
      const data = Array.from({ length: M }, (_, k) => [((k * 7) % 11) - 5 + (k % 4) * 100, (k % 5) / 4, 1000 + ((k * 3) % 8)]);
      const cases = Array.from({ length: 16 }, (_, i) => {
        const R = i + 1;
        // uneven on purpose: replica r gets floor((r + 1) M / R) - floor(r M / R) examples
        const counts = Array.from({ length: R }, (_, r) => Math.floor(((r + 1) * M) / R) - Math.floor((r * M) / R));
        return { name: `R = ${R} [${counts.join('+')}]`, p: fixedProblem(ctx.dtype, data, counts) };
      });
      return runExamples(ctx, cases, async ({ name, p }, c) => {
        await syncAgree(c, 'forwardTrainSync', syncTrainRequest(p), name);
      });
    },
  },
];
