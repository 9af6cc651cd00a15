import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { runConformance } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';
import { createF32Kernel } from '../../src/teach/f32-kernel.js';
import { sampleErrorRatios } from '../../src/teach/error-ratios.js';
import { formatHtml } from '../../src/teach/html.js';
import { findAll, hasClass, parseXml } from './xml.js';

const svgOf = (html: string) => {
  const m = html.match(/<svg[\s\S]*?<\/svg>/);
  expect(m, 'an inline <svg>').not.toBeNull();
  return parseXml(m![0]);
};

describe('formatHtml', () => {
  it('a failing run: verdict, summary, every check, the counterexample, and the error plot inline', async () => {
    const impl = createF32Kernel('one-pass', 'keras');
    const report = await runConformance(impl, { only: ['bn:edge:large-offset:*', 'bn:normalization:zero-mean:dtype=float32;axis=first'], runs: 10, seed: 3, golden: false });
    expect(report.ok).toBe(false);
    // make sure messages are escaped
    report.results[0]!.failure = { ...(report.results[0]!.failure ?? { message: '' }), message: 'a <script>alert(1)</script> & b' };
    report.results[0]!.status = 'fail';
    const sample = await sampleErrorRatios(impl, { requests: 10, seed: 3 });
    const html = formatHtml(report, { errorSamples: [sample] });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<div class="verdict fail" id="verdict">FAIL</div>');
    expect(html).not.toContain('<script>');
    expect(html).toContain('a &lt;script&gt;alert(1)&lt;/script&gt; &amp; b');
    for (const r of report.results) expect(html).toContain(r.id.replace(/&/g, '&amp;'));
    expect(html).toMatch(/counterexample: forwardTrain float32 shape/);
    expect(html).toMatch(/<section class="failure" id="fail-bn-/);
    const svg = svgOf(html);
    expect(findAll(svg, hasClass('axis-label')).map((e) => e.text)).toEqual([expect.stringContaining('error / allowed bound'), 'output elements']);
    expect(findAll(svg, hasClass('bar')).length).toBeGreaterThan(0);
    expect(html).not.toMatch(/<link|src="http|<script/);
  });

  it('a passing run without a sample says why there is no plot', async () => {
    const report = await runConformance(createReference('keras'), { only: ['bn:edge:m2:dtype=float64;axis=first'], runs: 5, seed: 1, golden: false });
    const html = formatHtml(report, { samplingNote: 'no forwardTrain here' });
    expect(report.ok).toBe(true);
    expect(html).toContain('<div class="verdict ok" id="verdict">PASS</div>');
    expect(html).toContain('no forwardTrain here');
    expect(html).not.toContain('<svg');
  });
});

describe('CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-teach-'));
  const out: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    out.length = 0;
  });
  const capture = () => vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));

  it('check --format html --out writes a report with its plot', async () => {
    capture();
    const file = join(dir, 'report.html');
    const code = await main(['node', 'bn-conformance', 'check', '--builtin', 'reference', '--only', 'bn:edge:m2:dtype=float32;axis=first', '--runs', '3', '--seed', '2', '--no-golden', '--format', 'html', '--out', file]);
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/PASS: 1 passed.*html report written/);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('bn:edge:m2:dtype=float32;axis=first');
    svgOf(html);
  });

  it('explain lists topics, prints one, and writes its plot', async () => {
    capture();
    expect(await main(['node', 'bn-conformance', 'explain'])).toBe(0);
    expect(out.join('')).toContain('tiny-batches');
    out.length = 0;
    const file = join(dir, 'eps.svg');
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['node', 'bn-conformance', 'explain', 'eps', '--svg', file])).toBe(0);
    expect(out.join('')).toContain('var/(var + eps)');
    const svg = parseXml(readFileSync(file, 'utf8'));
    expect(findAll(svg, hasClass('title'))[0]!.text).toContain('var / (var + eps)');
    expect(await main(['node', 'bn-conformance', 'explain', 'no-such-topic'])).toBe(2);
  });

  it('plot <name> --out writes that plot', async () => {
    capture();
    const file = join(dir, 'bias.svg');
    expect(await main(['node', 'bn-conformance', 'plot', 'running-variance-bias', '--out', file])).toBe(0);
    expect(findAll(parseXml(readFileSync(file, 'utf8')), hasClass('title'))[0]!.text).toBe('Bias of the running variance against m');
  });
});
