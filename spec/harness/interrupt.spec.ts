/**
 * Ctrl-C (issue 21): a run stopped by SIGINT ends with a verdict line that says "interrupted",
 * exit code 130, and the reports asked for, holding the checks that finished (interrupted: true)
 * and nothing the interruption itself caused (a child or browser killed by the same Ctrl-C is no
 * failure of the implementation). Each door: a module (worker), --exec, --browser (skipped
 * without Chromium unless BN_REQUIRE_BROWSER=1). The signal goes to the CLI's whole process
 * group, as a terminal's Ctrl-C does. And the library's `signal` option does the same in process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../../src/harness/types.js';
import { runConformance } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';

const SLOW = 'spec/fixtures/interrupt/slow.mjs';
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Start `check ARGS` in its own process group, wait until `ready` says the run is under way,
 * send SIGINT to the group, and collect what the CLI said and its exit code.
 */
async function interrupted(args: string[], ready: (marker: string, stderr: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bn-interrupt-'));
  const marker = join(dir, 'slow');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'check', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, BN_SLOW_MARKER: marker },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code, signal) => ok(code ?? (signal ? -1 : null))));
  try {
    const t0 = Date.now();
    while (!ready(marker, stderr) && Date.now() - t0 < 60_000) await sleep(100);
    expect(ready(marker, stderr), `the run never got going: ${stderr}`).toBe(true);
    process.kill(-child.pid!, 'SIGINT');
    const code = await Promise.race([exited, sleep(30_000).then(() => 'hung' as const)]);
    expect(code, `the CLI did not exit within 30 s of SIGINT: ${stderr}`).not.toBe('hung');
    return { code: code as number | null, stdout, stderr };
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL'); // whatever is left of the group
    } catch {
      // gone, as it should be
    }
  }
}

const slowStarted = (marker: string) => existsSync(marker);

// the browser door needs Chromium, playwright-core and esbuild (spec/harness/browser.spec.ts)
const chromium = process.env.BN_CHROMIUM || '/usr/bin/chromium';
let browserReason = existsSync(chromium) ? '' : `no Chromium at ${chromium}`;
if (!browserReason) {
  try {
    await import('playwright-core');
    await import('esbuild');
  } catch (e) {
    browserReason = `playwright-core or esbuild is not installed (${(e as Error).message.split('\n')[0]})`;
  }
}
if (browserReason && process.env.BN_REQUIRE_BROWSER === '1') throw new Error(`BN_REQUIRE_BROWSER=1 but the browser door cannot run here: ${browserReason}`);

/** The report of an interrupted run: marked, not ok, with the finished checks and no fault caused by the Ctrl-C. */
function expectPartial(report: ConformanceReport, someFinished: boolean): void {
  expect(report.interrupted).toBe(true);
  expect(report.ok).toBe(false);
  if (someFinished) expect(report.results.length).toBeGreaterThan(0);
  // the kernel is correct: whatever finished passed, and the check in flight is not reported
  expect(report.results.filter((r) => r.status === 'fail').map((r) => `${r.id}: ${r.failure?.message}`)).toEqual([]);
}

describe('SIGINT during check: "interrupted", exit 130, the partial results marked', () => {
  it('a module (isolation worker): the JSON report asked for is written, the verdict line says INTERRUPTED', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bn-interrupt-')), 'report.json');
    const r = await interrupted([SLOW, '--seed', '1', '--no-golden', '--format', 'json', '--out', out], slowStarted);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^INTERRUPTED: .*interrupted after \d+ of \d+ checks/);
    expectPartial(JSON.parse(readFileSync(out, 'utf8')) as ConformanceReport, true);
  }, 120_000);

  it('--exec (the child gets the same Ctrl-C): the text report ends with a line that says interrupted', async () => {
    const r = await interrupted(['--exec', 'node spec/fixtures/interrupt/slow-exec.mjs', '--seed', '1', '--no-golden'], slowStarted);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/interrupted/i);
    expect(r.stdout).not.toMatch(/exec-died|exec-gave-up/);
  }, 120_000);

  it.skipIf(browserReason !== '')(`--browser: no browser-crashed failures, exit 130${browserReason ? ` (skipped: ${browserReason})` : ''}`, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bn-interrupt-')), 'report.json');
    let announced = 0;
    const r = await interrupted(['--browser', SLOW, '--seed', '1', '--no-golden', '--format', 'json', '--out', out], (_, stderr) => {
      // Chromium is up and the page loaded; then give the checks a moment to run
      if (!/^browser: /m.test(stderr)) return false;
      announced ||= Date.now();
      return Date.now() - announced > 1500;
    });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^INTERRUPTED: /);
    const report = JSON.parse(readFileSync(out, 'utf8')) as ConformanceReport;
    expectPartial(report, false);
    expect(JSON.stringify(report)).not.toContain('browser-crashed');
  }, 120_000);
});

describe('runConformance({ signal })', () => {
  it('aborted while a check starts: the finished checks are reported, the one in flight is not, interrupted: true', async () => {
    const controller = new AbortController();
    const report = await runConformance(createReference('keras'), {
      seed: 1,
      runs: 3,
      golden: false,
      only: ['bn:agreement:forward-train'],
      signal: controller.signal,
      onProgress: (e) => {
        if (e.index === 3 && !e.result) controller.abort();
      },
    });
    expect(report.interrupted).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.results.map((r) => r.status)).toEqual(['pass', 'pass', 'pass']);
    expect(report.summary.total).toBe(3);
  });

  it('aborted before it starts: an empty, interrupted report (not the nothing-was-checked usage error)', async () => {
    const report = await runConformance(createReference('keras'), { seed: 1, runs: 1, golden: false, only: ['bn:agreement'], signal: AbortSignal.abort() });
    expect(report.interrupted).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.results).toEqual([]);
  });
});
