/** How the tolerance separates an honest float32 kernel from a one-pass one: the error/bound distribution. */
import { type ErrorRatioSample, binRatios, errorRatioPlot, RATIO_EDGES, sampleErrorRatios } from '../error-ratios.js';
import { createF32Kernel } from '../f32-kernel.js';
import { type Topic, num, table } from '../common.js';
import { tickLabel } from '../svg.js';

export interface ToleranceData {
  samples: ErrorRatioSample[];
  edges: number[];
  counts: number[][];
}

export const toleranceTopic: Topic<ToleranceData> = {
  id: 'tolerance',
  title: 'Errors relative to the tolerance bound',
  summary: 'the distribution of error/bound for an honest float32 kernel and a one-pass one (|mean|/std up to 1e5)',
  checks: ['bn:agreement:forward-train:*', 'bn:edge:large-offset:*', 'bn:edge:large-magnitude:*'],
  async compute() {
    const samples = [await sampleErrorRatios(createF32Kernel('two-pass'), { requests: 120 }), await sampleErrorRatios(createF32Kernel('one-pass'), { requests: 120 })];
    return { samples, edges: RATIO_EDGES, counts: samples.map((s) => binRatios(s.ratios)) };
  },
  render: (d) => renderTolerance(d),
  plots: { 'error-ratios': (d) => errorRatioPlot(d.samples) },
};

export function renderTolerance(d: ToleranceData): string {
  return [
    'Every output element is compared with the reference; the error may be at most the bound the tolerance',
    'derives for it (dtype, reduction length and order, and the channel\'s |mean|/sqrt(var + eps)). Sampled',
    'forwardTrain requests with |mean|/std from 1 to 1e5, float32, two plain kernels (every op in float32):',
    table(
      ['kernel', 'elements', 'over the bound', 'max error/bound', 'median error/bound', 'no bound (singular)'],
      d.samples.map((s) => {
        const sorted = [...s.ratios].sort((a, b) => a - b);
        return [s.implementation, String(s.ratios.length), String(s.over), num(s.max, 3), num(sorted[Math.floor(sorted.length / 2)] ?? 0, 3), String(s.unbounded)];
      }),
    ),
    '',
    'Histogram (counts per bin of error/bound):',
    table(
      ['bin', ...d.samples.map((s) => s.implementation)],
      d.edges.slice(0, -1).map((e, i) => [`${i === 0 ? '< ' + tickLabel(d.edges[1]!) : tickLabel(e) + (i === d.edges.length - 2 ? ' and up' : ' – ' + tickLabel(d.edges[i + 1]!))}`, ...d.counts.map((c) => String(c[i]))]),
    ),
    'The honest kernel stays left of 1 with room to spare; the one-pass kernel crosses it at large offsets.',
    'A singular channel (the variance\'s own error bound reaches var + eps: float32 sums at the largest',
    'offsets) bounds no element divided by sqrt(var + eps): an honest kernel may return Infinity or NaN',
    'there. Those elements are counted apart, not as passes.',
  ].join('\n');
}
