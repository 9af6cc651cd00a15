/**
 * No run is a PASS unless something was checked (issue 21): a run that executes no check is a
 * UsageError (CLI exit 2) saying why; `precisions` imply their dtypes, so a half kernel declared
 * with the README's `dtypes: ['float32']` runs its float16 precision; an inconclusive check fails
 * the run (report.ok, the CLI's exit code, the vitest door) unless allowed (--allow-inconclusive,
 * allowInconclusive).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CheckSpec } from '../../src/checks/spec.js';
import type { BatchNormImplementation } from '../../src/contract/contract.js';
import { precisionsOf } from '../../src/contract/dtypes.js';
import { UsageError } from '../../src/contract/errors.js';
import { planRun, runConformance } from '../../src/harness/runner.js';
import type { ConformanceReport } from '../../src/harness/types.js';
import { main } from '../../src/cli/main.js';
import { createReference } from '../../src/reference/reference.js';
// @ts-expect-error plain JavaScript
import { createPlainBatchNorm } from '../../examples/plain-bn.mjs';

const plain = () => createPlainBatchNorm('keras') as BatchNormImplementation;
const dir = mkdtempSync(join(tmpdir(), 'bn-nothing-'));

/** main() in this process, its output captured. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    const code = await main(['node', 'bn-conformance', ...args]);
    return { code, stdout, stderr };
  } finally {
    [process.stdout.write, process.stderr.write] = [out, err];
    process.exitCode = undefined;
  }
}

describe('a run that checks nothing is a usage error, never a PASS', () => {
  it('every selected check not supported: UsageError naming why', async () => {
    const err = await runConformance(plain(), { seed: 1, runs: 1, golden: false, only: ['bn:sync'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).code).toBe('BN_NOTHING_CHECKED');
    expect((err as Error).message).toMatch(/no check ran, so nothing was checked: of the \d+ selected, \d+ not-supported: needs forwardTrainSync/);
  });

  it('every selected check skipped, or none selected at all (a shard past the end): UsageError', async () => {
    // layout needs both layouts; a kernel that declares one skips it
    const oneAxis = { ...plain(), axes: 'first' as const };
    await expect(runConformance(oneAxis, { seed: 1, runs: 1, golden: false, only: ['bn:invariance:layout'] })).rejects.toThrow(/of the 2 selected, 2 skipped: needs both layouts/);
    await expect(runConformance(plain(), { seed: 1, runs: 1, golden: false, only: ['bn:edge:m1:dtype=float32;axis=first'], shard: { index: 2, count: 2 } })).rejects.toThrow(
      /no check to run: the filters .* leave none of the \d+ planned checks/,
    );
  });

  it('the CLI: exit 2 with the reason, no PASS line', async () => {
    const r = await cli(['check', 'spec/fixtures/interrupt/slow.mjs', '--no-isolate', '--no-golden', '--only', 'bn:sync', '--runs', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/UsageError: no check ran, so nothing was checked/);
    expect(r.stdout).not.toMatch(/PASS/);
  });

  it('the vitest door: each of its tests fails with the same reason (and an inconclusive check fails unless allowed)', () => {
    const out = join(dir, 'vitest.json');
    const p = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'spec/fixtures/vitest/vitest.config.ts', '--reporter=json', `--outputFile=${out}`], { encoding: 'utf8', timeout: 90_000 });
    const json = JSON.parse(readFileSync(out, 'utf8')) as { testResults: Array<{ assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }> };
    const tests = json.testResults.flatMap((f) => f.assertionResults);
    const of = (suite: string) => tests.filter((t) => t.fullName.startsWith(`${suite} `));
    expect(p.status, p.stderr).toBe(1); // the failing suites below fail the vitest run
    expect(of('strict').map((t) => t.status)).toEqual(['failed']);
    expect(of('strict')[0]!.failureMessages.join('\n')).toMatch(/inconclusive: bn:selftest:vague:dtype=float32;axis=first ran, nothing failed, but nothing it compared could be bounded \(4 of 4 values/);
    expect(of('allowed').map((t) => t.status)).toEqual(['skipped']);
    expect(of('nothing').length).toBeGreaterThan(0);
    for (const t of of('nothing')) expect(t.failureMessages.join('\n')).toMatch(/no check ran, so nothing was checked/);
  }, 120_000);
});

describe('precisions imply their dtypes: no declared precision is dropped', () => {
  // the README skeleton's dtypes, plus a half precision
  const halfKernel = (): BatchNormImplementation => ({ ...createReference('keras'), dtypes: ['float32'], precisions: [{ dtype: 'float16', paramDtype: 'float32' }] });

  it('reading: every listed precision, then the same-dtype pair of each dtype no precision names', () => {
    expect(precisionsOf(halfKernel())).toEqual([
      { dtype: 'float16', paramDtype: 'float32' },
      { dtype: 'float32', paramDtype: 'float32' },
    ]);
    // a dtype some precision names gets only the listed pairs (a mixed-only kernel is not sent pure half)
    expect(precisionsOf({ dtypes: ['float16'], precisions: [{ dtype: 'float16', paramDtype: 'float32' }] })).toEqual([{ dtype: 'float16', paramDtype: 'float32' }]);
    expect(precisionsOf({ dtypes: ['float32', 'float64'] })).toEqual([
      { dtype: 'float32', paramDtype: 'float32' },
      { dtype: 'float64', paramDtype: 'float64' },
    ]);
  });

  it('a half kernel with dtypes [float32] runs its float16 precision (it used to be dropped without a word)', async () => {
    const ids = planRun(halfKernel(), { golden: false }).cases.map((c) => c.def.id);
    expect(ids).toContain('bn:agreement:forward-train:dtype=float16;params=float32;axis=first');
    expect(ids).toContain('bn:agreement:forward-train:dtype=float32;axis=first');
    const r = await runConformance(halfKernel(), { seed: 1, runs: 2, golden: false, only: ['bn:agreement:forward-train:dtype=float16;params=float32;axis=first'] });
    expect(r.results.map((x) => `${x.id} ${x.status}`)).toEqual(['bn:agreement:forward-train:dtype=float16;params=float32;axis=first pass']);
    expect(r.implementation.dtypes).toEqual(['float32', 'float16']);
  });

  it('an accumulation keyed by an implied dtype is accepted, and sets that dtype\'s bounds', async () => {
    const k = { ...halfKernel(), accumulation: { float16: { dtype: 'float32' as const, order: 'pairwise' as const } } };
    const r = await runConformance(k, { seed: 1, runs: 1, golden: false, only: ['bn:agreement:forward-train:dtype=float16;params=float32;axis=first'] });
    expect(r.implementation.accumulation?.float16).toMatchObject({ dtype: 'float32', order: 'pairwise', declared: true });
  });
});

describe('--allow-inconclusive', () => {
  const vague: CheckSpec = {
    family: 'selftest',
    name: 'vague',
    title: 'ran, but nothing it compared could be bounded',
    needs: ['forwardTrain'],
    axes: 'one',
    dtypes: ['float32'],
    run: async () => ({ status: 'inconclusive', numRuns: 1 }),
  };
  it('report.ok: false for an inconclusive check, true when allowed', async () => {
    const opts = { seed: 1, runs: 1, golden: false, extraChecks: [vague], only: ['bn:selftest:vague'] };
    expect((await runConformance(plain(), opts)).ok).toBe(false);
    const allowed = await runConformance(plain(), { ...opts, allowInconclusive: true });
    expect(allowed.ok).toBe(true);
    expect(allowed.options.allowInconclusive).toBe(true);
  });

  it('the CLI flag reaches the run (recorded in the report)', async () => {
    const out = join(dir, 'allowed.json');
    const r = await cli(['check', '--builtin', 'reference', '--only', 'bn:edge:m1:dtype=float32;axis=first', '--no-golden', '--runs', '1', '--allow-inconclusive', '--format', 'json', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(readFileSync(out, 'utf8')) as ConformanceReport).options.allowInconclusive).toBe(true);
  });
});
