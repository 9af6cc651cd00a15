/**
 * `bn-conformance explain`: the teaching topics, their plots, and the HTML report.
 * Every number a topic prints is computed at run time by the reference (or a float32 kernel
 * checked against it); spec/teach verifies them.
 */
import { UsageError } from '../contract/errors.js';
import type { Topic } from './common.js';
import { eps } from './topics/eps.js';
import { halfPrecision } from './topics/half-precision.js';
import { momentum } from './topics/momentum.js';
import { oneBatch } from './topics/one-batch.js';
import { onePass } from './topics/one-pass.js';
import { runningVariance } from './topics/running-variance.js';
import { syncBn } from './topics/sync-bn.js';
import { tinyBatches } from './topics/tiny-batches.js';
import { toleranceTopic } from './topics/tolerance.js';
import { trainVsInfer } from './topics/train-vs-infer.js';
import { whichAxes } from './topics/which-axes.js';
import { rmsNorm } from './topics/rms-norm.js';

export type { Topic } from './common.js';
export { createF32Kernel, f32Train, type F32Variant } from './f32-kernel.js';
export { sampleErrorRatios, errorRatioPlot, binRatios, RATIO_EDGES, type ErrorRatioSample } from './error-ratios.js';
export { linePlot, histogram, groupDiagram, type PlotSpec, type HistogramSpec, type Series, type GroupDiagramSpec } from './svg.js';
export { formatHtml, type HtmlOptions } from './html.js';

export const TOPICS: Topic<any>[] = [oneBatch, tinyBatches, eps, onePass, momentum, runningVariance, trainVsInfer, toleranceTopic, halfPrecision, syncBn, whichAxes, rmsNorm];

export function findTopic(id: string): Topic<any> {
  const t = TOPICS.find((x) => x.id === id);
  if (!t) throw new UsageError(`unknown topic "${id}"; topics: ${TOPICS.map((x) => x.id).join(', ')}`);
  return t;
}

/** Every plot by name, with the topic that draws it. */
export function plotIndex(): Array<{ plot: string; topic: Topic<any> }> {
  return TOPICS.flatMap((topic) => Object.keys(topic.plots).map((plot) => ({ plot, topic })));
}

export function topicList(): string {
  const w = Math.max(...TOPICS.map((t) => t.id.length));
  const lines = TOPICS.map((t) => `  ${t.id.padEnd(w)}  ${t.summary}${Object.keys(t.plots).length ? ` [plots: ${Object.keys(t.plots).join(', ')}]` : ''}`);
  return ['Topics (bn-conformance explain <topic>; add --svg FILE to write its plot):', ...lines, '', 'Plots: bn-conformance plot <name> --out FILE.svg'].join('\n');
}

/** The walk-through of one topic: its title, the text rendering, and the checks that guard it. */
export async function explain(id: string): Promise<{ topic: Topic<any>; data: unknown; text: string }> {
  const topic = findTopic(id);
  const data = await topic.compute();
  const text = [`${topic.title}`, '='.repeat(topic.title.length), '', topic.render(data), '', `Guarded by: ${topic.checks.join(', ')}`].join('\n');
  return { topic, data, text };
}

/** Render a plot by name (or a topic's first plot when given a topic ID). */
export async function renderPlot(name: string): Promise<string> {
  const entry = plotIndex().find((p) => p.plot === name);
  const topic = entry?.topic ?? TOPICS.find((t) => t.id === name);
  if (!topic) throw new UsageError(`unknown plot "${name}"; plots: ${plotIndex().map((p) => p.plot).join(', ')}`);
  const plotName = entry?.plot ?? Object.keys(topic.plots)[0];
  if (!plotName) throw new UsageError(`topic "${name}" has no plot; plots: ${plotIndex().map((p) => p.plot).join(', ')}`);
  return topic.plots[plotName]!(await topic.compute());
}
