/**
 * The check command's contract with a shell: exit 0 on a pass, 1 on a failure, 2 on usage errors,
 * and a warning for skips-file entries that match no check.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The real CLI in a child process; the tests run concurrently (each is mostly Node's start-up). */
const cli = (...args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (status) => {
      clearTimeout(killer);
      resolve({ status, stdout, stderr });
    });
  });

describe.concurrent('bn-conformance check (CLI)', () => {
  it('exits 0 when every selected check passes, and warns about skips-file entries that match nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bn-cli-'));
    const skips = join(dir, 'skips.txt');
    writeFileSync(skips, '# known\nbn:edge:m1\nbn:edge:no-such-check\n');
    const r = await cli('check', '--builtin', 'reference', '--seed', '1', '--only', 'bn:edge:*', '--skips-file', skips);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^PASS: \d+ passed, 0 failed/m);
    expect(r.stderr).toContain('skips file entry "bn:edge:no-such-check" matches no check');
    expect(r.stderr).not.toContain('"bn:edge:m1"');
  }, 70_000);

  it('exits 1 on a failing check and prints its replay command', async () => {
    const r = await cli('check', 'examples/broken/one-pass-float32.mjs', '--seed', '1', '--only', 'bn:edge:large-offset:dtype=float32;axis=first');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("replay: bn-conformance check examples/broken/one-pass-float32.mjs --only 'bn:edge:large-offset:dtype=float32;axis=first' --seed 1");
  }, 70_000);

  it('--only with a prefix that stops at dtype=… runs every axis of it; the header shows the accumulation', async () => {
    const r = await cli('check', '--builtin', 'reference', '--seed', '1', '--runs', '1', '--no-golden', '--verbose', '--only', 'bn:edge:m1:dtype=float32');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/^✓ bn:edge:m1:dtype=float32;axis=(first|last|other) /gm)).toHaveLength(3);
    expect(r.stdout).toMatch(/^PASS: 3 passed, 0 failed/m);
    expect(r.stdout).toContain('accumulation (sets every bound): float32: float64 sequential sums; float64: float64 sequential sums');
  }, 70_000);

  it('--only that matches nothing: exit 2, naming the pattern and the closest IDs', async () => {
    const only = await cli('check', '--builtin', 'reference', '--only', 'bn:edge:m3');
    expect(only.status).toBe(2);
    expect(only.stdout).toBe('');
    expect(only.stderr).toContain("NoMatchError: --only 'bn:edge:m3' matches no check of this implementation; closest: bn:edge:m1, bn:edge:m2, bn:edge:rank");
    // --skip takes the same path (selectCases); its message is asserted in process, spec/harness/verdicts.spec.ts
  }, 70_000);

  it('--builtin tfjs-cpu declares every axis the layer accepts, and fails with a channels-first counterexample', async () => {
    const r = await cli('check', '--builtin', 'tfjs-cpu', '--seed', '3', '--no-golden', '--verbose', '--only', 'bn:agreement:forward-train:dtype=float32');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^✓ bn:agreement:forward-train:dtype=float32;axis=last/m);
    expect(r.stdout).toMatch(/^✗ bn:agreement:forward-train:dtype=float32;axis=first/m);
    expect(r.stdout).toMatch(/counterexample: forwardTrain float32 shape \[\d+, \d+, \d+(, \d+)*\], axis 1/);
  }, 70_000);

  it('exits 2 on usage errors, naming the problem', async () => {
    const r = await cli('check', '--builtin', 'no-such-builtin');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown built-in "no-such-builtin"');
  }, 70_000);

  it('list takes check\'s selection options and lists exactly the cases check runs with them', async () => {
    // --profile changes which golden fixtures apply; --only, --skip and --shard select
    const sel = ['--builtin', 'reference', '--only', 'bn:edge:m1,bn:edge:m2,bn:golden', '--skip', 'bn:edge:m1:dtype=float64', '--shard', '2/3', '--profile', 'pytorch'];
    const dir = mkdtempSync(join(tmpdir(), 'bn-cli-list-'));
    const [listed, keras, checked] = await Promise.all([
      cli('list', ...sel),
      cli('list', ...sel, '--profile', 'keras'),
      cli('check', ...sel, '--runs', '1', '--seed', '1', '--format', 'json', '--out', join(dir, 'r.json')),
    ]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(checked.status, checked.stderr).toBe(0);
    const ids = listed.stdout.trim().split('\n').map((l) => l.split('\t')[0]!);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as { results: Array<{ id: string }> };
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.some((id) => id.startsWith('bn:golden:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('bn:edge:m1:dtype=float64'))).toBe(false);
    expect([...ids].sort()).toEqual(report.results.map((r) => r.id).sort());
    // the profile was honoured: another one plans other golden fixtures
    expect(keras.stdout).not.toBe(listed.stdout);
  }, 70_000);
});

describe('check and list share one definition of their selection options', () => {
  it('list has every option of check except those about running and reporting', async () => {
    const { buildProgram } = await import('../../src/cli/main.js');
    const program = buildProgram();
    const flags = (name: string) => program.commands.find((c) => c.name() === name)!.options.map((o) => o.long!);
    // a new check option is either here (it only concerns running or reporting) or list takes it too
    const CHECK_ONLY = ['--runs', '--seed', '--format', '--out', '--replay', '--verbose', '--allow-inconclusive', '--browser-console-errors'];
    expect(flags('list').sort()).toEqual(flags('check').filter((f) => !CHECK_ONLY.includes(f)).sort());
    expect(flags('list')).toEqual(expect.arrayContaining(['--profile', '--only', '--skip', '--skips-file', '--no-golden', '--shard']));
  });
});
