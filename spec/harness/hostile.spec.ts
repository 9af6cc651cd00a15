/**
 * The hostile gallery: implementations that break the contract in every way we know, each run
 * through the CLI's main() (in this process, one after another: cheap), and two of them through
 * the real CLI binary in a child process (the exit code of the process itself). Every fault must
 * be named in the report, the CLI must exit 1, and nothing may hang or crash the run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../../src/harness/types.js';
import { main } from '../../src/cli/main.js';
import { runConformance } from '../../src/harness/runner.js';
// @ts-expect-error plain JavaScript
import reusesBuffers from '../fixtures/hostile/reuses-buffers.mjs';

const H = 'spec/fixtures/hostile';
const dir = mkdtempSync(join(tmpdir(), 'bn-hostile-'));

interface Outcome {
  code: number | null;
  ms: number;
  report?: ConformanceReport;
  stderr: string;
}

const COMMON = ['--format', 'json', '--runs', '1', '--seed', '1', '--no-golden'];

/** main() in this process; stderr captured. */
async function inProcess(args: string[], out: string): Promise<Outcome> {
  const t0 = Date.now();
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  const swallow = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  let code: number;
  try {
    process.exitCode = undefined;
    code = await main(['node', 'bn-conformance', 'check', ...args, ...COMMON, '--out', out]);
  } finally {
    process.stderr.write = write;
    process.stdout.write = swallow;
    process.exitCode = undefined;
  }
  let report: ConformanceReport | undefined;
  try {
    report = JSON.parse(readFileSync(out, 'utf8')) as ConformanceReport;
  } catch {
    // asserted by the caller
  }
  return { code, ms: Date.now() - t0, report, stderr };
}

function cli(args: string[], out: string): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'check', ...args, ...COMMON, '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.stdout.resume();
    const killer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(killer);
      let report: ConformanceReport | undefined;
      try {
        report = JSON.parse(readFileSync(out, 'utf8')) as ConformanceReport;
      } catch {
        // no report: asserted below
      }
      resolve({ code, ms: Date.now() - t0, report, stderr });
    });
  });
}

/** Every fault and message in the report, to look a name up in. */
const faultsOf = (r: ConformanceReport | undefined) =>
  (r?.results ?? []).filter((x) => x.status === 'fail').map((x) => `${x.id} ${x.failure?.fault ?? ''} ${x.failure?.message ?? ''}`);

// module, checks to run, the fault that must be named
const MODULES: Array<[string, string, string]> = [
  ['throws', 'bn:hygiene:settles', 'threw'],
  ['rejects', 'bn:hygiene:settles', 'rejected'],
  ['never-resolves', 'bn:hygiene:settles', 'timeout'],
  ['busy-loop', 'bn:hygiene:settles', 'timeout'],
  ['exits', 'bn:agreement:forward-train', 'worker-died'],
  ['nan', 'bn:hygiene:finite-outputs', 'bn:hygiene:finite-outputs'],
  ['wrong-length', 'bn:hygiene:output-types', 'wrong-length'],
  ['wrong-dtype', 'bn:hygiene:output-types', 'wrong-dtype'],
  ['plain-array', 'bn:hygiene:output-types', 'not-a-typed-array'],
  ['mutates', 'bn:hygiene:inputs-unchanged', 'input-mutated'],
  // a scalar field (eps) rewritten: the judge reads the request after the call, so this must be named too
  ['mutates-eps', 'bn:agreement:forward-train', 'input-mutated'],
];
const EXEC: Array<[string, string]> = [
  ['dies', 'exec-died'],
  // behind `sh -c` the shell may keep the pipe open, so this can surface as a timeout instead
  ['closes-stdout', 'exec-stdout-closed|exec-timeout'],
  ['non-json', 'exec-bad-json'],
  ['wrong-id', 'exec-wrong-id'],
  ['huge-line', 'exec-line-too-long'],
];

const moduleArgs = (m: string, only: string) => [`${H}/${m}.mjs`, '--only', only, '--timeout-ms', m === 'exits' ? '5000' : '300'];
// two checks: a timeout ends a check's property, so the second one's first call shows the restart;
// huge-line's 64 MB (the line limit) takes more than 2 s to read on a busy machine, and a timeout
// would then be the verdict
const execArgs = (mode: string) => ['--exec', `${process.execPath} ${H}/exec-server.mjs ${mode}`, '--only', 'bn:agreement:forward-train,bn:agreement:forward-infer', '--timeout-ms', mode === 'huge-line' ? '15000' : '2000'];

// a correct kernel that reuses its output buffers: the checks that compare two results or feed
// one call's output to the next (each fails on it when results are not copied)
const REUSE_ONLY = ['--only', 'bn:normalization:affine:dtype=float32,bn:invariance:batch-permutation:dtype=float32,bn:running-stats:closed-form:dtype=float32'];
const reuseArgs = [`${H}/reuses-buffers.mjs`, ...REUSE_ONLY];

// the real-CLI runs start now and overlap the in-process ones
const busyCli = cli(moduleArgs('busy-loop', 'bn:hygiene:settles'), join(dir, 'cli-busy.json'));
const hugeCli = cli(execArgs('huge-line'), join(dir, 'cli-huge.json'));
const reuseCli = cli(reuseArgs, join(dir, 'cli-reuse.json'));

// in-process runs, one at a time (main() uses process.exitCode)
const runs = new Map<string, Promise<Outcome>>();
let chain: Promise<unknown> = Promise.resolve();
const enqueue = (key: string, f: () => Promise<Outcome>) => {
  const p = chain.then(f);
  chain = p.catch(() => undefined);
  runs.set(key, p);
};
for (const [m, only] of MODULES) enqueue(m, () => inProcess(moduleArgs(m, only), join(dir, `${m}.json`)));
for (const [mode] of EXEC) enqueue(`exec-${mode}`, () => inProcess(execArgs(mode), join(dir, `exec-${mode}.json`)));
enqueue('mutates-in-process', () => inProcess([...moduleArgs('mutates', 'bn:hygiene:inputs-unchanged'), '--no-isolate'], join(dir, 'mutates-in-process.json')));
enqueue('busy-loop-in-process', () => inProcess([...moduleArgs('busy-loop', 'bn:hygiene:settles'), '--no-isolate'], join(dir, 'busy-loop-in-process.json')));
enqueue('reuse-in-process', () => inProcess([...reuseArgs, '--no-isolate'], join(dir, 'reuse-in-process.json')));
enqueue('bad-accumulation', () => inProcess([`${H}/bad-accumulation.mjs`], join(dir, 'bad-accumulation.json')));
enqueue('exec-bad-accumulation', () => inProcess(execArgs('bad-accumulation'), join(dir, 'exec-bad-accumulation.json')));

describe('hostile implementations', () => {
  for (const [m, , fault] of MODULES) {
    it(`${m}: named (${fault}), exit 1, no hang`, async () => {
      const o = await runs.get(m)!;
      expect(o.code, o.stderr).toBe(1);
      expect(o.report?.ok).toBe(false);
      expect(faultsOf(o.report).some((f) => f.includes(fault)), JSON.stringify(faultsOf(o.report))).toBe(true);
      expect(o.ms).toBeLessThan(45_000);
    }, 70_000);
  }
  for (const [mode, fault] of EXEC) {
    it(`--exec child that ${mode}: named (${fault}), exit 1, restarted`, async () => {
      const o = await runs.get(`exec-${mode}`)!;
      expect(o.code, o.stderr).toBe(1);
      expect(faultsOf(o.report).some((f) => fault.split('|').some((n) => f.includes(n))), JSON.stringify(faultsOf(o.report))).toBe(true);
      expect(o.stderr).toContain('restarted the child');
    }, 70_000);
  }
  it('the real CLI process: a busy loop and a 100 MB line each end in exit 1 with the fault named', async () => {
    const [busy, huge] = await Promise.all([busyCli, hugeCli]);
    expect(busy.code, busy.stderr).toBe(1);
    expect(faultsOf(busy.report).some((f) => f.includes('timeout'))).toBe(true);
    expect(huge.code, huge.stderr).toBe(1);
    expect(faultsOf(huge.report).some((f) => f.includes('exec-line-too-long'))).toBe(true);
  }, 70_000);
  it('busy-loop with --no-isolate: the in-process watchdog names it (timeout), exit 1, no hang', async () => {
    const o = await runs.get('busy-loop-in-process')!;
    expect(o.code, o.stderr).toBe(1);
    expect(faultsOf(o.report).some((f) => f.includes('timeout')), JSON.stringify(faultsOf(o.report))).toBe(true);
    expect(o.ms).toBeLessThan(45_000);
  }, 70_000);
  it('a mutation is named with the same words in the worker and in process', async () => {
    const [worker, inproc] = await Promise.all([runs.get('mutates')!, runs.get('mutates-in-process')!]);
    const msg = (o: Outcome) => o.report?.results.find((r) => r.status === 'fail')?.failure?.message;
    expect(msg(inproc)).toMatch(/input-mutated: forwardTrain modified its input x \(byte \d+\)/);
    expect(msg(worker)).toBe(msg(inproc));
    expect(msg(await runs.get('mutates-eps')!)).toMatch(/input-mutated: forwardTrain modified its input eps \(was [0-9.e-]+, now 0\.5\)/);
  }, 70_000);
  it('a correct kernel that reuses its output buffers passes, with the same verdict per check in the CLI (worker), in process (--no-isolate) and runConformance', async () => {
    const [viaCli, viaMain] = await Promise.all([reuseCli, runs.get('reuse-in-process')!]);
    const viaApi = await runConformance(reusesBuffers, { runs: 1, seed: 1, golden: false, only: REUSE_ONLY[1]!.split(',') });
    const verdicts = (r: ConformanceReport | undefined) => Object.fromEntries((r?.results ?? []).map((x) => [x.id, x.status]));
    expect(viaCli.code, `the CLI (worker): ${viaCli.stderr}`).toBe(0);
    expect(viaMain.code, `main() --no-isolate: ${viaMain.stderr}`).toBe(0);
    expect(viaApi.ok, JSON.stringify(viaApi.results.map((x) => x.failure?.message).filter(Boolean))).toBe(true);
    expect(Object.keys(verdicts(viaApi))).toHaveLength(7); // 3 axes of affine and batch-permutation, closed-form runs on one
    expect(verdicts(viaCli.report)).toEqual(verdicts(viaApi));
    expect(verdicts(viaMain.report)).toEqual(verdicts(viaApi));
  }, 70_000);
  it('an accumulation with a typo is a named usage error (exit 2) from a module and from an --exec describe answer', async () => {
    const [mod, exec] = await Promise.all([runs.get('bad-accumulation')!, runs.get('exec-bad-accumulation')!]);
    expect(mod.code).toBe(2);
    expect(mod.stderr).toContain('AccumulationError: invalid accumulation of "bad-accumulation": accumulation.order must be one of sequential, pairwise, tiled, updates, got "sequental"');
    expect(exec.code).toBe(2);
    expect(exec.stderr).toMatch(/AccumulationError: invalid accumulation of --exec ".*" \(describe answer\): accumulation\.order must be one of sequential, pairwise, tiled, updates, got "sequental"/);
  }, 70_000);
  it('the baseline (a correct --exec child) passes the same checks', async () => {
    const o = await inProcess(['--exec', `"${process.execPath}" ${H}/exec-server.mjs ok`, '--only', 'bn:agreement:forward-train'], join(dir, 'exec-ok.json'));
    expect(o.code, o.stderr).toBe(0);
    expect(o.report?.summary.passed).toBeGreaterThan(0);
  }, 70_000);
});
