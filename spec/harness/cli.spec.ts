/**
 * The check command's contract with a shell: exit 0 on a pass, 1 on a failure, 2 on usage errors,
 * and a warning for skips-file entries that match no check.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('bn-conformance check (CLI)', () => {
  it('exits 0 when every selected check passes, and warns about skips-file entries that match nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bn-cli-'));
    const skips = join(dir, 'skips.txt');
    writeFileSync(skips, '# known\nbn:edge:m1\nbn:edge:no-such-check\n');
    const r = cli('check', '--builtin', 'reference', '--seed', '1', '--only', 'bn:edge:*', '--skips-file', skips);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^PASS: \d+ passed, 0 failed/m);
    expect(r.stderr).toContain('skips file entry "bn:edge:no-such-check" matches no check');
    expect(r.stderr).not.toContain('"bn:edge:m1"');
  });

  it('exits 1 on a failing check and prints its replay command', () => {
    const r = cli('check', 'examples/broken/one-pass-float32.mjs', '--seed', '1', '--only', 'bn:edge:large-offset:dtype=float32;axis=first');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("replay: bn-conformance check examples/broken/one-pass-float32.mjs --only 'bn:edge:large-offset:dtype=float32;axis=first' --seed 1");
  });

  it('exits 2 on usage errors, naming the problem', () => {
    const r = cli('check', '--builtin', 'no-such-builtin');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown built-in "no-such-builtin"');
  });
});
