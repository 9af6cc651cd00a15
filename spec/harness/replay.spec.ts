/**
 * Replays replay (issue 21): for one check of every property family, a kernel with a bug fails
 * it; the replay line the report prints (`--only '<id>' --seed S --replay 'path'`) is parsed and
 * run again through runConformance: the broken kernel fails with the same message and
 * counterexample, the fixed one passes. Also: a call that times out ends the property (the
 * counterexample is the input that timed out, and its replay times out again), and the
 * invariance checks compare something on every run (their preconditions are generated).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { BatchNormImplementation, DType, ForwardTrainRequest } from '../../src/contract/contract.js';
import { layoutOf } from '../../src/contract/layout.js';
import { profiles } from '../../src/contract/profiles.js';
import { runConformance } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';
import { invarianceRuns } from '../../src/checks/invariance.js';
import { problemArb } from '../../src/arbitraries/problem.js';
import { mutant, type Bug } from '../gallery/mutants.js';
import { syncMutant } from '../gallery/sync-mutants.js';

const SEED = 20261125;

/** The coordinates a printed replay line names. */
function parseReplayLine(line: string): { id: string; seed: number; replayPath?: string } {
  const m = /^--only '([^']+)' --seed (-?\d+)(?: --replay '([^']+)')?$/.exec(line);
  if (!m) throw new Error(`not a replay line: ${line}`);
  return { id: m[1]!, seed: Number(m[2]), ...(m[3] ? { replayPath: m[3] } : {}) };
}

type Case = { family: string; id: string; broken: () => BatchNormImplementation; fixed: () => BatchNormImplementation; runs?: number };
const plain = (bug: Bug, profile: keyof typeof profiles, id: string, runs?: number): Case => ({
  family: id.split(':')[1]!,
  id,
  broken: () => mutant(profiles[profile], bug),
  fixed: () => createReference(profile),
  ...(runs ? { runs } : {}),
});

const CASES: Case[] = [
  plain('eps-ignored', 'keras', 'bn:normalization:variance:dtype=float32;axis=first'),
  plain('stats-over-all-channels', 'keras', 'bn:invariance:channel-independence:dtype=float32;axis=first'),
  plain('stats-over-batch-axis-only', 'onnx', 'bn:consistency:batch-statistics:dtype=float32;axis=first'),
  // model-based (fc.commands): the replay line carries the commands' replayPath too
  plain('momentum-inverted', 'pytorch', 'bn:running-stats:closed-form:dtype=float32;axis=first'),
  plain('backward-missing-statistics-terms', 'keras', 'bn:gradients:analytic-training:dtype=float32;axis=first'),
  plain('eps-outside-root', 'keras', 'bn:agreement:forward-train:dtype=float32;axis=first'),
  plain('mutates-input', 'keras', 'bn:hygiene:inputs-unchanged:dtype=float32;axis=first'),
  // examples, not a property: the line has no --replay and replays all the same
  plain('running-var-nan-at-m1', 'tensorflow-fused', 'bn:edge:m1:dtype=float32;axis=first'),
  {
    family: 'sync',
    id: 'bn:sync:backward:dtype=float32;axis=first',
    broken: () => syncMutant(profiles.pytorch, 'backward-local-reduction'),
    fixed: () => syncMutant(profiles.pytorch, 'none'),
  },
  // axis last: the sizes up to m = 14641 (the million-value one runs on the first variant only)
  plain('chunked-merge-drops-tail', 'pytorch', 'bn:scale:forward-train:dtype=float32;axis=last', 1),
];

describe('every printed replay line reproduces its failure, and passes on a fixed kernel', () => {
  for (const c of CASES) {
    it(`${c.family}: ${c.id}`, async () => {
      const runs = c.runs ?? 10;
      const first = await runConformance(c.broken(), { seed: SEED, runs, golden: false, only: [c.id] });
      const failed = first.results.find((r) => r.status === 'fail');
      expect(failed, `${c.id} should fail on the broken kernel`).toBeDefined();
      const f = failed!.failure!;
      const coords = parseReplayLine(f.replay!);
      expect(coords.id).toBe(c.id);
      if (c.family !== 'edge') expect(coords.replayPath, 'a property failure names its path').toBeTruthy();
      if (c.family === 'running-stats') expect(coords.replayPath).toMatch(/;commands=/);
      const replay = { only: [coords.id], seed: coords.seed, runs, golden: false, ...(coords.replayPath ? { replayPath: coords.replayPath } : {}) };

      const again = await runConformance(c.broken(), replay);
      const r = again.results.find((x) => x.id === c.id)!;
      expect(r.status, r.failure?.message).toBe('fail');
      expect(r.failure!.message).toBe(f.message);
      expect(r.failure!.counterexample).toEqual(f.counterexample);
      // the replay's own line is the same line: replaying it again replays the same thing
      expect(r.failure!.replay).toBe(f.replay);

      const fixed = await runConformance(c.fixed(), replay);
      expect(fixed.results.find((x) => x.id === c.id)?.status).toBe('pass');
    });
  }
});

describe('a timeout ends the property: the counterexample is the input that timed out', () => {
  const ID = 'bn:agreement:forward-train:dtype=float32;axis=first';
  /** The reference, except that forwardTrain never settles for m > 8; counts the calls that hung. */
  const hangsAboveM8 = () => {
    const ref = createReference('keras');
    const state = { hung: 0 };
    const impl: BatchNormImplementation = {
      ...ref,
      name: 'hangs-above-m8',
      dtypes: ['float32'],
      precisions: [{ dtype: 'float32', paramDtype: 'float32' }],
      axes: 'first',
      forwardTrain(req: ForwardTrainRequest) {
        if (layoutOf(req.shape, req.axis).m > 8) {
          state.hung++;
          return new Promise(() => undefined);
        }
        return ref.forwardTrain!(req);
      },
    };
    return { impl, state };
  };

  it('one call times out, nothing is shrunk past it, and the printed replay times out again', async () => {
    const first = hangsAboveM8();
    const report = await runConformance(first.impl, { seed: SEED, runs: 25, golden: false, only: [ID], timeoutMs: 150 });
    const f = report.results[0]!.failure!;
    expect(f.fault).toBe('timeout');
    // shrinking would have timed out again on every smaller input with m > 8 (and given up after
    // five, then shrunk to an input that does not hang): the property stopped at the first
    expect(first.state.hung).toBe(1);
    const shape = f.counterexample!.shape!;
    expect(layoutOf(shape, f.counterexample!.axis!).m).toBeGreaterThan(8);

    const coords = parseReplayLine(f.replay!);
    const again = hangsAboveM8();
    const replay = await runConformance(again.impl, { only: [coords.id], seed: coords.seed, replayPath: coords.replayPath!, runs: 25, golden: false, timeoutMs: 150 });
    const r = replay.results[0]!;
    expect(r.failure?.fault).toBe('timeout');
    expect(r.failure!.counterexample).toEqual(f.counterexample);
    expect(again.state.hung).toBe(1);
  });
});

describe('the invariance checks compare something on every run', () => {
  // (float64 generates like float32, only wider)
  const dtypes: Array<{ dtype: DType; paramDtype?: DType }> = [{ dtype: 'float32' }, { dtype: 'float16' }, { dtype: 'bfloat16' }, { dtype: 'float16', paramDtype: 'float32' }];
  it('no precondition misses (shift, scale, batch-permutation, channel-independence), every dtype and axis', async () => {
    for (const k of Object.keys(invarianceRuns)) delete invarianceRuns[k];
    const precisions = dtypes.map((d) => ({ dtype: d.dtype, paramDtype: d.paramDtype ?? d.dtype }));
    const report = await runConformance(createReference('keras', { precisions }), { seed: SEED, runs: 10, golden: false, only: ['bn:invariance'] });
    expect(report.ok).toBe(true);
    for (const name of ['shift', 'scale', 'batch-permutation', 'channel-independence', 'layout']) {
      const t = invarianceRuns[name];
      expect(t?.compared, name).toBeGreaterThan(0);
      expect(t?.missed, name).toBe(0);
    }
  }, 120_000);

  it('minBatch and minChannels hold on every generated problem, large half ones included', () => {
    for (const { dtype } of dtypes) {
      for (const axis of ['first', 'last', 'other'] as const) {
        const arb = problemArb({ dtype, axis, minBatch: 2, minChannels: 2, largeM: true });
        for (const p of fc.sample(arb, { seed: SEED, numRuns: 100 })) {
          expect(p.shape[p.axis], `${dtype} ${axis} channels`).toBeGreaterThanOrEqual(2);
          expect(p.shape[p.axis === 0 ? 1 : 0], `${dtype} ${axis} batch`).toBeGreaterThanOrEqual(2);
        }
      }
    }
  });
});
