/**
 * Reports a first-time user can read (issue 22) and the inconclusive status (issue 21):
 * failures grouped by cause before the details, long request lists capped, hints where a
 * declaration is the cure, text and HTML under 100 KB for the worst broken kernels of the
 * gallery, and the inconclusive / interrupted verdicts in text, JUnit and HTML.
 */
import { beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript
import { createPlainBatchNorm } from '../../examples/plain-bn.mjs';
import type { BatchNormImplementation } from '../../src/contract/contract.js';
import { profiles } from '../../src/contract/profiles.js';
import { counterexampleHash, findCauses } from '../../src/harness/causes.js';
import { formatJson, formatJunit, formatText } from '../../src/harness/format.js';
import { runConformance } from '../../src/harness/runner.js';
import { createBuiltin } from '../../src/harness/builtins.js';
import type { CheckResult, ConformanceReport } from '../../src/harness/types.js';
import { sampleErrorRatios } from '../../src/teach/error-ratios.js';
import { formatHtml } from '../../src/teach/html.js';
import { mutant } from '../gallery/mutants.js';
import { findAll, hasClass, parseXml } from '../teach/xml.js';

const SEED = 20261207;
const ort = await import('onnxruntime-node').then(
  () => true,
  () => false,
);
/**
 * bn:scale (m up to 2^21) costs ~8 s of CPU per broken kernel and adds at most 6 failing checks;
 * the gallery spec leaves it out for the same reason. The full default runs, bn:scale included,
 * were measured when this was written: 15.5 KB text / 64 KB HTML (running-var-estimator-swapped)
 * and 29.5 KB / 82 KB (stats-over-all-channels), against 1.1 MB / 1.2 MB before grouping.
 */
const SKIP_SCALE = ['bn:scale'];
/** The brief's limit for a text or HTML report of any failing default run. */
const MAX_BYTES = 100 * 1024;
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
/** The HTML report as the CLI writes it: with the sampled error plot. */
const htmlOf = async (impl: BatchNormImplementation, r: ConformanceReport) => formatHtml(r, { errorSamples: [await sampleErrorRatios(impl, { requests: 60, seed: r.options.seed })] });

describe('one planted bug: a short cause summary before the details', () => {
  // a default run (25 runs per property, golden fixtures on; bn:scale aside): among the worst
  // reports of the gallery before grouping (1.1 MB of text), its convergence check sending 750 requests
  const impl = mutant(profiles.keras, 'running-var-estimator-swapped');
  let report: ConformanceReport;
  beforeAll(async () => {
    report = await runConformance(impl, { seed: SEED, skip: SKIP_SCALE });
  }, 60_000);

  it('groups dozens of failures into at most 5 causes, listed (with their checks) before any detail', () => {
    const causes = findCauses(report);
    expect(report.summary.failed).toBeGreaterThan(20);
    expect(causes.length).toBeGreaterThanOrEqual(1);
    expect(causes.length).toBeLessThanOrEqual(5);
    // every failing check is explained by exactly one cause
    const explained = causes.flatMap((c) => c.checks).sort();
    expect(explained).toEqual(report.results.filter((r) => r.status === 'fail').map((r) => r.id).sort());
    expect(causes[0]!.symptom).toContain('runningVar');
    const text = formatText(report);
    const summary = text.indexOf(`${report.summary.failed} failures, ${causes.length} distinct cause`);
    const details = text.indexOf('Failures, by cause');
    const firstBlock = text.indexOf('\n  fast-check: {');
    expect(summary).toBeGreaterThan(0);
    expect(details).toBeGreaterThan(summary);
    expect(firstBlock).toBeGreaterThan(details);
    expect(text.slice(summary, details)).toMatch(/^ {2}1\. forwardTrain's runningVar: \d+ checks \(.*bn:agreement:forward-train ×6/m);
    const html = formatHtml(report);
    expect(html.indexOf('<ol class="causes"')).toBeGreaterThan(0);
    expect(html.indexOf('<ol class="causes"')).toBeLessThan(html.indexOf('<section class="cause"'));
  });

  it('folds the axis variants of one check into one entry that lists them', () => {
    const entry = findCauses(report)
      .flatMap((c) => c.entries)
      .find((e) => e.checks[0] === 'bn:edge:m2:dtype=float32;axis=first');
    expect(entry?.checks).toEqual(['bn:edge:m2:dtype=float32;axis=first', 'bn:edge:m2:dtype=float32;axis=last', 'bn:edge:m2:dtype=float32;axis=other']);
    expect(entry?.axes).toEqual(['first', 'last', 'other']);
  });

  it('caps a 750-request counterexample in text and HTML; the JSON report keeps every request and the causes', async () => {
    const conv = report.results.find((r) => r.id.startsWith('bn:running-stats:convergence') && r.status === 'fail')!;
    const n = conv.failure!.counterexample!.requests!.length;
    expect(n).toBeGreaterThan(100);
    const text = formatText(report);
    expect(text).toContain(`  request 3 of ${n} (forwardTrain): {`);
    expect(text).toContain(`  … ${n - 6} more requests (complete in the JSON report)\n  request ${n - 2} of ${n} (forwardTrain): {`);
    expect(text).not.toContain(`request 4 of ${n} `);
    const html = await htmlOf(impl, report);
    expect(html).toContain(`… ${n - 6} more requests (complete in the JSON report)`);
    expect(html).not.toContain(`request 4 of ${n} `);
    const json = JSON.parse(formatJson(report)) as ConformanceReport;
    expect(json.results.find((r) => r.id === conv.id)!.failure!.counterexample!.requests).toHaveLength(n);
    expect(json.causes).toEqual(JSON.parse(JSON.stringify(findCauses(report))));
    expect(json.schemaVersion).toBe(1);
    // a report read back from JSON (NaN and Infinity became null) formats without throwing
    expect(formatText(json)).toContain('distinct cause');
    expect(formatHtml(json)).toContain('class="cause"');
  });

  it('text and HTML stay under 100 KB', async () => {
    expect(bytes(formatText(report))).toBeLessThan(MAX_BYTES);
    expect(bytes(formatText(report, { verbose: true }))).toBeLessThan(MAX_BYTES);
    expect(bytes(await htmlOf(impl, report))).toBeLessThan(MAX_BYTES);
  });
});

describe('size: the broken kernel with the most failing checks', () => {
  it('stats over all channels (about 200 failing checks, 8 causes): text and HTML under 100 KB', async () => {
    const impl = mutant(profiles.keras, 'stats-over-all-channels');
    const report = await runConformance(impl, { seed: SEED, skip: SKIP_SCALE });
    expect(report.summary.failed).toBeGreaterThan(150);
    // one planted bug, every statistic wrong: the outputs computed from them go with them
    const causes = findCauses(report);
    expect(causes.length).toBeLessThanOrEqual(5);
    expect(causes[0]!.symptom).toMatch(/^forwardTrain's mean and variance \(and y, .*computed from them\)/);
    const text = formatText(report);
    const html = await htmlOf(impl, report);
    expect(bytes(text), 'text').toBeLessThan(MAX_BYTES);
    expect(bytes(html), 'html').toBeLessThan(MAX_BYTES);
    // every failing check is still named in both
    for (const r of report.results.filter((x) => x.status === 'fail')) {
      expect(text).toContain(`✗ ${r.id}  (cause `);
      expect(html).toContain(r.id);
    }
  }, 60_000);
});

describe('other planted bugs', () => {
  for (const [bug, profile] of [
    ['momentum-inverted', profiles.pytorch],
    ['backward-missing-mean-term', profiles.keras],
    ['running-var-nan-at-m1', profiles['tensorflow-fused']],
  ] as const) {
    it(`${bug}: at most 5 causes, no hint`, async () => {
      const report = await runConformance(mutant(profile, bug), { seed: SEED, runs: 5, golden: false, skip: SKIP_SCALE });
      const causes = findCauses(report);
      expect(report.summary.failed).toBeGreaterThan(0);
      expect(causes.length).toBeLessThanOrEqual(5);
      expect(causes.flatMap((c) => c.hints ?? [])).toEqual([]);
    });
  }
});

// ---- hints ---------------------------------------------------------------------------------

const SMALLEST_NORMAL_F32 = 2 ** -126;
const flush = (a: unknown) => {
  if (!(a instanceof Float32Array)) return a;
  return a.map((v) => (Math.abs(v) < SMALLEST_NORMAL_F32 ? 0 : v));
};
const flushAll = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, flush(v)])) as T;

/** The plain kernel as a flush-to-zero GPU shader computes: float32 subnormals in and out become 0. */
function flushToZero(declare: boolean): BatchNormImplementation {
  const plain = createPlainBatchNorm('keras') as BatchNormImplementation;
  return {
    ...plain,
    name: 'ftz',
    dtypes: ['float32'],
    ...(declare ? { accumulation: { dtype: 'float64', order: 'sequential', subnormals: 'flush-to-zero' } } : {}),
    forwardTrain: (req) => flushAll(plain.forwardTrain!(flushAll(req)) as never),
    forwardInfer: (req) => flushAll(plain.forwardInfer!(flushAll(req)) as never),
  };
}

/** The plain kernel as an ONNX model runs float64: inputs, eps and momentum in float32, results widened back. */
function float32Inside(): BatchNormImplementation {
  const plain = createPlainBatchNorm('keras') as BatchNormImplementation;
  const narrow = <T extends { eps?: number; momentum?: number }>(req: T): T => {
    const out = Object.fromEntries(Object.entries(req).map(([k, v]: [string, unknown]) => [k, v instanceof Float64Array ? Float32Array.from(v) : v])) as T;
    if (req.eps !== undefined) out.eps = Math.fround(req.eps);
    if (req.momentum !== undefined) out.momentum = Math.fround(req.momentum);
    return out;
  };
  const widen = (wide: boolean, o: Record<string, unknown>) => (wide ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v instanceof Float32Array ? Float64Array.from(v) : v])) : o);
  return {
    ...plain,
    name: 'float32-inside',
    forwardTrain: (req) => widen(req.x instanceof Float64Array, plain.forwardTrain!(narrow(req)) as never) as never,
    forwardInfer: (req) => widen(req.x instanceof Float64Array, plain.forwardInfer!(narrow(req)) as never) as never,
  };
}

describe('hints where the cure is a declaration', () => {
  it('subnormals flushed to zero: the cause says to declare flush-to-zero (text, HTML, JSON); declared, the hint is gone', async () => {
    const report = await runConformance(flushToZero(false), { seed: SEED, runs: 5, golden: false, only: ['bn:edge:denormal'] });
    const causes = findCauses(report);
    expect(causes).toHaveLength(1);
    const hint = causes[0]!.hints?.find((h) => h.kind === 'flush-to-zero');
    expect(hint?.text).toMatch(/if your kernel flushes subnormals \(GPU shaders may\), declare `accumulation: \{ dtype: 'float64', order: 'sequential', subnormals: 'flush-to-zero' \}`/);
    expect(formatText(report)).toContain(`hint: ${hint!.text}`);
    expect(formatHtml(report)).toContain('<div class="hint">hint: ');
    expect((JSON.parse(formatJson(report)) as ConformanceReport).causes![0]!.hints![0]!.kind).toBe('flush-to-zero');
    const declared = await runConformance(flushToZero(true), { seed: SEED, runs: 5, golden: false, only: ['bn:edge:denormal'] });
    expect(findCauses(declared).flatMap((c) => c.hints ?? [])).toEqual([]);
  });

  it('float64 computed in float32 (only float64 fails, its results float32 numbers): the cause says so', async () => {
    const report = await runConformance(float32Inside(), { seed: SEED, runs: 10, golden: false, only: ['bn:agreement:forward-train', 'bn:agreement:forward-infer'] });
    expect(report.results.filter((r) => r.id.includes('dtype=float32')).every((r) => r.status === 'pass')).toBe(true);
    const causes = findCauses(report);
    expect(causes.length).toBeGreaterThan(0);
    for (const c of causes) expect(c.hints?.map((h) => h.kind)).toEqual(['float32-arithmetic']);
    expect(formatText(report)).toMatch(/hint: only float64 fails \(float32 passes\), and its float64 results are float32 numbers \(e\.g\. [-0-9.e]+\) or off by float32-sized errors .*seems to compute in float32/);
  });

  it.skipIf(!ort)('onnxruntime (float32 epsilon and momentum attributes): every float64 cause carries the float32 hint', async () => {
    const report = await runConformance(await createBuiltin('onnxruntime'), { seed: 3, runs: 10, golden: false, only: ['bn:agreement:forward-train', 'bn:edge:m2', 'bn:edge:single-channel'] });
    const causes = findCauses(report);
    expect(report.results.filter((r) => r.status === 'fail').every((r) => r.id.includes('dtype=float64'))).toBe(true);
    expect(causes.length).toBeGreaterThan(1);
    for (const c of causes) expect(c.hints?.map((h) => h.kind), c.symptom).toEqual(['float32-arithmetic']);
  });

  it('no float32 hint when float64 results are neither float32 numbers nor float32-close (a float64 bug)', async () => {
    // the swapped running-variance estimator in float64 only: float32 passes, float64 is 10% off
    const bad = mutant(profiles.keras, 'running-var-estimator-swapped');
    const plain = createPlainBatchNorm('keras') as BatchNormImplementation;
    const mixed: BatchNormImplementation = { ...plain, name: 'float64-bug', forwardTrain: (req) => (req.x instanceof Float64Array ? bad : plain).forwardTrain!(req) };
    const report = await runConformance(mixed, { seed: SEED, runs: 5, golden: false, only: ['bn:agreement:forward-train', 'bn:edge:m2'] });
    expect(report.summary.failed).toBeGreaterThan(0);
    expect(findCauses(report).flatMap((c) => c.hints ?? [])).toEqual([]);
  });
});

// ---- hand-built reports: grouping, inconclusive, interrupted --------------------------------

const base = (results: CheckResult[], over: Partial<ConformanceReport> = {}): ConformanceReport => {
  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  const summary = { total: results.length, passed: count('pass'), failed: count('fail'), notSupported: count('not-supported'), skipped: count('skipped'), inconclusive: count('inconclusive') };
  return {
    schemaVersion: 1,
    tool: { name: 'bn-conformance', version: '0.3.0' },
    implementation: { name: 'hand-built', dtypes: ['float32'], axes: 'any', ops: ['forwardTrain'] },
    profile: profiles.keras,
    options: { runs: 1, seed: 1, only: [], skip: [], timeoutMs: 1000 },
    startedAt: '2026-12-07T00:00:00.000Z',
    durationMs: 1000,
    summary,
    ok: summary.failed === 0 && summary.inconclusive === 0,
    results,
    ...over,
  };
};
const pass = (id: string, comparisons?: { values: number; inconclusive: number }): CheckResult => ({ id, family: 'agreement', title: 't', status: 'pass', durationMs: 1, ...(comparisons ? { comparisons } : {}) });
const inconclusive = (id: string, values: number, unbounded: number): CheckResult => ({ id, family: 'edge', title: 't', status: 'inconclusive', durationMs: 1, comparisons: { values, inconclusive: unbounded } });
const request = (x: number[]) => ({ dtype: 'float32', x, shape: [x.length, 1], axis: 1, gamma: [1], beta: [0], eps: 1e-3 });
const fail = (id: string, output: string, x: number[], message = `${output}[0] = 2 but expected 1`): CheckResult => ({
  id,
  family: id.split(':')[1]!,
  title: 't',
  status: 'fail',
  durationMs: 1,
  failure: { message, worst: { output, index: 0, channel: 0, expected: 1, got: 2, error: 1, bound: 1e-6, where: `${output}[0]` }, counterexample: { op: 'forwardTrain', dtype: 'float32', shape: [x.length, 1], axis: 1, request: request(x) } },
});

describe('grouping rules', () => {
  it('a shared counterexample joins different symptoms; distinct symptoms with distinct counterexamples stay apart', () => {
    const r = base([
      fail('bn:a:one:dtype=float32;axis=first', 'y', [1, 2]),
      fail('bn:b:two:dtype=float32;axis=first', 'mean', [1, 2]), // same request: same cause
      fail('bn:c:three:dtype=float32;axis=first', 'dx', [5, 6]),
      fail('bn:c:three:dtype=float32;axis=last', 'dx', [6, 5]), // axis variant: same entry
    ]);
    const causes = findCauses(r);
    expect(causes.map((c) => c.checks)).toEqual([
      ['bn:a:one:dtype=float32;axis=first', 'bn:b:two:dtype=float32;axis=first'],
      ['bn:c:three:dtype=float32;axis=first', 'bn:c:three:dtype=float32;axis=last'],
    ]);
    expect(causes[1]!.symptom).toBe("backward's dx");
    expect(causes[1]!.entries).toEqual([{ checks: ['bn:c:three:dtype=float32;axis=first', 'bn:c:three:dtype=float32;axis=last'], axes: ['first', 'last'], counterexample: expect.stringMatching(/^[0-9a-f]{16}$/) }]);
  });
  it('outputs computed from a wrong statistic of the same op go with it; alone, a dependent is its own cause', () => {
    const withStats = findCauses(
      base([
        fail('bn:a:one:dtype=float32;axis=first', 'mean', [1, 2]),
        fail('bn:b:two:dtype=float32;axis=first', 'y', [3, 4]),
        fail('bn:c:three:dtype=float32;axis=first', 'runningMean', [5, 6]),
        fail('bn:d:four:dtype=float32;axis=first', 'runningVar', [7, 8]), // computed from the variance, which is right
      ]),
    );
    expect(withStats.map((c) => [c.symptom, c.checks.length])).toEqual([
      ["forwardTrain's mean (and y and runningMean, computed from it)", 3],
      ["forwardTrain's runningVar", 1],
    ]);
    const alone = findCauses(base([fail('bn:b:two:dtype=float32;axis=first', 'y', [3, 4]), fail('bn:d:four:dtype=float32;axis=first', 'runningVar', [7, 8])]));
    expect(alone.map((c) => c.symptom)).toEqual(["forwardTrain's y", "forwardTrain's runningVar"]);
  });
  it('the counterexample hash is stable: key order and typed arrays do not change it, a value does', () => {
    const a = counterexampleHash({ op: 'forwardTrain', request: { x: [1, 2], eps: 0.001 } });
    expect(counterexampleHash({ op: 'forwardTrain', request: { eps: 0.001, x: Float64Array.from([1, 2]) } as never })).toBe(a);
    expect(counterexampleHash({ op: 'forwardTrain', request: { x: [1, 3], eps: 0.001 } })).not.toBe(a);
    expect(counterexampleHash({ script: 'fixture tfjs/x.json' })).toBeUndefined();
  });
});

describe('the inconclusive status', () => {
  const results = [pass('bn:agreement:forward-train:dtype=float32;axis=first', { values: 200, inconclusive: 4 }), inconclusive('bn:edge:eps-zero:dtype=float32;axis=first', 40, 40)];

  it('text: its own marker, its count in the verdict line, INCONCLUSIVE, and each fraction', () => {
    const text = formatText(base(results));
    expect(text).toContain('? bn:edge:eps-zero:dtype=float32;axis=first (inconclusive: 40 of 40 values (100%) had no informative bound)');
    expect(text).toMatch(/\nINCONCLUSIVE: 1 passed, 0 failed, 1 inconclusive, 0 skipped, 0 not supported \(2 checks, 1\.0 s\)$/);
    expect(text).toContain('Checks that could not bound everything');
    expect(text).toContain('  bn:agreement:forward-train:dtype=float32;axis=first: 4 of 200 values (2.0%) [pass]');
    expect(formatText(base(results), { verbose: true })).toContain('✓ bn:agreement:forward-train:dtype=float32;axis=first 1 ms, 4 of 200 values (2.0%) unbounded');
    // allowed: the run passes, and says the inconclusive check was allowed
    const allowed = base(results, { ok: true });
    allowed.options.allowInconclusive = true;
    expect(formatText(allowed)).toMatch(/\nPASS: 1 passed, 0 failed, 1 inconclusive \(allowed\), 0 skipped/);
    // a failure outranks it
    expect(formatText(base([...results, fail('bn:x:y:dtype=float32;axis=first', 'y', [1, 2])]))).toMatch(/\nFAIL: 1 passed, 1 failed, 1 inconclusive/);
  });

  it('JUnit: a failure of type inconclusive, or <skipped message="inconclusive: …"> when allowed', () => {
    const strict = formatJunit(base(results));
    expect(strict).toMatch(/<testcase classname="bn.edge" name="bn:edge:eps-zero:dtype=float32;axis=first"[^>]*>\s*<failure message="inconclusive: 40 of 40 values \(100%\) had no informative bound" type="inconclusive"\/>/);
    const allowed = base(results, { ok: true });
    allowed.options.allowInconclusive = true;
    const xml = formatJunit(allowed);
    expect(xml).not.toContain('type="inconclusive"');
    const doc = parseXml(xml.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, ''));
    const skipped = findAll(doc, (e) => e.name === 'skipped');
    expect(skipped.map((e) => e.attrs.message)).toEqual(['inconclusive: 40 of 40 values (100%) had no informative bound']);
    expect(findAll(doc, (e) => e.name === 'testsuites')[0]!.attrs.skipped).toBe('1');
  });

  it('HTML: its own colour and label, the verdict, and an unbounded column with each fraction', () => {
    const html = formatHtml(base(results));
    expect(html).toContain('<div class="verdict inconclusive" id="verdict">INCONCLUSIVE</div>');
    expect(html).toMatch(/\.verdict\.inconclusive\{background:#[0-9a-f]{6}\}/);
    expect(html).toContain('<tr class="inconclusive"><td>bn:edge:eps-zero:dtype=float32;axis=first</td><td>? inconclusive</td><td>1 ms</td><td>40 of 40 values (100%)</td>');
    expect(html).toContain('<td>4 of 200 values (2.0%)</td>');
    expect(html).toContain('<th>unbounded</th>');
    const table = parseXml(html.slice(html.indexOf('<table class="checks">'), html.indexOf('</table>', html.indexOf('<table class="checks">')) + 8));
    expect(findAll(table, hasClass('inconclusive'))).toHaveLength(1);
  });
});

describe('an interrupted run', () => {
  const r = base([pass('bn:agreement:forward-train:dtype=float32;axis=first'), fail('bn:x:y:dtype=float32;axis=first', 'y', [1, 2])], { interrupted: true, ok: false });
  it('says interrupted and partial in the verdict line (text, HTML, JUnit)', () => {
    const text = formatText(r);
    expect(text).toContain('INTERRUPTED: the run stopped early; the results below are partial (2 checks finished)');
    expect(text).toMatch(/\nINTERRUPTED: 1 passed, 1 failed, 0 inconclusive, 0 skipped, 0 not supported; interrupted after 2 checks, the results are partial \(2 checks, 1\.0 s\)$/);
    const html = formatHtml(r);
    expect(html).toContain('<div class="verdict interrupted" id="verdict">INTERRUPTED (partial results, 1 failed)</div>');
    expect(html).toContain('<p class="interrupted" id="interrupted">Interrupted: the run stopped early; these results are partial (2 checks finished).</p>');
    expect(formatJunit(r)).toContain('<property name="interrupted" value="true: the run stopped early, these results are partial"/>');
  });
});
