/**
 * Optional: render the HTML report in headless Chromium and look at it. Skips (with the reason in
 * the test name) when Chromium (/usr/bin/chromium, or BN_CHROMIUM) or playwright-core is absent.
 * The screenshot goes to $BN_SCREENSHOT or <tmpdir>/bn-conformance-report.png.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/harness/runner.js';
import { createF32Kernel } from '../../src/teach/f32-kernel.js';
import { sampleErrorRatios } from '../../src/teach/error-ratios.js';
import { formatHtml } from '../../src/teach/html.js';
import { entriesPerCause, findCauses, shownEntries } from '../../src/harness/causes.js';

const executablePath = process.env.BN_CHROMIUM ?? '/usr/bin/chromium';
type Playwright = typeof import('playwright-core');
let pw: Playwright | undefined;
let reason = '';
if (!existsSync(executablePath)) reason = `no Chromium at ${executablePath} (apt-get install -y chromium)`;
else {
  try {
    pw = await import('playwright-core');
  } catch {
    reason = 'playwright-core is not installed';
  }
}

describe('HTML report in a real browser', () => {
  it.skipIf(!!reason)(`renders with its plot in headless Chromium${reason ? ` (skipped: ${reason})` : ''}`, async () => {
    const impl = createF32Kernel('one-pass', 'keras');
    const report = await runConformance(impl, { only: ['bn:edge:large-offset:*', 'bn:edge:m2:*'], runs: 10, seed: 3, golden: false });
    const html = formatHtml(report, { errorSamples: [await sampleErrorRatios(impl, { requests: 30, seed: 3 })] });
    const dir = mkdtempSync(join(tmpdir(), 'bn-html-'));
    const file = join(dir, 'report.html');
    writeFileSync(file, html);
    const browser = await pw!.chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1150, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(pathToFileURL(file).href);
      expect(await page.title()).toMatch(/teach-f32-one-pass — FAIL/);
      expect(await page.textContent('#verdict')).toBe('FAIL');
      // a string, so that this file needs no DOM typings
      const svg = (await page.evaluate(`(() => {
        const el = document.querySelector('.plot svg');
        if (!el) return null;
        const box = el.getBoundingClientRect();
        const labels = [...el.querySelectorAll('.axis-label')].map((t) => ({ text: t.textContent, w: t.getBBox().width }));
        const bars = [...el.querySelectorAll('rect.bar')].map((r) => r.getBoundingClientRect().height);
        return { w: box.width, h: box.height, labels, bars };
      })()`)) as { w: number; h: number; labels: Array<{ text: string; w: number }>; bars: number[] } | null;
      expect(svg).not.toBeNull();
      expect(svg!.w).toBeGreaterThan(400);
      expect(svg!.h).toBeGreaterThan(250);
      expect(svg!.labels).toHaveLength(2);
      for (const l of svg!.labels) expect(l.w).toBeGreaterThan(20);
      expect(svg!.bars.length).toBeGreaterThan(3);
      expect(svg!.bars.every((h) => h > 0)).toBe(true);
      // failures grouped by cause (src/harness/causes.ts): a section per cause, one per counterexample shown (axis variants folded)
      const causes = findCauses(report);
      expect(await page.locator('section.cause').count()).toBe(causes.length);
      expect(await page.locator('section.failure').count()).toBe(causes.reduce((n, c) => n + shownEntries(c, entriesPerCause(causes.length)).length, 0));
      for (const r of report.results.filter((x) => x.status === 'fail')) expect(await page.locator('table.checks').textContent()).toContain(r.id);
      expect(errors).toEqual([]);
      const shot = process.env.BN_SCREENSHOT ?? join(tmpdir(), 'bn-conformance-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(existsSync(shot)).toBe(true);
    } finally {
      await browser.close();
    }
  });
});
