/**
 * Auditable verdicts (issue 11, item 5) and ownership of results (item 4), in process:
 * the declaration is validated with named errors, the accumulation every bound assumes is in
 * every report format, a case lacking any op it needs is "not supported", a check that calls an
 * op it did not declare is caught, and a failure record carries every request of its case.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript
import { createPlainBatchNorm } from '../../examples/plain-bn.mjs';
import type { BatchNormImplementation, Profile } from '../../src/contract/contract.js';
import { AccumulationError, NoMatchError, ProfileError } from '../../src/contract/errors.js';
import { formatJunit, formatText } from '../../src/harness/format.js';
import { closestIds, idMatcher } from '../../src/harness/filters.js';
import { runConformance } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';
import { formatHtml } from '../../src/teach/html.js';
import type { CheckSpec } from '../../src/checks/spec.js';
import { trainRequest, problemArb } from '../../src/arbitraries/problem.js';
import { runProperty, Mismatch } from '../../src/harness/check.js';

const plain = (over: Record<string, unknown> = {}) => ({ ...createPlainBatchNorm('keras'), dtypes: ['float32'], axes: 'first', ...over }) as BatchNormImplementation;
const quick = { runs: 2, seed: 1, golden: false, only: ['bn:agreement:forward-train'] };

describe('the declaration is validated with named errors, at every door', () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown order', { dtype: 'float64', order: 'sequental' }, /accumulation\.order must be one of sequential, pairwise, tiled, updates, got "sequental"/],
    ['an unknown dtype', { dtype: 'float128', order: 'sequential' }, /accumulation\.dtype must be one of float32, float64, float16, bfloat16, got "float128"/],
    ['tiled without a tile', { dtype: 'float32', order: 'tiled' }, /tile must be a positive integer with order 'tiled', got nothing/],
    ['a fractional tile', { dtype: 'float32', order: 'tiled', tile: 2.5 }, /tile must be a positive integer/],
    ['a tile without tiling', { dtype: 'float32', order: 'pairwise', tile: 64 }, /tile is only meaningful with order 'tiled'/],
    ['an unknown key', { dtype: 'float32', order: 'sequential', subnormal: 'gradual' }, /unknown key\(s\) "subnormal"/],
    ['bad subnormals', { dtype: 'float32', order: 'sequential', subnormals: 'ftz' }, /subnormals must be one of gradual, flush-to-zero/],
    ['a map with an unknown key', { float32: { dtype: 'float64', order: 'sequential' }, f64: {} }, /unknown key "f64"/],
    ['a map entry for an undeclared dtype', { float64: { dtype: 'float64', order: 'sequential' } }, /accumulation\.float64 is given, but dtypes \[float32\] does not declare float64/],
    ['a map entry with a bad order', { float32: { dtype: 'float64', order: 'random' } }, /accumulation\.float32\.order must be one of/],
    ['an unknown all-reduce (sync)', { dtype: 'float32', order: 'sequential', allReduce: 'star' }, /accumulation\.allReduce must be one of tree, ring, sequential, got "star"/],
  ];
  for (const [what, accumulation, message] of bad) {
    it(`accumulation with ${what}: AccumulationError`, async () => {
      const err = await runConformance(plain({ accumulation }), quick).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AccumulationError);
      expect((err as Error).message).toMatch(message);
    });
  }
  it('valid forms pass: one AccumulationInfo, a per-dtype map, tiled with a tile', async () => {
    for (const accumulation of [
      { dtype: 'float64', order: 'sequential' },
      { float32: { dtype: 'float32', order: 'tiled', tile: 64, subnormals: 'flush-to-zero' } },
      { dtype: 'float64', order: 'pairwise', allReduce: 'tree' }, // sync's field (issue 13)
    ]) {
      const r = await runConformance(plain({ accumulation }), quick);
      expect(r.ok).toBe(true);
    }
  });
  it('profile: an unknown name, an incomplete object, an unknown field: ProfileError', async () => {
    const incomplete = { name: 'mine', momentum: 'decay', runningVar: 'biased', defaultEps: 1e-3 } as unknown as Profile;
    const typo = { name: 'mine', momentum: 'decay', runningVar: 'biased', defaultEps: 1e-3, defaultMomentum: 0.9, singleValue: 'allowed', minEpsilon: 1e-5 } as unknown as Profile;
    for (const [profile, message] of [
      ['kears', /unknown profile "kears"/],
      ['toString', /unknown profile "toString"/],
      [incomplete, /defaultMomentum must be finite; singleValue must be/],
      [typo, /unknown field\(s\) "minEpsilon"/],
    ] as const) {
      const err = await runConformance(plain({ profile }), quick).catch((e: unknown) => e);
      expect(err, String(profile)).toBeInstanceOf(ProfileError);
      expect((err as Error).message).toMatch(message);
    }
    // --profile is validated too, and the implementation's own claim even when --profile overrides it
    await expect(runConformance(plain(), { ...quick, profile: incomplete })).rejects.toBeInstanceOf(ProfileError);
    await expect(runConformance(plain({ profile: 'kears' }), { ...quick, profile: 'keras' })).rejects.toBeInstanceOf(ProfileError);
  });
});

describe('the accumulation every bound assumes is in every report format', () => {
  it('JSON record, text header, JUnit property, HTML', async () => {
    const declared = await runConformance(plain({ accumulation: { dtype: 'float64', order: 'pairwise' } }), quick);
    expect(declared.implementation.accumulation).toEqual({ float32: { dtype: 'float64', order: 'pairwise', declared: true, description: 'float64 pairwise sums' } });
    expect(formatText(declared)).toContain('accumulation (sets every bound): float32: float64 pairwise sums\n');
    expect(formatJunit(declared)).toContain('<property name="accumulation.float32" value="float64 pairwise sums"/>');
    expect(formatHtml(declared)).toContain('<td id="accumulation">float32: float64 pairwise sums</td>');
    const assumed = await runConformance(plain({ accumulation: undefined }), quick);
    expect(assumed.implementation.accumulation?.float32).toMatchObject({ dtype: 'float32', order: 'sequential', declared: false });
    expect(formatText(assumed)).toContain('float32: float32 sequential sums (not declared: assumed)');
  });
});

describe('"not supported" whenever any op a case needs is missing', () => {
  it('a forward-only kernel does not pass tensorflow-fused golden fixtures whose backward never ran', async () => {
    const impl = { ...createPlainBatchNorm('tensorflow-fused'), name: 'forward-only', backward: undefined } as BatchNormImplementation;
    // (with one check that runs: a run in which every check is not supported is a usage error)
    const r = await runConformance(impl, { runs: 1, seed: 1, only: ['bn:golden:*', 'bn:agreement:forward-infer:dtype=float32;axis=first'] });
    const golden = r.results.filter((x) => x.family === 'golden');
    expect(golden.length).toBeGreaterThan(10);
    // every fixture with a backward step is not supported; only forward-only fixtures may pass
    const withBackward = golden.filter((x) => x.status === 'not-supported');
    expect(withBackward.length).toBeGreaterThan(0);
    for (const x of withBackward) expect(x.reason).toBe('needs backward, which forward-only does not implement');
    expect(golden.filter((x) => x.status === 'fail')).toEqual([]);
  });
  it('a check that calls an op it did not declare fails with an internal error, never passes', async () => {
    const sneaky: CheckSpec = {
      family: 'selftest',
      name: 'undeclared-op',
      title: 'declares forwardTrain, calls forwardInfer',
      needs: ['forwardTrain'],
      axes: 'one',
      run: (ctx) => runProperty(ctx, problemArb({ dtype: ctx.dtype, axis: ctx.axis }), async (p, c) => void (await c.call('forwardInfer', trainRequest(p)))),
    };
    const r = await runConformance(plain(), { runs: 1, seed: 1, golden: false, only: ['bn:selftest'], extraChecks: [sneaky] });
    expect(r.results).toHaveLength(1);
    expect(r.results[0]!.status).toBe('fail');
    expect(r.results[0]!.failure?.message).toMatch(/internal error \(a bug in bn-conformance.*called forwardInfer, which it does not declare \(needs: \[forwardTrain\]/);
  });
  it('a check that calls a synchronized op it did not declare fails with an internal error too', async () => {
    const sneaky: CheckSpec = {
      family: 'selftest',
      name: 'undeclared-sync-op',
      title: 'declares forwardTrain, calls backwardSync',
      needs: ['forwardTrain'],
      axes: 'one',
      run: async (ctx) => {
        await ctx.callSync!('backwardSync', { shards: [], axis: 1, gamma: new Float32Array(1), eps: 1e-3, dtype: 'float32', paramDtype: 'float32' } as never);
        return { status: 'pass' };
      },
    };
    const r = await runConformance(createReference('keras'), { runs: 1, seed: 1, golden: false, only: ['bn:selftest'], extraChecks: [sneaky] });
    expect(r.results.length).toBeGreaterThan(0);
    for (const x of r.results) {
      expect(x.status).toBe('fail');
      expect(x.failure?.message).toMatch(/called backwardSync, which it does not declare \(needs: \[forwardTrain\]/);
    }
  });
});

describe('a failure record carries every request of its case', () => {
  it('a two-call check shows both requests (JSON, text, HTML)', async () => {
    const twoCalls: CheckSpec = {
      family: 'selftest',
      name: 'two-calls',
      title: 'calls forwardTrain twice, then fails',
      needs: ['forwardTrain'],
      axes: 'one',
      run: (ctx) =>
        runProperty(ctx, problemArb({ dtype: ctx.dtype, axis: ctx.axis }), async (p, c) => {
          await c.call('forwardTrain', trainRequest(p));
          await c.call('forwardTrain', trainRequest(p, { eps: 0.5 }));
          throw new Mismatch('always fails after two calls');
        }),
    };
    const r = await runConformance(plain(), { runs: 1, seed: 1, golden: false, only: ['bn:selftest'], extraChecks: [twoCalls] });
    const cx = r.results[0]!.failure!.counterexample!;
    expect(cx.requests?.map((q) => [q.op, q.request.eps])).toEqual([
      ['forwardTrain', cx.requests![0]!.request.eps],
      ['forwardTrain', 0.5],
    ]);
    expect(cx.requests![0]!.request.eps).not.toBe(0.5);
    const text = formatText(r);
    expect(text).toContain('request 1 of 2 (forwardTrain): {');
    expect(text).toContain('request 2 of 2 (forwardTrain): {');
    expect(formatHtml(r)).toContain('request 2 of 2 (forwardTrain)');
  });
});

describe('ID filters', () => {
  const ids = ['bn:edge:m1:dtype=float32;axis=first', 'bn:edge:m1:dtype=float32;axis=last', 'bn:edge:m1:dtype=float16;params=float32;axis=first', 'bn:edge:m2:dtype=float32;axis=first', 'bn:edge:m10:dtype=float32;axis=first'];
  it('a pattern without * continues at a ":" or ";" boundary, never inside a name', () => {
    expect(ids.filter(idMatcher('bn:edge:m1:dtype=float32'))).toEqual(ids.slice(0, 2));
    expect(ids.filter(idMatcher('bn:edge:m1'))).toEqual(ids.slice(0, 3));
    expect(ids.filter(idMatcher('bn:edge:m1:dtype=float16'))).toEqual([ids[2]]);
    expect(ids.filter(idMatcher('bn:edge:m'))).toEqual([]);
    expect(ids.filter(idMatcher('bn:edge:m1:dtype=float3'))).toEqual([]);
    expect(ids.filter(idMatcher('bn:edge:m*;axis=first'))).toEqual([ids[0], ids[2], ids[3], ids[4]]);
  });
  it('closest IDs at the pattern\'s own granularity', () => {
    expect(closestIds('bn:edge:m3', ids)).toEqual(['bn:edge:m1', 'bn:edge:m2', 'bn:edge:m10']);
  });
  it('--only or --skip matching nothing is a NoMatchError naming the pattern and the closest IDs', async () => {
    await expect(runConformance(plain(), { ...quick, only: ['bn:agreement:forward-trian'] })).rejects.toThrow(NoMatchError);
    await expect(runConformance(plain(), { ...quick, only: ['bn:agreement:forward-trian'] })).rejects.toThrow(
      /--only 'bn:agreement:forward-trian' matches no check of this implementation; closest: bn:agreement:forward-train/,
    );
    await expect(runConformance(plain(), { ...quick, skip: ['bn:edge:m1:dtype=float64'] })).rejects.toThrow(/--skip 'bn:edge:m1:dtype=float64' matches no check/);
  });
});
