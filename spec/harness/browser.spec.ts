/**
 * The browser door (src/harness/browser/): a module bundled by esbuild, served from 127.0.0.1 and
 * run in headless Chromium, judged here.
 *
 * - the wire (no browser): every array kind crosses as its exact bytes;
 * - plain-bn.mjs passes, and gives the same verdict, check by check, as in Node;
 * - the broken one-pass module is rejected by the check that names its bug, through the CLI, with
 *   a replay line that says --browser;
 * - hostile pages: each fault named (threw, input-mutated, timeout, browser-navigated,
 *   browser-uncaught-error, browser-console-error, browser-crashed, a module that cannot be
 *   bundled), the page reloaded after a door fault and the reload reported;
 * - nothing outlives a run: after close() the server refuses connections, and a CLI run stopped
 *   by SIGINT leaves none of its processes behind.
 *
 * Lean (CI budget ~20 s): one shared Chromium for the API tests, one call per hostile module,
 * small runs. Skips, saying why, when Chromium (/usr/bin/chromium or BN_CHROMIUM), playwright-core
 * or esbuild is missing; with BN_REQUIRE_BROWSER=1 (CI: .ci/run) a missing one fails instead.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ForwardInferRequest, ForwardTrainRequest } from '../../src/contract/contract.js';
import { UsageError } from '../../src/contract/errors.js';
import { callImplementation, ContractFault } from '../../src/harness/call.js';
import { chromiumArgs, createBrowserImplementation, type BrowserImplementation } from '../../src/harness/browser/door.js';
import { decodeMessage, encodeMessage, Unencodable } from '../../src/harness/browser/wire.js';
import { runConformance } from '../../src/harness/runner.js';
import { loadImplementation, main } from '../../src/cli/main.js';

const executablePath = process.env.BN_CHROMIUM || '/usr/bin/chromium';
type Playwright = typeof import('playwright-core');
let pw: Playwright | undefined;
let reason = '';
if (!existsSync(executablePath)) reason = `no Chromium at ${executablePath} (apt-get install -y chromium, or BN_CHROMIUM)`;
else {
  try {
    pw = await import('playwright-core');
    await import('esbuild');
  } catch (e) {
    reason = `playwright-core or esbuild is not installed (${(e as Error).message.split('\n')[0]})`;
  }
}
if (reason) {
  if (process.env.BN_REQUIRE_BROWSER === '1') throw new Error(`BN_REQUIRE_BROWSER=1 but the browser door cannot run here: ${reason}`);
  console.warn(`[browser.spec] SKIPPING the browser door tests: ${reason}`);
}

const F = 'spec/fixtures/browser';
const H = 'spec/fixtures/hostile';
const f32 = (...v: number[]) => Float32Array.from(v);
const trainReq = (): ForwardTrainRequest => ({
  x: f32(1, 2, 3, 4, 5, 6),
  shape: [3, 2],
  axis: 1,
  gamma: f32(1, 0.5),
  beta: f32(0, 0.25),
  eps: 1e-3,
  momentum: 0.99,
  runningMean: f32(0, 0),
  runningVar: f32(1, 1),
});
const inferReq = (): ForwardInferRequest => {
  const { momentum: _, ...r } = trainReq();
  return r;
};

describe('browser door wire (no browser)', () => {
  it('carries every typed array as its exact bytes, and what JSON cannot carry, tagged', () => {
    const nan = new Float64Array([NaN, -0, Infinity, 5e-324]);
    const msg = {
      f32: f32(1.5, -2, 3e-45),
      f64: nan,
      half: Uint16Array.from([0x3c00, 0x7e00, 0x0001]),
      i32: Int32Array.from([-1, 7]),
      view: new Float32Array(new Float32Array([9, 8, 7, 6]).buffer, 4, 2),
      plain: [1, 2, 3],
      nested: { shape: [2, 3], eps: NaN, missing: undefined, fn: () => 1 },
    };
    const back = decodeMessage(encodeMessage(msg)) as typeof msg & { nested: Record<string, unknown> };
    expect(back.f32).toBeInstanceOf(Float32Array);
    expect([...back.f32]).toEqual([...msg.f32]);
    expect(new Uint8Array(back.f64.buffer)).toEqual(new Uint8Array(nan.buffer)); // -0 and NaN bit for bit
    expect(back.half).toBeInstanceOf(Uint16Array);
    expect([...back.half]).toEqual([0x3c00, 0x7e00, 0x0001]);
    expect(back.i32).toBeInstanceOf(Int32Array);
    expect([...back.view]).toEqual([8, 7]);
    expect(Array.isArray(back.plain) && !ArrayBuffer.isView(back.plain)).toBe(true);
    expect(Number.isNaN(back.nested.eps)).toBe(true);
    expect('missing' in back.nested && back.nested.missing === undefined).toBe(true);
    expect(back.nested.fn).toBeInstanceOf(Unencodable);
  });
});

describe('browser door: what it needs, named when missing (no browser)', () => {
  it('names a missing Chromium and how to get or name one', async () => {
    await expect(createBrowserImplementation('examples/plain-bn.mjs', { executablePath: '/nonexistent/chromium' })).rejects.toThrow(
      /no Chromium at \/nonexistent\/chromium: install one \(Debian: apt-get install -y chromium\) or name it with --browser-executable PATH or BN_CHROMIUM=PATH/,
    );
  });
  it('names a module that does not exist', async () => {
    await expect(createBrowserImplementation('no/such/module.mjs', { executablePath: process.execPath })).rejects.toThrow(/cannot load no\/such\/module.mjs: no such file/);
  });
});

describe.skipIf(!!reason)(`browser door in headless Chromium${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let browser: import('playwright-core').Browser;
  const open = (path: string, more: Parameters<typeof createBrowserImplementation>[1] = {}) =>
    createBrowserImplementation(path, { browser, executablePath, timeoutMs: 20_000, ...more });

  beforeAll(async () => {
    browser = await pw!.chromium.launch({ executablePath, args: chromiumArgs() });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('passes examples/plain-bn.mjs with the same verdict, check by check, as in Node', async () => {
    const impl = await open('examples/plain-bn.mjs');
    try {
      expect(impl.environment.userAgent).toMatch(/Chrome/);
      const opts = { runs: 2, seed: 5, golden: false, timeoutMs: 30_000, only: ['bn:agreement', 'bn:hygiene:inputs-unchanged', 'bn:edge:m1'] };
      const inBrowser = await runConformance(impl, opts);
      const inNode = await runConformance(await loadImplementation('examples/plain-bn.mjs'), opts);
      expect(inBrowser.summary.failed).toBe(0);
      expect(inBrowser.ok).toBe(true);
      expect(inBrowser.results.length).toBeGreaterThan(10);
      expect(inBrowser.results.map((r) => [r.id, r.status])).toEqual(inNode.results.map((r) => [r.id, r.status]));
      expect(impl.events).toEqual([]);
    } finally {
      await impl.close();
    }
  });

  it('names each hostile page fault, reloads the page after a door fault and reports it', async () => {
    // [module, op, expected fault, reloads after]
    const cases: Array<[string, 'forwardTrain', string, boolean]> = [
      [`${H}/throws.mjs`, 'forwardTrain', 'threw', false],
      [`${H}/mutates.mjs`, 'forwardTrain', 'input-mutated', false],
      [`${H}/plain-array.mjs`, 'forwardTrain', 'not-a-typed-array', false],
      [`${H}/busy-loop.mjs`, 'forwardTrain', 'timeout', true],
      [`${F}/navigates.mjs`, 'forwardTrain', 'browser-navigated', true],
      [`${F}/uncaught.mjs`, 'forwardTrain', 'browser-uncaught-error', true],
      [`${F}/console-error.mjs`, 'forwardTrain', 'browser-console-error', true],
    ];
    // a short limit only where the fault is the limit (busy loop): elsewhere a loaded CI machine
    // must not turn a slow call into a timeout
    const impls = await Promise.all(cases.map(([m, , fault]) => open(m, { timeoutMs: fault === 'timeout' ? 3_000 : 20_000 })));
    try {
      await Promise.all(
        cases.map(async ([m, op, fault, reloads], i) => {
          const impl = impls[i]!;
          // the harness's own limit above the door's, so the door's fault (and reload) is what is named
          const err = await callImplementation(impl, op, trainReq(), 'float32', { timeoutMs: 30_000 }).then(
            () => new Error(`${m}: no fault`),
            (e: unknown) => e,
          );
          expect(err, m).toBeInstanceOf(ContractFault);
          expect((err as ContractFault).fault, `${m}: ${(err as Error).message}`).toBe(fault);
          // the page is usable again: forwardInfer of the same module works
          const y = await callImplementation(impl, 'forwardInfer', inferReq(), 'float32', { timeoutMs: 30_000 });
          expect(y.y, m).toBeInstanceOf(Float32Array);
          expect(impl.reloads, m).toBe(reloads ? 1 : 0);
          if (reloads) expect(impl.events.join('\n'), m).toMatch(new RegExp(`^${fault}: [\\s\\S]*^reloaded the page \\(restart 1\\)$`, 'm'));
        }),
      );
    } finally {
      await Promise.all(impls.map((i) => i.close()));
    }
  });

  it('names a renderer that dies (out of heap) browser-crashed, and gives up after maxReloads', async () => {
    // its own browser: the crash needs a small JavaScript heap
    const impl = await createBrowserImplementation(`${F}/crashes.mjs`, { executablePath, timeoutMs: 20_000, maxReloads: 0, args: ['--js-flags=--max-old-space-size=32'] });
    try {
      const call = () => callImplementation(impl, 'forwardTrain', trainReq(), 'float32', { timeoutMs: 30_000 }).catch((e: unknown) => e as ContractFault);
      expect((await call()).fault).toBe('browser-crashed');
      const last = await call();
      expect(last.fault).toBe('browser-gave-up');
      expect(last.message).toContain('faults seen: browser-crashed');
    } finally {
      await impl.close();
    }
  });

  it('refuses a module that cannot be bundled for a browser, naming the import', async () => {
    await expect(open(`${F}/node-only.mjs`)).rejects.toThrow(UsageError);
    await expect(open(`${F}/node-only.mjs`)).rejects.toThrow(/Could not resolve "node:fs"/);
  });

  it('leaves no server behind after close()', async () => {
    const impl: BrowserImplementation = await open('examples/plain-bn.mjs');
    // the server's address is not public; read it from the page the door opened
    const page = browser.contexts().flatMap((c) => c.pages()).find((p) => p.url().startsWith('http://127.0.0.1:'));
    const url = page!.url();
    expect((await fetch(url)).status).toBe(200);
    await impl.close();
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe.skipIf(!!reason)(`bn-conformance check --browser (CLI)${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('rejects the broken one-pass module by the check that names its bug, with a --browser replay line', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bn-browser-')), 'report.txt');
    const id = 'bn:edge:large-offset:dtype=float32;axis=first';
    const swallow = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    let stderr = '';
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(['node', 'bn-conformance', 'check', '--browser', 'examples/broken/one-pass-float32.mjs', '--only', id, '--seed', '1', '--out', out]);
    } finally {
      process.stdout.write = swallow;
      process.stderr.write = err;
      process.exitCode = undefined;
    }
    expect(code).toBe(1);
    expect(stderr).toMatch(/^browser: HeadlessChrome\/\d+/m);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain(`✗ ${id}`);
    expect(text).toMatch(/counterexample: forwardTrain float32 shape/);
    expect(text).toContain(`replay: bn-conformance check --browser examples/broken/one-pass-float32.mjs --only '${id}' --seed 1`);
  });

  it('on SIGINT, closes its browser: none of the run\'s processes outlive it', async () => {
    // a run that hangs in the page (busy loop, long limit), stopped by SIGINT once Chromium is up
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'check', '--browser', `${H}/busy-loop.mjs`, '--timeout-ms', '60000', '--only', 'bn:agreement:forward-train'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((ok) => child.on('exit', (code, signal) => ok(code ?? (signal ? 128 : null))));
    const t0 = Date.now();
    while (!/^browser: /m.test(stderr) && Date.now() - t0 < 30_000) await new Promise((ok) => setTimeout(ok, 100));
    expect(stderr).toMatch(/^browser: /m);
    await new Promise((ok) => setTimeout(ok, 300)); // the call is in the page's busy loop now
    const family = descendants(child.pid!);
    expect(family.length).toBeGreaterThan(1); // Chromium's processes
    child.kill('SIGINT');
    await exited;
    await new Promise((ok) => setTimeout(ok, 500));
    expect(family.filter(alive)).toEqual([]);
  });
});

/** Every live descendant of pid (Linux /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}
/** Running (a zombie waiting for its reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
