/**
 * The normalization family through every door: the same guarded call (time limit, input-mutation
 * guard, result validation with the family's lengths and optional outputs) in process, in the
 * isolation worker and over --exec, and each door's describe lists the family's ops. The module is
 * spec/fixtures/family/layer-norm.mjs (plain JS, float64 two-pass); the exec child serves it.
 */
import { describe, expect, it } from 'vitest';
import type { Arr, BatchNormImplementation, FamilyOp, FamilyRequest } from '../../src/contract/contract.js';
import { FAMILY_OPS } from '../../src/contract/contract.js';
import { validateImplementation } from '../../src/contract/declaration.js';
import { toContractRequest, toNumbers } from '../../src/contract/dtypes.js';
import { profiles } from '../../src/contract/profiles.js';
import { callImplementation, ContractFault, supportedFamilyOps, supportedOps } from '../../src/harness/call.js';
import { createExecImplementation } from '../../src/harness/exec.js';
import { createIsolatedImplementation } from '../../src/harness/isolate.js';
import { decodeMessage, encodeMessage } from '../../src/harness/browser/wire.js';
import { mulberry32 } from '../../src/numerics/random.js';
import { ulpDistanceF32 } from '../../src/numerics/ulp.js';
import { referenceFamily } from '../../src/reference/family.js';
import { createReference } from '../../src/reference/reference.js';
// @ts-expect-error plain JavaScript fixture
import tiny from '../fixtures/family/layer-norm.mjs';

const MODULE = 'spec/fixtures/family/layer-norm.mjs';
const rng = mulberry32(23);
const shape = [3, 2, 5];
const numel = 30;
const f32 = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
/** Well-conditioned rows (|mean| / std ~ 2): a float64 two-pass kernel is within 1e-12 of exact, far below ulp(float32). */
const x = f32(numel, () => 3 + 2 * rng() - 1);
const dy = f32(numel, () => 2 * rng() - 1);
const gamma = f32(10, () => 0.5 + rng());
const beta = f32(10, () => rng() - 0.5);
const lnReq = (): FamilyRequest => ({ x: x.slice(), shape: [...shape], axis: 1, gamma: gamma.slice(), beta: beta.slice(), eps: 1e-3 });
const lnBackReq = (): FamilyRequest => ({ x: x.slice(), dy: dy.slice(), shape: [...shape], axis: 1, gamma: gamma.slice(), eps: 1e-3 });
const opts = { timeoutMs: 20_000 };

const bits = (a: ArrayLike<number>) => Array.from(a);

describe('the family through every door', () => {
  it('in process, the isolation worker and --exec return the module\'s results, validated, bit for bit; describe lists the family ops', async () => {
    const isolated = await createIsolatedImplementation(MODULE, opts);
    const exec = await createExecImplementation(`node ${new URL('../fixtures/family/exec-server.mjs', import.meta.url).pathname}`, opts);
    try {
      const direct = tiny as BatchNormImplementation;
      expect(supportedFamilyOps(direct)).toEqual(['layerNorm', 'layerNormBackward']);
      expect(supportedOps(direct)).toEqual([]);
      for (const door of [isolated, exec]) expect(supportedFamilyOps(door), door.name).toEqual(['layerNorm', 'layerNormBackward']);
      const results: Array<Record<string, Record<string, Arr>>> = [];
      for (const impl of [direct, isolated, exec]) {
        const fwd = await callImplementation(impl, 'layerNorm', lnReq(), 'float32', opts);
        const back = await callImplementation(impl, 'layerNormBackward', lnBackReq(), 'float32', opts);
        // lengths: y, dx numel; mean and invStdDev one per group (3 rows); dgamma, dbeta one per position (10)
        expect([fwd.y!.length, fwd.mean!.length, fwd.invStdDev!.length, back.dx!.length, back.dgamma!.length, back.dbeta!.length]).toEqual([30, 3, 3, 30, 10, 10]);
        results.push({ fwd, back });
      }
      for (const r of results.slice(1)) {
        for (const k of ['y', 'mean', 'invStdDev']) expect(bits(r.fwd![k]!), k).toEqual(bits(results[0]!.fwd![k]!));
        for (const k of ['dx', 'dgamma', 'dbeta']) expect(bits(r.back![k]!), k).toEqual(bits(results[0]!.back![k]!));
      }
      // and they are LayerNorm's: each output within 1 ulp(float32) of the reference's (both are
      // float64 computations far more accurate than float32, each rounded once: they can differ
      // only by a rounding that lands on opposite sides of one float32 midpoint)
      const ref = referenceFamily(profiles.keras, 'layerNorm', lnReq()) as unknown as Record<string, Arr>;
      const refB = referenceFamily(profiles.keras, 'layerNormBackward', lnBackReq()) as unknown as Record<string, Arr>;
      for (const [got, want] of [
        [results[0]!.fwd!, ref],
        [results[0]!.back!, refB],
      ] as const) {
        for (const [k, v] of Object.entries(want)) Array.from(v).forEach((e, i) => expect(ulpDistanceF32(got[k]![i]!, e), `${k}[${i}]`).toBeLessThanOrEqual(1));
      }
    } finally {
      await isolated.close();
      await exec.close();
    }
  });

  it('input-mutated in process and in the worker, with the same words', async () => {
    // @ts-expect-error plain JavaScript fixture
    const direct = (await import('../fixtures/family/layer-norm-mutates.mjs')).default as BatchNormImplementation;
    const isolated = await createIsolatedImplementation('spec/fixtures/family/layer-norm-mutates.mjs', opts);
    try {
      const messages: string[] = [];
      for (const impl of [direct, isolated]) {
        const e = (await callImplementation(impl, 'layerNorm', lnReq(), 'float32', opts).catch((err: unknown) => err)) as ContractFault;
        expect(e).toBeInstanceOf(ContractFault);
        expect(e.fault).toBe('input-mutated');
        messages.push(e.message);
      }
      expect(messages[0]).toMatch(/layerNorm modified its input gamma \(byte \d+\)/);
      expect(messages[1]).toBe(messages[0]);
    } finally {
      await isolated.close();
    }
  });

  it('the family\'s results are validated: lengths per group and per parameter, dtypes, required and optional outputs', async () => {
    const ok = tiny as Required<Pick<BatchNormImplementation, 'layerNorm' | 'layerNormBackward'>>;
    const variant = (over: Partial<BatchNormImplementation>) => ({ ...(tiny as BatchNormImplementation), ...over });
    const fault = async (impl: BatchNormImplementation, op: FamilyOp, req: FamilyRequest) =>
      ((await callImplementation(impl, op, req, 'float32', opts).catch((e: unknown) => e)) as ContractFault);
    const cases: Array<[string, BatchNormImplementation, FamilyOp, RegExp]> = [
      ['mean one per element', variant({ layerNorm: (r) => ({ ...(ok.layerNorm(r) as object), mean: new Float32Array(30) }) as never }), 'layerNorm', /wrong-length: layerNorm result "mean" has length 30, expected 3/],
      ['invStdDev in float64', variant({ layerNorm: (r) => ({ ...(ok.layerNorm(r) as object), invStdDev: new Float64Array(3) }) as never }), 'layerNorm', /wrong-dtype: layerNorm result "invStdDev" is Float64Array, expected Float32Array \(the request's paramDtype\)/],
      ['no y', variant({ layerNorm: () => ({ mean: new Float32Array(3) }) as never }), 'layerNorm', /missing-output: layerNorm result has no "y"/],
      ['mean null', variant({ layerNorm: (r) => ({ ...(ok.layerNorm(r) as object), mean: null }) as never }), 'layerNorm', /not-a-typed-array: layerNorm result "mean" is null/],
      ['dgamma one per row', variant({ layerNormBackward: (r) => ({ ...(ok.layerNormBackward(r) as object), dgamma: new Float32Array(3) }) as never }), 'layerNormBackward', /wrong-length: layerNormBackward result "dgamma" has length 3, expected 10/],
      ['no dbeta', variant({ layerNormBackward: (r) => ({ dx: (ok.layerNormBackward(r) as { dx: Arr }).dx, dgamma: new Float32Array(10) }) as never }), 'layerNormBackward', /missing-output: layerNormBackward result has no "dbeta"/],
    ];
    for (const [what, impl, op, message] of cases) {
      const e = await fault(impl, op, op === 'layerNorm' ? lnReq() : lnBackReq());
      expect(e, what).toBeInstanceOf(ContractFault);
      expect(e.message, what).toMatch(message);
    }
    // optional outputs may be left out (or undefined); rmsNormBackward has no dbeta to return
    const bare = variant({ layerNorm: (r) => ({ y: (ok.layerNorm(r) as { y: Arr }).y, mean: undefined }) as never });
    expect(Object.keys(await callImplementation(bare, 'layerNorm', lnReq(), 'float32', opts)).filter((k) => k !== 'mean')).toEqual(['y']);
    const rms = createReference(profiles.keras);
    const got = await callImplementation(rms, 'rmsNormBackward', lnBackReq(), 'float32', opts);
    expect(Object.keys(got).sort()).toEqual(['dgamma', 'dx']);
  });

  it('a synchronous busy loop in a family op is a timeout in process, and the run goes on', async () => {
    const impl = { ...(tiny as BatchNormImplementation), layerNorm: () => { for (;;); } } as BatchNormImplementation;
    const e = (await callImplementation(impl, 'layerNorm', lnReq(), 'float32', { timeoutMs: 200 }).catch((err: unknown) => err)) as ContractFault;
    expect(e.fault).toBe('timeout');
    expect((await callImplementation(impl, 'layerNormBackward', lnBackReq(), 'float32', { timeoutMs: 5000 })).dx!.length).toBe(30);
  });

  it('half precision: requests sent as bit patterns, results validated as Uint16Array and decoded (the reference, groupNorm)', async () => {
    const ref = createReference(profiles.keras);
    const p = { dtype: 'float16' as const, paramDtype: 'float32' as const };
    const numeric = { x: Float64Array.from(x, (v) => Math.round(v * 64) / 64), shape: [3, 2, 5], axis: 1, groups: 2, gamma: Float64Array.of(1, 0.5), beta: Float64Array.of(0, 0.25), eps: 1e-3 };
    const got = await callImplementation(ref, 'groupNorm', numeric as FamilyRequest, p, opts);
    expect([got.y!.length, got.mean!.length, got.invStdDev!.length]).toEqual([30, 6, 6]);
    expect(got.y).toBeInstanceOf(Float64Array); // decoded from float16 bit patterns
    // the same request called directly, in its contract arrays: the door decoded exactly that
    const contract = referenceFamily(profiles.keras, 'groupNorm', toContractRequest(numeric as FamilyRequest, p)) as unknown as { y: Uint16Array; mean: Float32Array };
    expect(contract.y).toBeInstanceOf(Uint16Array);
    expect(bits(got.y!)).toEqual(bits(toNumbers(contract.y, 'float16')));
    expect(bits(got.mean!)).toEqual(bits(contract.mean));
  });

  it('the browser door\'s wire carries a family request and result as their bytes (the door itself is op-agnostic: page.ts offers every function)', () => {
    const req = { ...toContractRequest({ ...lnReq(), x: Float64Array.from(x, (v) => Math.round(v * 64) / 64) }, { dtype: 'float16', paramDtype: 'float32' }), groups: 2 };
    const back = decodeMessage(encodeMessage({ op: 'groupNorm', args: [req] })) as { op: string; args: Array<Record<string, unknown>> };
    expect(back.op).toBe('groupNorm');
    const r = back.args[0]!;
    expect(r.x).toBeInstanceOf(Uint16Array);
    expect(bits(r.x as Uint16Array)).toEqual(bits(req.x as unknown as Uint16Array));
    expect(bits(r.gamma as Float32Array)).toEqual(bits(req.gamma));
    expect([r.groups, r.axis, r.shape, r.dtype, r.paramDtype]).toEqual([2, 1, shape, 'float16', 'float32']);
    const result = decodeMessage(encodeMessage({ y: new Uint16Array(30), invStdDev: Float32Array.of(1, 2, 3), mean: undefined })) as Record<string, unknown>;
    expect(result.invStdDev).toBeInstanceOf(Float32Array);
    expect('mean' in result && result.mean === undefined).toBe(true);
  });

  it('the built-in reference implements every family op (createReference)', async () => {
    const { createBuiltin } = await import('../../src/harness/builtins.js');
    expect(supportedFamilyOps(await createBuiltin('reference', 'pytorch'))).toEqual([...FAMILY_OPS]);
  });

  it('a module with only family ops is a valid implementation (every door\'s declaration rules)', () => {
    expect(() => validateImplementation(tiny)).not.toThrow();
    expect(() => validateImplementation({ name: 'none', profile: 'keras', dtypes: ['float32'] })).toThrow(new RegExp(`implements none of .*${FAMILY_OPS.join(', ')}`));
  });
});
