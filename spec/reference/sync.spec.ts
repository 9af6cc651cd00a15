/**
 * The synchronized reference: the merge of per-replica (count, mean, M2) by Chan's update, with
 * double-double means, against the exact statistics of the concatenation and the 60-digit
 * oracle; the reference's sync ops against single-device BN over the concatenation; the guarded
 * call's named faults for nested results; the merged tolerance's structure.
 *
 * Claim (merge, float64): mean within 4 ulp of |mean| (double-double all the way, then one
 * rounding); variance within (4 + 4 d) ulp of |variance| for d merge levels: each local M2 is
 * channelStats' (<= 4 ulp, oracle.spec.ts), each merge adds delta^2 na nb / n (square, product,
 * quotient: 3u of a term <= M2) in a compensated sum (1u): <= 4u per level.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ForwardTrainSyncRequest } from '../../src/contract/contract.js';
import { BatchNormInputError } from '../../src/contract/errors.js';
import { ContractFault } from '../../src/harness/call.js';
import { callSyncImplementation } from '../../src/harness/call.js';
import { validateSyncRequest } from '../../src/contract/layout-sync.js';
import { mulberry32 } from '../../src/numerics/random.js';
import { ulp } from '../../src/numerics/ulp.js';
import { profiles } from '../../src/contract/profiles.js';
import { exactBig, oracleForwardTrain } from '../../src/reference/oracle.js';
import { createReference, referenceForwardTrain } from '../../src/reference/reference.js';
import { concatenatedRows } from '../../src/contract/layout-sync.js';
import { concatenatedStats, mergedStats } from '../../src/reference/sync.js';
import { allReduceDepth, syncTolerance, tolerance } from '../../src/judge/tolerance.js';

const RUNS = Number(process.env.BN_SYNC_RUNS ?? 150);

/** R shards of [n_r, C] with per-channel mean mu_c and spread sigma_c, |mu|/sigma up to 1e8. */
const shardsArb = fc
  .record({
    counts: fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 16 }),
    C: fc.integer({ min: 1, max: 3 }),
    logRatio: fc.integer({ min: 0, max: 8 }),
    seed: fc.nat(),
  })
  .map(({ counts, C, logRatio, seed }) => {
    if (counts.reduce((a, b) => a + b, 0) < 2) counts[0] = counts[0]! + 2;
    const rnd = mulberry32(seed);
    const mu = Array.from({ length: C }, () => (rnd() - 0.5) * 10 ** logRatio);
    const xs = counts.map((n) => Float64Array.from({ length: n * C }, (_, i) => mu[i % C]! + (rnd() - 0.5)));
    const req: ForwardTrainSyncRequest = {
      shards: counts.map((n, r) => ({ x: xs[r]!, shape: [n, C] })),
      axis: 1,
      gamma: new Float64Array(C).fill(1.5),
      beta: new Float64Array(C).fill(-0.25),
      eps: 1e-3,
      momentum: 0.9,
      runningMean: new Float64Array(C),
      runningVar: new Float64Array(C).fill(1),
      dtype: 'float64',
      paramDtype: 'float64',
    };
    return req;
  });

describe('Chan merge against the concatenation and the 60-digit oracle', () => {
  it(`mean within 4 ulp, variance within (4 + 4 d) ulp, over ${RUNS} splits (|mean|/std up to 1e8)`, () => {
    let worstVar = 0;
    fc.assert(
      fc.property(shardsArb, (req) => {
        const layout = validateSyncRequest('forwardTrainSync', req);
        const xs = req.shards.map((s) => s.x);
        const merged = mergedStats(xs, layout);
        const exact = concatenatedStats(xs, layout);
        const rows = concatenatedRows(xs, layout);
        const oracle = oracleForwardTrain(profiles.keras, { x: rows, shape: [layout.m, layout.channels], axis: 1, gamma: req.gamma, beta: req.beta, eps: req.eps, momentum: req.momentum, runningMean: req.runningMean, runningVar: req.runningVar });
        const d = Math.ceil(Math.log2(req.shards.length));
        for (let c = 0; c < layout.channels; c++) {
          const mean = merged.meanHi[c]!;
          const exactMean = oracle.mean[c]!;
          expect(exactBig(mean).minus(exactMean).abs().toNumber()).toBeLessThanOrEqual(4 * ulp(exactMean.toNumber()));
          const v = exactBig(merged.variance[c]!).minus(oracle.variance[c]!).abs().toNumber() / ulp(oracle.variance[c]!.toNumber());
          worstVar = Math.max(worstVar, v / (4 + 4 * d));
          expect(v).toBeLessThanOrEqual(4 + 4 * d);
          // the concatenation path is the proven single-device one: 4 ulp
          expect(exactBig(exact.variance[c]!).minus(oracle.variance[c]!).abs().toNumber()).toBeLessThanOrEqual(4 * ulp(oracle.variance[c]!.toNumber()));
        }
      }),
      { numRuns: RUNS, seed: 13 },
    );
    expect(worstVar).toBeLessThanOrEqual(1);
  });
});

describe('the reference sync ops', () => {
  it('forwardTrainSync equals forwardTrain over the concatenation, every replica with its own equal copy of the running statistics', () => {
    const ref = createReference('pytorch');
    fc.assert(
      fc.property(shardsArb, (req) => {
        const got = ref.forwardTrainSync!(req) as ReturnType<NonNullable<typeof ref.forwardTrainSync>> & { replicas: Array<{ y: Float64Array; runningMean: Float64Array; runningVar: Float64Array }> };
        const layout = validateSyncRequest('forwardTrainSync', req);
        const single = referenceForwardTrain(profiles.pytorch, { x: concatenatedRows(req.shards.map((s) => s.x), layout), shape: [layout.m, layout.channels], axis: 1, gamma: req.gamma, beta: req.beta, eps: req.eps, momentum: req.momentum, runningMean: req.runningMean, runningVar: req.runningVar });
        let row = 0;
        got.replicas.forEach((rep, r) => {
          if (r > 0) expect(rep.runningVar).not.toBe(got.replicas[0]!.runningVar);
          expect(Array.from(rep.runningVar)).toEqual(Array.from(got.replicas[0]!.runningVar));
          for (let c = 0; c < layout.channels; c++) expect(rep.runningVar[c]).toBeCloseTo(single.runningVar[c]!, 6);
          for (let k = 0; k < rep.y.length; k++) expect(Math.abs(rep.y[k]! - single.y[row * layout.channels + k]!)).toBeLessThanOrEqual(1e-6);
          row += req.shards[r]!.shape[0]!;
        });
      }),
      { numRuns: 30, seed: 5 },
    );
  });

  it('bad requests get named errors: empty global batch, mismatched C, wrong dtype, non-array shards', () => {
    const ref = createReference('keras');
    const base = fc.sample(shardsArb, { numRuns: 1, seed: 1 })[0]!;
    const empty = { ...base, shards: [{ x: new Float64Array(0), shape: [0, base.gamma.length] }] };
    expect(() => ref.forwardTrainSync!(empty)).toThrow(/global batch is empty/);
    const mismatch = { ...base, shards: [...base.shards, { x: new Float64Array(base.gamma.length + 1), shape: [1, base.gamma.length + 1] }] };
    expect(() => ref.forwardTrainSync!(mismatch)).toThrow(BatchNormInputError);
    expect(() => ref.forwardTrainSync!({ ...base, dtype: 'float32' })).toThrow(/dtype/);
    expect(() => ref.forwardTrainSync!({ ...base, shards: 'no' as never })).toThrow(/shards must be a non-empty array/);
    const one = { ...base, shards: [{ x: new Float64Array(base.gamma.length), shape: [1, base.gamma.length] }] };
    expect(() => createReference('pytorch').forwardTrainSync!(one)).toThrow(/more than 1 value/);
  });
});

describe('the guarded sync call names every broken rule', () => {
  const req = fc.sample(shardsArb, { numRuns: 1, seed: 2 })[0]!;
  const good = createReference('keras').forwardTrainSync!(req) as { replicas: Array<Record<string, Float64Array>>; mean: Float64Array; variance: Float64Array };
  const fault = async (result: unknown, mutate?: (r: ForwardTrainSyncRequest) => void) => {
    const impl = { name: 'x', profile: 'keras' as const, dtypes: ['float64' as const], forwardTrainSync: (r: ForwardTrainSyncRequest) => (mutate?.(r), result) as never };
    try {
      await callSyncImplementation(impl, 'forwardTrainSync', req, { timeoutMs: 1000 });
    } catch (e) {
      expect(e).toBeInstanceOf(ContractFault);
      return (e as ContractFault).fault;
    }
    return 'none';
  };
  it('missing replicas, wrong count, wrong length, wrong dtype, plain arrays, mutated shards', async () => {
    expect(await fault({ ...good, replicas: undefined })).toBe('missing-output');
    expect(await fault({ ...good, replicas: good.replicas.slice(1).concat(good.replicas.length === 1 ? [] : []) })).toBe('wrong-length');
    expect(await fault({ ...good, replicas: good.replicas.map((r) => ({ ...r, runningVar: r.runningVar!.subarray(1) })) })).toBe('wrong-length');
    expect(await fault({ ...good, mean: Float32Array.from(good.mean) })).toBe('wrong-dtype');
    expect(await fault({ ...good, replicas: good.replicas.map((r) => ({ ...r, y: Array.from(r.y!) })) })).toBe('not-a-typed-array');
    expect(await fault({ ...good, replicas: good.replicas.map(({ runningMean: _, ...r }) => r) })).toBe('missing-output');
    expect(await fault(good, (r) => (r.shards[r.shards.length - 1]!.x[0]! += 1))).toBe('input-mutated');
    expect(await fault(good)).toBe('none');
  });
  it('validated results are copies (an implementation may reuse its buffers)', async () => {
    const impl = { name: 'x', profile: 'keras' as const, dtypes: ['float64' as const], forwardTrainSync: () => good as never };
    const got = await callSyncImplementation(impl, 'forwardTrainSync', req, { timeoutMs: 1000 });
    expect(got.mean).not.toBe(good.mean);
    expect(Array.from(got.mean as Float64Array)).toEqual(Array.from(good.mean));
  });
});

describe('the merged tolerance', () => {
  it('all-reduce depth: tree ceil(log2 R), ring and sequential R - 1, and 0 for one replica', () => {
    expect([1, 2, 3, 8, 9, 16].map((R) => allReduceDepth(R, { dtype: 'float32', order: 'sequential', allReduce: 'tree' }))).toEqual([0, 1, 2, 3, 4, 4]);
    expect(allReduceDepth(16, { dtype: 'float32', order: 'sequential', allReduce: 'ring' })).toBe(15);
    expect(allReduceDepth(16, { dtype: 'float32', order: 'sequential' })).toBe(15);
  });
  it('one replica is never tighter than single-device, and more replicas never tighter than fewer', () => {
    const f = { m: 64, mean: 3e3, variance: 2, eps: 1e-3, absMean: 3e3, maxDev: 4, gamma: 1, training: true };
    const input = { dtype: 'float32' as const, accumulation: { dtype: 'float32' as const, order: 'sequential' as const } };
    const single = tolerance(input, f);
    const one = syncTolerance(input, f, { replicas: 1, maxLocalM: 64, maxReplicaAbsMean: 3e3 });
    expect(one.mean).toBeGreaterThanOrEqual(single.mean);
    expect(one.variance).toBeGreaterThanOrEqual(single.variance);
    const eight = syncTolerance(input, f, { replicas: 8, maxLocalM: 8, maxReplicaAbsMean: 3e3 });
    const sixteen = syncTolerance(input, f, { replicas: 16, maxLocalM: 8, maxReplicaAbsMean: 3e3 });
    expect(sixteen.variance).toBeGreaterThan(eight.variance);
    expect(sixteen.reason).toMatch(/merged over 16 replicas \(sequential all-reduce, depth 15/);
  });
});
