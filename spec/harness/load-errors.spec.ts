/**
 * A module that does not load names file:line:column in every JS door (src/harness/load-error.ts):
 * the CLI's worker (the default), the CLI in process (--no-isolate, the real Node import: a
 * child process, since vitest's own module runner stands between an in-process import and Node),
 * runConformance(path); and an --exec child that dies at start is reported with its stderr,
 * where Node (or any language) said what went wrong. The browser door's esbuild message is
 * checked in spec/harness/browser.spec.ts.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/harness/runner.js';
import { describeLoadError, locationInError } from '../../src/harness/load-error.js';

const H = 'spec/fixtures/hostile';

/** The real CLI (from source) in a child process. */
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

const SYNTAX = `${H}/syntax-error.mjs:3:40: SyntaxError: Unexpected token ';'`;
// the source line and a caret under column 40
const CARET = `\n    export default { name: 'syntax-error', ; };\n    ${' '.repeat(39)}^`;

describe.concurrent('load errors name file:line:column in every JS door', () => {
  it('check MODULE (worker) and check --no-isolate: a syntax error, directly and one import deep', async () => {
    const [worker, inProcess, nested] = await Promise.all([
      cli('check', `${H}/syntax-error.mjs`),
      cli('check', '--no-isolate', `${H}/syntax-error.mjs`),
      cli('check', `${H}/imports-syntax-error.mjs`),
    ]);
    for (const r of [worker, inProcess]) {
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`UsageError: cannot load ${H}/syntax-error.mjs: ${SYNTAX}${CARET}`);
    }
    expect(nested.status).toBe(2);
    // the file that does not parse, not the one that was asked for
    expect(nested.stderr).toContain(`cannot load ${H}/imports-syntax-error.mjs: ${SYNTAX}`);
  }, 70_000);

  it('runConformance(path): the same message', async () => {
    await expect(runConformance(`${H}/syntax-error.mjs`, { runs: 1, golden: false })).rejects.toThrow(`cannot load ${H}/syntax-error.mjs: ${SYNTAX}`);
    await expect(runConformance(`${H}/imports-syntax-error.mjs`, { runs: 1, golden: false })).rejects.toThrow(SYNTAX);
  }, 30_000);

  it('a module that throws while it loads: the frame in the module, in both JS doors', async () => {
    const [worker, inProcess] = await Promise.all([cli('check', `${H}/throws-at-load.mjs`), cli('check', '--no-isolate', `${H}/throws-at-load.mjs`)]);
    for (const r of [worker, inProcess]) {
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`cannot load ${H}/throws-at-load\\.mjs: ${H}/throws-at-load\\.mjs:4:\\d+: SyntaxError: .*JSON`));
    }
  }, 70_000);

  it('--exec: a child that dies at start is reported with its stderr (Node names file:line and draws the caret)', async () => {
    const [node, sh] = await Promise.all([
      cli('check', '--exec', `${process.execPath} ${H}/syntax-error.mjs`),
      cli('check', '--exec', `echo 'fatal: no config file my.toml' >&2; exit 3`),
    ]);
    expect(node.status).toBe(2);
    expect(node.stderr).toContain('the describe handshake failed: exec-died: the child exited (code 1); its stderr:');
    expect(node.stderr).toMatch(new RegExp(`${H}/syntax-error\\.mjs:3\\n.*\\n {43}\\^[\\s\\S]*SyntaxError: Unexpected token ';'`));
    // Node's internal stack frames are left out
    expect(node.stderr).not.toContain('node:internal');
    expect(sh.status).toBe(2);
    expect(sh.stderr).toContain('exec-died: the child exited (code 3); its stderr:\n    fatal: no config file my.toml');
  }, 70_000);

  it('a missing module says so; an error carrying no location gets no invented one', async () => {
    expect(await describeLoadError(Object.assign(new Error('Cannot find module'), { code: 'ERR_MODULE_NOT_FOUND' }), 'no/such.mjs')).toMatch(/^no such file \(.*no\/such\.mjs\)$/);
    expect(locationInError({ name: 'Error', message: 'x', stack: 'Error: x\n    at f (node:internal/modules/esm/utils:1:2)' })).toBeUndefined();
    expect(locationInError({ name: 'Error', message: 'x', stack: 'Error: x\n    at f (file:///home/u/my-bn.mjs:12:5)' })).toEqual({ file: '/home/u/my-bn.mjs', line: 12, column: 5 });
  });
});
