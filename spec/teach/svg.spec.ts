import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { histogram, linePlot } from '../../src/teach/svg.js';
import { linearTicks, logTicks } from '../../src/teach/svg.js';
import { plotIndex } from '../../src/teach/index.js';
import { findAll, hasClass, parseXml } from './xml.js';

function checkPlot(svg: string, opts: { legend?: boolean } = {}) {
  const root = parseXml(svg);
  expect(root.name).toBe('svg');
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
  const labels = findAll(root, hasClass('axis-label'));
  expect(labels.map((l) => l.attrs.class)).toEqual(['axis-label x-label', 'axis-label y-label']);
  for (const l of labels) expect(l.text.trim().length).toBeGreaterThan(0);
  expect(findAll(root, hasClass("title"))[0]?.text.trim().length).toBeGreaterThan(0);
  expect(findAll(root, hasClass('x-axis'))).toHaveLength(1);
  expect(findAll(root, hasClass('y-axis'))).toHaveLength(1);
  const ticks = findAll(root, hasClass('tick'));
  expect(ticks.length).toBeGreaterThanOrEqual(4);
  for (const t of ticks) expect(t.text).toMatch(/^-?[\d.]+(e-?\d+)?$/);
  if (opts.legend) expect(findAll(root, hasClass('legend-entry')).length).toBeGreaterThanOrEqual(2);
  // something is drawn
  const marks = findAll(root, (e) => e.name === 'polyline' || e.name === 'circle' || hasClass('bar')(e));
  expect(marks.length).toBeGreaterThan(0);
  for (const e of findAll(root, () => true)) for (const v of Object.values(e.attrs)) expect(v).not.toMatch(/NaN|Infinity|undefined/);
  return root;
}

/** A grouping diagram: a title, panels whose cells each name a group, every group the panel's data-m cells. */
function checkDiagram(svg: string) {
  const root = parseXml(svg);
  expect(root.name).toBe('svg');
  expect(findAll(root, hasClass('title'))[0]?.text.trim().length).toBeGreaterThan(0);
  const panels = findAll(root, hasClass('panel'));
  expect(panels.length).toBeGreaterThan(0);
  for (const p of panels) {
    const cells = findAll(p, hasClass('cell'));
    const sizes = new Map<string, number>();
    for (const c of cells) sizes.set(c.attrs['data-group']!, (sizes.get(c.attrs['data-group']!) ?? 0) + 1);
    expect(sizes.size, p.attrs['data-name']).toBe(Number(p.attrs['data-groups']));
    for (const n of sizes.values()) expect(n).toBe(Number(p.attrs['data-m']));
  }
  for (const e of findAll(root, () => true)) for (const v of Object.values(e.attrs)) expect(v).not.toMatch(/NaN|Infinity|undefined/);
  return root;
}

describe('svg primitives', () => {
  it('ticks: nice linear steps, decades on log axes', () => {
    expect(linearTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(linearTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(logTicks(1e-3, 1e2)).toEqual([1e-3, 1e-2, 1e-1, 1, 10, 100]);
    expect(logTicks(1e-12, 1e12).length).toBeLessThanOrEqual(9);
  });

  it('a log-log plot has axes, labels, a legend, and drops non-positive points', () => {
    const svg = linePlot({
      title: 'T <&> "q"',
      xLabel: 'x & more',
      yLabel: 'y',
      xScale: 'log',
      yScale: 'log',
      series: [
        { name: 'a', points: [[1, 1], [10, 100], [100, 0], [1000, NaN]] },
        { name: 'b', points: [[1, 2], [10, 20]] },
      ],
    });
    const root = checkPlot(svg, { legend: true });
    expect(findAll(root, hasClass('title'))[0]!.text).toBe('T &lt;&amp;&gt; &quot;q&quot;');
    expect(findAll(root, (e) => e.name === 'circle')).toHaveLength(4);
    const tickTexts = findAll(root, hasClass('tick')).map((t) => t.text);
    // x: the NaN point at 1000 and the y = 0 point at 100 are dropped, so x spans 1..10; y spans 1..100
    expect(tickTexts).toEqual(['1', '10', '1', '10', '100']);
  });

  it('a histogram stacks its series and draws the reference line', () => {
    const svg = histogram({ title: 'h', xLabel: 'ratio', yLabel: 'count', edges: [1e-3, 1e-2, 1e-1, 1, 10], xScale: 'log', bars: [{ name: 'a', counts: [1, 2, 3, 0] }, { name: 'b', counts: [0, 1, 1, 5] }], refLines: [{ axis: 'x', value: 1, label: 'bound' }] });
    const root = checkPlot(svg, { legend: true });
    const bars = findAll(root, hasClass('bar'));
    expect(bars.map((b) => Number(b.attrs['data-count']))).toEqual([1, 2, 1, 3, 1, 5]);
    expect(findAll(root, hasClass('ref-line'))).toHaveLength(1);
  });

  it('the checker rejects malformed XML', () => {
    expect(() => parseXml('<svg><g></svg>')).toThrow();
    expect(() => parseXml('<svg><text>a < b</text></svg>')).toThrow();
    expect(() => parseXml('<svg><text>a &nbsp; b</text></svg>')).toThrow();
  });
});

describe('every teaching plot', async () => {
  const { TOPICS } = await import('../../src/teach/index.js');
  const data = new Map(await Promise.all(TOPICS.filter((t) => Object.keys(t.plots).length).map(async (t) => [t.id, await t.compute()] as const)));
  for (const { plot, topic } of plotIndex()) {
    it(`${plot} is a valid SVG with axes and labels, and docs/plots/${plot}.svg is up to date`, () => {
      const svg = topic.plots[plot]!(data.get(topic.id));
      // a grouping diagram (svg.ts groupDiagram) has panels of cells, not axes
      if (hasClass('diagram')(parseXml(svg))) checkDiagram(svg);
      else checkPlot(svg, { legend: true });
      const committed = `docs/plots/${plot}.svg`;
      expect(existsSync(committed), `${committed} missing: npx tsx scripts/render-plots.ts`).toBe(true);
      expect(readFileSync(committed, 'utf8'), `${committed} is stale: npx tsx scripts/render-plots.ts`).toBe(svg);
    });
  }
});
