/**
 * What the in-process doors guarantee about time (src/harness/call.ts, the vm watchdog), and
 * what only the isolation worker does. Each busy loop here is real; a regression hangs the
 * spec until vitest's own timeout, which is the failure.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript
import { createPlainBatchNorm } from '../../examples/plain-bn.mjs';
import type { BatchNormImplementation, ForwardTrainRequest } from '../../src/contract/contract.js';
import { callImplementation, ContractFault } from '../../src/harness/call.js';
import { callSyncImplementation } from '../../src/harness/call.js';
import { Mismatch, runProperty } from '../../src/harness/check.js';
import { formatText } from '../../src/harness/format.js';
import { runConformance } from '../../src/harness/runner.js';
import { fixedProblem, syncTrainRequest } from '../../src/arbitraries/shards.js';
import type { CheckSpec } from '../../src/checks/spec.js';
import { createReference } from '../../src/reference/reference.js';
import fc from 'fast-check';

const ok = createPlainBatchNorm('keras') as BatchNormImplementation;
const req = (): ForwardTrainRequest => ({
  x: Float32Array.from([1, 2, 3, 4]),
  shape: [2, 2],
  axis: 1,
  gamma: Float32Array.from([1, 1]),
  beta: Float32Array.from([0, 0]),
  eps: 1e-3,
  momentum: 0.9,
  runningMean: Float32Array.from([0, 0]),
  runningVar: Float32Array.from([1, 1]),
});

describe('in process: the watchdog interrupts synchronous busy loops', () => {
  it('a loop in a function of this module (defined outside the vm context) is stopped at the limit: fault timeout; the next call works', async () => {
    let finallyRan = false;
    let calls = 0;
    const impl: BatchNormImplementation = {
      ...ok,
      name: 'sync-busy-once',
      forwardTrain(r) {
        if (calls++ === 0) {
          try {
            for (;;) {
              // a busy loop that even tries to swallow the interruption
              try {
                for (;;);
              } catch {
                /* not reached: termination cannot be caught */
              }
            }
          } finally {
            finallyRan = true;
          }
        }
        return ok.forwardTrain!(r);
      },
    };
    const t0 = Date.now();
    const err = await callImplementation(impl, 'forwardTrain', req(), 'float32', { timeoutMs: 200 }).catch((e: unknown) => e);
    const ms = Date.now() - t0;
    expect(err).toBeInstanceOf(ContractFault);
    expect((err as ContractFault).fault).toBe('timeout');
    expect((err as Error).message).toMatch(/ran synchronously past 200 ms .* interrupted; its finally blocks did not run/);
    expect(ms).toBeGreaterThanOrEqual(180);
    expect(ms).toBeLessThan(5_000);
    // the state it leaves: its finally block never ran (documented), and this isolate runs on
    expect(finallyRan).toBe(false);
    const again = await callImplementation(impl, 'forwardTrain', req(), 'float32', { timeoutMs: 200 });
    expect(again.y).toHaveLength(4);
  });

  it('a WebAssembly loop is interrupted too', async () => {
    // (module (func (export "f") (loop br 0)))
    const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 9, 1, 7, 0, 3, 64, 12, 0, 11, 11]);
    const W = (globalThis as unknown as { WebAssembly: { Instance: new (m: unknown) => { exports: Record<string, unknown> }; Module: new (b: Uint8Array) => unknown } }).WebAssembly;
    const spin = new W.Instance(new W.Module(bytes)).exports.f as () => void;
    const impl: BatchNormImplementation = { ...ok, name: 'wasm-busy', forwardTrain: () => (spin(), ok.forwardTrain!(req())) };
    const err = await callImplementation(impl, 'forwardTrain', req(), 'float32', { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as ContractFault).fault).toBe('timeout');
  });

  it('an error the kernel throws is still "threw", a fast kernel is untouched', async () => {
    const throws: BatchNormImplementation = { ...ok, name: 'throws', forwardTrain: () => { throw new RangeError('no'); } };
    const err = await callImplementation(throws, 'forwardTrain', req(), 'float32', { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as ContractFault).fault).toBe('threw');
    expect((err as ContractFault).cause).toBeInstanceOf(RangeError);
    const r = await callImplementation(ok, 'forwardTrain', req(), 'float32', { timeoutMs: 200 });
    expect(Array.from(r.mean!)).toEqual([2, 3]);
  });

  it('runConformance on an object: a synchronous busy loop fails bn:hygiene:settles with timeout and the run ends', async () => {
    const busy: BatchNormImplementation = { ...ok, name: 'busy', dtypes: ['float32'], axes: 'first', forwardTrain: () => { for (;;); } };
    const r = await runConformance(busy, { runs: 1, seed: 1, golden: false, timeoutMs: 60, only: ['bn:hygiene:settles'] });
    expect(r.ok).toBe(false);
    expect(r.results[0]!.failure?.fault).toBe('timeout');
  }, 30_000);
});

describe('in process: the same give-up rule as the worker and --exec', () => {
  it('after 5 timed-out calls, later calls fail at once (in-process-gave-up): a kernel that hangs on every call cannot stretch the run to calls x the limit', async () => {
    const busy: BatchNormImplementation = { ...ok, name: 'always-busy', dtypes: ['float32'], axes: 'first', forwardTrain: () => { for (;;); } };
    const t0 = Date.now();
    // (enough checks that call forwardTrain for three to find the budget spent: one timeout each ends the first six)
    const r = await runConformance(busy, { runs: 3, seed: 1, golden: false, timeoutMs: 100, only: ['bn:normalization', 'bn:invariance', 'bn:consistency', 'bn:agreement:forward-train'] });
    const faults = r.results.map((x) => x.failure?.fault);
    expect(r.results.length).toBeGreaterThanOrEqual(8);
    // a timeout ends its check's property (src/harness/check.ts): one timed-out call per check,
    // the first and one after each of the 5 restarts, then the give-up
    expect(faults.filter((f) => f === 'timeout').length).toBeLessThanOrEqual(6);
    expect(faults.filter((f) => f === 'in-process-gave-up').length).toBeGreaterThanOrEqual(3);
    const gaveUp = r.results.find((x) => x.failure?.fault === 'in-process-gave-up')!;
    expect(gaveUp.failure!.message).toMatch(/the in-process implementation was continued after a fault 5 times; no more restarts \(faults seen: timeout/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 30_000);
});

describe('the synchronized ops get the same guarded call (watchdog, give-up, every request in the counterexample)', () => {
  const ref = createReference('keras');
  const syncReq = () => syncTrainRequest(fixedProblem('float32', [[1, 2], [3, 5], [4, 0], [7, 1]], [1, 3]));

  it('a forwardTrainSync that busy-loops in process is interrupted at the limit: fault timeout; the next call works', async () => {
    let calls = 0;
    const impl: BatchNormImplementation = {
      ...ref,
      name: 'sync-busy-once',
      forwardTrainSync(r) {
        if (calls++ === 0) for (;;);
        return ref.forwardTrainSync!(r);
      },
    };
    const t0 = Date.now();
    const err = await callSyncImplementation(impl, 'forwardTrainSync', syncReq(), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContractFault);
    expect((err as ContractFault).fault).toBe('timeout');
    expect((err as Error).message).toMatch(/forwardTrainSync ran synchronously past 200 ms .* interrupted/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const again = await callSyncImplementation(impl, 'forwardTrainSync', syncReq(), { timeoutMs: 200 });
    expect(again.replicas).toHaveLength(2);
  });

  it('runConformance: sync ops that busy-loop on every call end the run with in-process-gave-up after 5 timeouts (the budget the other ops have)', async () => {
    const busy: BatchNormImplementation = { ...ref, name: 'sync-always-busy', forwardTrainSync: () => { for (;;); }, backwardSync: () => { for (;;); } };
    const t0 = Date.now();
    const r = await runConformance(busy, { runs: 2, seed: 1, golden: false, timeoutMs: 100, only: ['bn:sync'] });
    expect(r.results.length).toBe(24);
    // (a timeout ends its case's property: the first six cases time out once each, the first and
    // one after each of the five restarts; every later case reports the give-up)
    const faults = r.results.map((x) => x.failure?.fault);
    expect(faults.filter((f) => f === 'timeout').length).toBeLessThanOrEqual(6);
    expect(faults.filter((f) => f === 'in-process-gave-up').length).toBe(24 - faults.filter((f) => f === 'timeout').length);
    for (const x of r.results) {
      const f = x.failure!;
      expect(f.message).toMatch(
        f.fault === 'timeout' ? /Sync ran synchronously past 100 ms/ : /continued after a fault 5 times; no more restarts \(faults seen: timeout; last: timeout: \w+Sync ran synchronously past 100 ms/,
      );
      expect(f.counterexample?.op).toMatch(/Sync$/);
      expect(f.counterexample?.script).toMatch(/replica\(s\), shard shapes/);
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 30_000);

  it('sync calls share the run\'s budget: after forwardTrain timed out 5 times, forwardTrainSync fails at once with in-process-gave-up', async () => {
    const hangs: BatchNormImplementation = { ...ref, name: 'forward-train-pending', dtypes: ['float32'], precisions: [{ dtype: 'float32', paramDtype: 'float32' }], forwardTrain: () => new Promise(() => undefined) };
    // nine forwardTrain cases (three checks, one per axis; a timeout ends each one's property, so
    // one timed-out call each: six spend the budget) before the sync one
    const r = await runConformance(hangs, { runs: 2, seed: 1, golden: false, timeoutMs: 60, only: ['bn:normalization:zero-mean:dtype=float32', 'bn:normalization:variance:dtype=float32', 'bn:normalization:affine:dtype=float32', 'bn:sync:uneven-shards'] });
    expect(r.results.map((x) => x.id.split(':')[1])).toEqual([...new Array(9).fill('normalization'), 'sync']);
    for (const x of r.results.slice(0, 9)) expect(['timeout', 'in-process-gave-up']).toContain(x.failure?.fault);
    const sync = r.results[9]!.failure!;
    expect(sync.fault).toBe('in-process-gave-up');
    expect(sync.message).toMatch(/last: timeout: forwardTrain did not settle within 60 ms/);
  }, 30_000);

  it('a sync failure carries every request of its case (counterexample.requests), plain and sync ops in order', async () => {
    const threeCalls: CheckSpec = {
      family: 'selftest',
      name: 'sync-calls',
      title: 'calls forwardTrain, then forwardTrainSync twice, then fails',
      needs: ['forwardTrainSync', 'forwardTrain'],
      axes: 'one',
      dtypes: ['float64'],
      run: (ctx) =>
        runProperty(ctx, fc.constant(0), async (_, c) => {
          const p = fixedProblem('float64', [[1, 2], [3, 5], [4, 0]], [1, 2]);
          const one = syncTrainRequest(p, [3]);
          await c.call('forwardTrain', { ...one.shards[0]!, axis: one.axis, gamma: one.gamma, beta: one.beta, eps: one.eps, momentum: one.momentum, runningMean: one.runningMean, runningVar: one.runningVar } as never);
          await c.callSync!('forwardTrainSync', one);
          await c.callSync!('forwardTrainSync', syncTrainRequest(p));
          throw new Mismatch('always fails after three calls');
        }),
    };
    const r = await runConformance(ref, { runs: 1, seed: 1, golden: false, only: ['bn:selftest'], extraChecks: [threeCalls] });
    const cx = r.results[0]!.failure!.counterexample!;
    expect(cx.op).toBe('forwardTrainSync');
    expect(cx.script).toBe('forwardTrainSync over 2 replica(s), shard shapes [1,2] [2,2]');
    expect(cx.requests?.map((q) => q.op)).toEqual(['forwardTrain', 'forwardTrainSync', 'forwardTrainSync']);
    // plain JSON, shards included
    expect((cx.requests![2]!.request.shards as Array<{ x: number[] }>).map((s) => s.x)).toEqual([[1, 2], [3, 5, 4, 0]]);
    expect(cx.request).toEqual(cx.requests![2]!.request);
    expect(formatText(r)).toContain('request 3 of 3 (forwardTrainSync): {');
  });
});

describe('a module path: the isolation worker covers what the watchdog cannot', () => {
  it('runConformance(path) stops a busy loop that runs after an await (fault timeout) and closes its worker', async () => {
    const r = await runConformance('spec/fixtures/hostile/async-busy-loop.mjs', { runs: 1, seed: 1, golden: false, timeoutMs: 100, only: ['bn:hygiene:settles'] });
    expect(r.implementation.name).toBe('async-busy-loop');
    expect(r.results[0]!.failure?.fault).toBe('timeout');
  }, 30_000);

  it('an isolated implementation never keeps its process alive when idle: a script that makes a call and never calls close() exits by itself', () => {
    // (before the fix the worker stayed ref'd and the script ran until the spawn's time limit)
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'spec/fixtures/isolate-exit.ts'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull(); // not killed at the time limit
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // the call was in flight when the script's own code ended: it kept the process alive until it settled
    expect(r.stdout).toBe('y 4\n');
  }, 40_000);
});
