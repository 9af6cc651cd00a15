/**
 * The README stays true (issue 22): what it tells a new user to copy is taken out of README.md
 * and run. The module skeleton (`// my-bn.mjs`) must PASS as printed, its mixed-precision variant
 * (`// my-bn-f16.mjs`, on bn-conformance/half) too, and the bug its report section shows (the
 * variance divided by m - 1) must fail; the --exec exchange must be what the harness sends and
 * what examples/numpy_adapter.py answers, line for line. Few runs: the full check of the same
 * modules is what the user path (scripts/user-path.sh) and the README's own commands run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BatchNormImplementation, DType, ForwardTrainRequest } from '../src/contract/contract.js';
import { fieldDtype } from '../src/contract/dtypes.js';
import { createExecImplementation, decodeArray } from '../src/harness/exec.js';
import { runConformance } from '../src/harness/runner.js';
import type { ConformanceReport } from '../src/harness/types.js';

const readme = readFileSync('README.md', 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'bn-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every fenced block of the README (a block inside a list item loses its indent), with its info string. */
function blocks(): Array<{ lang: string; body: string }> {
  return [...readme.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```$/gm)].map((m) => ({
    lang: m[2]!,
    body: m[3]!
      .split('\n')
      .map((l) => (l.startsWith(m[1]!) ? l.slice(m[1]!.length) : l))
      .join('\n'),
  }));
}

/** The js block that starts with `// <file>`, edited, written to the temporary folder as `as` (a module is imported once per name). */
function writeBlock(file: string, edit: (s: string) => string = (s) => s, as = file): string {
  const found = blocks().filter((b) => b.lang === 'js' && b.body.startsWith(`// ${file}`));
  expect(found.length, `README.md has one js block starting "// ${file}"`).toBe(1);
  const path = join(dir, as);
  writeFileSync(path, edit(found[0]!.body));
  return path;
}

async function load(path: string): Promise<BatchNormImplementation> {
  return ((await import(pathToFileURL(path).href)) as { default: BatchNormImplementation }).default;
}

/** What failed, for the assertion message: each failing or inconclusive check and its first line. */
const notPassing = (r: ConformanceReport) =>
  r.results.filter((x) => x.status === 'fail' || x.status === 'inconclusive').map((x) => `${x.id}: ${x.status} ${x.failure?.message.split('\n')[0] ?? ''}`);

// bn-conformance/half resolves to dist/ in an installed package; here to the source it is built from
const halfSource = resolve('src/half.ts');
const skeleton = () => writeBlock('my-bn.mjs');
// bn:scale (m up to 2^21) costs ~4 s of CPU in the judge's own reference whatever the kernel: left to
// the full check the README tells users to run (verified by hand at seeds 1-4, --runs 100)
const SKIP_SCALE = ['bn:scale'];

describe('README: the module skeleton', () => {
  it('passes as printed: every BN check it supports, float32 (2 runs per property, golden fixtures included)', async () => {
    const report = await runConformance(await load(skeleton()), { runs: 2, seed: 1, skip: SKIP_SCALE });
    expect(notPassing(report)).toEqual([]);
    expect(report.ok).toBe(true);
    // the three ops were judged, not skipped: agreement, gradients and the golden replays all ran
    for (const id of ['bn:agreement:forward-train:dtype=float32;axis=first', 'bn:agreement:forward-infer:dtype=float32;axis=last', 'bn:gradients:analytic-training:dtype=float32;axis=other']) {
      expect(report.results.find((r) => r.id === id)?.status, id).toBe('pass');
    }
    expect(report.results.filter((r) => r.id.startsWith('bn:golden:') && r.status === 'pass').length).toBeGreaterThan(10);
  });

  it('its mixed-precision variant (bn-conformance/half) passes the float16-with-float32-parameters checks', async () => {
    skeleton(); // the variant imports ./my-bn.mjs
    const path = writeBlock('my-bn-f16.mjs', (s) => s.replace(`from 'bn-conformance/half'`, `from ${JSON.stringify(pathToFileURL(halfSource).href)}`));
    const impl = await load(path);
    const report = await runConformance(impl, { runs: 2, seed: 1, only: ['*;params=float32;*'], skip: SKIP_SCALE, golden: false });
    expect(notPassing(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.summary.passed).toBeGreaterThan(40);
    expect(report.results.every((r) => r.id.includes('dtype=float16;params=float32'))).toBe(true);
  });

  it('the bug its report section shows (variance over m - 1) fails the check it shows, with the numbers it shows', async () => {
    // the report block: its first bare check ID, and that check's worst element
    const report = blocks().find((b) => /^\d+ failures?, \d+ distinct causes?:/.test(b.body));
    expect(report, 'README.md has a report block starting with the cause summary').toBeDefined();
    const id = /^(bn:\S+)$/m.exec(report!.body)?.[1];
    const worst = /^ {2}worst: .*expected (\S+), got (\S+),/m.exec(report!.body);
    expect(id && worst, 'the report block shows a check ID and its worst element').toBeTruthy();
    const seed = Number(/`check \.\/broken-bn\.mjs --seed (\d+)`/.exec(readme)?.[1]);
    expect(seed).toBeGreaterThan(0);
    const biased = '** 2, 0) / I.length)';
    const path = writeBlock(
      'my-bn.mjs',
      (s) => {
        expect(s, 'the skeleton still computes the variance as the README report section assumes').toContain(biased);
        return s.replace(biased, '** 2, 0) / (I.length - 1))');
      },
      'broken-bn.mjs',
    );
    // the README's command runs the default 25 runs per property: the same seed, the same shrunk case
    const r = await runConformance(await load(path), { runs: 25, seed, only: [id!], golden: false });
    expect(r.results.map((x) => x.status)).toEqual(['fail']);
    const failure = JSON.stringify(r.results[0]!.failure);
    expect(failure).toContain(worst![1]!);
    expect(failure).toContain(worst![2]!);
  });
});

// --- the --exec exchange -----------------------------------------------------------------------

type Json = Record<string, unknown>;
const exchange = (() => {
  const b = blocks().find((x) => x.body.startsWith('→ {"id":0,"op":"describe"}'));
  if (!b) throw new Error('README.md has no block starting with the describe request');
  const lines = b.body.trim().split('\n');
  const sent = lines.filter((l) => l.startsWith('→ ')).map((l) => l.slice(2));
  const answered = lines.filter((l) => l.startsWith('← ')).map((l) => l.slice(2));
  return { sent, answered, parsedSent: sent.map((l) => JSON.parse(l) as Json), parsedAnswers: answered.map((l) => JSON.parse(l) as Json) };
})();

function pythonWithNumpy(): string | undefined {
  for (const py of [process.env.BN_PYTHON, 'python3'].filter((p): p is string => !!p)) {
    try {
      execFileSync(py, ['-c', 'import numpy'], { stdio: 'ignore', timeout: 30_000 });
      return py;
    } catch {
      // next
    }
  }
  return undefined;
}
const numpyPy = pythonWithNumpy();

/** A README request line as the JS request the harness would be given (arrays decoded by their dtype). */
function requestOf(line: Json): ForwardTrainRequest {
  const precision = { dtype: line.dtype as DType, paramDtype: line.paramDtype as DType };
  const req: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(line)) {
    if (k === 'id' || k === 'op') continue;
    req[k] = typeof v === 'object' && v !== null && 'b64' in v ? decodeArray(v as { b64: string }, fieldDtype(k, precision), k) : v;
  }
  return req as unknown as ForwardTrainRequest;
}

describe('README: the --exec exchange', () => {
  it('alternates request and answer, ids 0, 1, 2…, describe first, and shows a result and an error answer', () => {
    const { parsedSent, parsedAnswers } = exchange;
    expect(parsedSent.length).toBe(parsedAnswers.length);
    expect(parsedSent.map((m) => m.id)).toEqual(parsedSent.map((_, i) => i));
    expect(parsedAnswers.map((m) => m.id)).toEqual(parsedSent.map((_, i) => i));
    expect(parsedSent[0]).toEqual({ id: 0, op: 'describe' });
    expect(parsedAnswers.some((a) => typeof a.error === 'string')).toBe(true);
    expect(parsedAnswers.some((a) => a.id !== 0 && a.error === undefined)).toBe(true);
  });

  it('is what the harness sends, and the harness reads its answers (a child that replays the README)', async () => {
    const { sent, answered, parsedSent, parsedAnswers } = exchange;
    const log = join(dir, 'received.ndjson');
    writeFileSync(log, '');
    const stub = join(dir, 'replay-readme.mjs');
    // answers by id, every line received appended to the log
    writeFileSync(
      stub,
      `import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const answers = ${JSON.stringify(answered)};
for await (const line of createInterface({ input: process.stdin })) {
  appendFileSync(${JSON.stringify(log)}, line + '\\n');
  process.stdout.write(answers[JSON.parse(line).id] + '\\n');
}
`,
    );
    const impl = await createExecImplementation(`${JSON.stringify(process.execPath)} ${JSON.stringify(stub)}`);
    try {
      const describe0 = parsedAnswers[0]!;
      expect({ name: impl.name, profile: impl.profile, dtypes: impl.dtypes }).toEqual({ name: describe0.name, profile: describe0.profile, dtypes: describe0.dtypes });
      for (const op of describe0.ops as string[]) expect(typeof (impl as unknown as Record<string, unknown>)[op], op).toBe('function');
      for (let i = 1; i < parsedSent.length; i++) {
        const line = parsedSent[i]!;
        const call = (impl as unknown as Record<string, (r: unknown) => Promise<Record<string, unknown>>>)[line.op as string]!(requestOf(line));
        const answer = parsedAnswers[i]!;
        if (typeof answer.error === 'string') await expect(call).rejects.toThrow(answer.error);
        else {
          const result = await call;
          const expected = requestOf({ ...answer, dtype: line.dtype, paramDtype: line.paramDtype });
          expect(Object.keys(result).sort()).toEqual(Object.keys(answer).filter((k) => k !== 'id').sort());
          for (const [k, v] of Object.entries(expected)) if (ArrayBuffer.isView(v)) expect(result[k], k).toEqual(v);
        }
      }
    } finally {
      await impl.close();
    }
    const received = readFileSync(log, 'utf8').trim().split('\n');
    expect(received.map((l) => JSON.parse(l) as Json)).toEqual(parsedSent);
    expect(received.length).toBe(sent.length);
  });

  it.skipIf(!numpyPy)(`is what examples/numpy_adapter.py answers${numpyPy ? '' : ' [skipped: no python with numpy]'}`, () => {
    const { sent, parsedAnswers } = exchange;
    const out = execFileSync(numpyPy!, ['examples/numpy_adapter.py'], { input: `${sent.join('\n')}\n`, encoding: 'utf8', timeout: 30_000 });
    const got = out.trim().split('\n').map((l) => JSON.parse(l) as Json);
    expect(got.length).toBe(parsedAnswers.length);
    // describe: every field as printed; the README shortens `ops` to BatchNorm's, so those must be among the adapter's
    const { ops: readmeOps, ...readmeDescribe } = parsedAnswers[0]!;
    const { ops: adapterOps, ...adapterDescribe } = got[0]!;
    expect(adapterDescribe).toEqual(readmeDescribe);
    expect(adapterOps).toEqual(expect.arrayContaining(readmeOps as string[]));
    expect(got.slice(1)).toEqual(parsedAnswers.slice(1));
  });
});
