/** Momentum: PyTorch's update fraction 0.1 vs Keras's decay 0.99. */
import { emaWeights, resolveProfile } from '../../contract/profiles.js';
import type { ProfileName } from '../../contract/contract.js';
import { type Topic, num, table, trainStep } from '../common.js';
import { linePlot } from '../svg.js';

export interface MomentumCase {
  label: string;
  profile: ProfileName;
  momentum: number;
  keep: number;
  take: number;
  /** Running mean after each step, from 0, on batches [[0], [2]] (mean 1, biased var 1). */
  runningMean: number[];
  runningVar: number[];
  /** First step at which the running mean reaches 95% of the batch mean: simulated and closed form. */
  steps95: number;
  steps95ClosedForm: number;
  halfLife: number;
}

export interface MomentumData {
  steps: number;
  batch: number[];
  cases: MomentumCase[];
}

const CASES: Array<{ label: string; profile: ProfileName; momentum?: number }> = [
  { label: 'pytorch, momentum 0.1 (default)', profile: 'pytorch' },
  { label: 'keras, momentum 0.99 (default)', profile: 'keras' },
  { label: 'onnx, momentum 0.9 (default)', profile: 'onnx' },
  { label: 'keras, momentum 0.9', profile: 'keras', momentum: 0.9 },
  { label: 'pytorch, momentum 0.99 (the torchvision mistake)', profile: 'pytorch', momentum: 0.99 },
];

export const momentum: Topic<MomentumData> = {
  id: 'momentum',
  title: 'Momentum: update fraction (PyTorch) vs decay (Keras, TF, ONNX)',
  summary: 'momentum meaning: PyTorch 0.1 keeps 90% of the history, Keras 0.99 keeps 99%',
  checks: ['bn:running-stats:closed-form:*', 'bn:running-stats:convergence:*', 'bn:golden:*'],
  compute() {
    const steps = 600;
    const batch = [0, 2];
    const cases = CASES.map((c) => {
      const p = resolveProfile(c.profile);
      const mom = c.momentum ?? p.defaultMomentum;
      const { keep, take } = emaWeights(p, mom);
      const rm: number[] = [];
      const rv: number[] = [];
      let m = 0;
      let v = 0;
      for (let s = 0; s < steps; s++) {
        const r = trainStep(p, batch.map((b) => [b]), { momentum: mom, runningMean: [m], runningVar: [v] });
        m = r.runningMean[0]!;
        v = r.runningVar[0]!;
        rm.push(m);
        rv.push(v);
      }
      const idx = rm.findIndex((v2) => v2 >= 0.95);
      return {
        label: c.label,
        profile: c.profile,
        momentum: mom,
        keep,
        take,
        runningMean: rm,
        runningVar: rv,
        steps95: idx + 1,
        steps95ClosedForm: Math.ceil(Math.log(0.05) / Math.log(keep)),
        halfLife: Math.log(0.5) / Math.log(keep),
      };
    });
    return { steps, batch, cases };
  },
  render(d) {
    return [
      'Decay (Keras, TF, TF.js, ONNX, paper): running = momentum·running + (1 − momentum)·batch.',
      'Update fraction (PyTorch, cuDNN):        running = (1 − momentum)·running + momentum·batch.',
      'So PyTorch 0.1 and Keras 0.9 are the same average, and Keras 0.99 remembers ten times longer.',
      '',
      `Every step sees the batch [${d.batch.join(', ')}] (mean 1, biased var 1, unbiased var 2); running stats start at 0:`,
      table(
        ['setting', 'keeps', 'takes', 'half-life', 'steps to 95% (sim)', 'closed form', 'mean @10', 'var @10', `var @${d.steps}`],
        d.cases.map((c) => [
          c.label,
          num(c.keep, 4),
          num(c.take, 4),
          num(c.halfLife, 4),
          String(c.steps95),
          String(c.steps95ClosedForm),
          num(c.runningMean[9]!, 5),
          num(c.runningVar[9]!, 5),
          num(c.runningVar[d.steps - 1]!, 5),
        ]),
      ),
      'Steps to 95% = ceil(ln 0.05 / ln keep). The running variance converges to 1 with a biased profile',
      '(keras, onnx) and to 2 = m/(m−1)·1 with an unbiased one (pytorch): see `explain running-variance`.',
      'torchvision once shipped momentum 0.99 to a PyTorch model: it kept 1% of the history (the last row).',
    ].join('\n');
  },
  plots: {
    'ema-running-mean': (d) =>
      linePlot({
        title: 'Running mean convergence per profile and momentum',
        subtitle: 'every batch has mean 1; running mean starts at 0; pytorch 0.1, onnx 0.9 and keras 0.9 coincide',
        xLabel: 'training step (log scale)',
        yLabel: 'running mean',
        legend: 'bottom-right',
        xScale: 'log',
        series: d.cases.map((c) => ({ name: c.label, points: c.runningMean.map((v, i) => [i + 1, v] as [number, number]), style: 'line' as const, dashed: c.profile === 'onnx' })),
        refLines: [{ axis: 'y', value: 0.95, label: '95%' }],
      }),
    'ema-running-var': (d) =>
      linePlot({
        title: 'Running variance convergence per profile and momentum',
        subtitle: 'every batch is [0, 2]: biased variance 1, unbiased 2; running variance starts at 0; onnx 0.9 = keras 0.9',
        xLabel: 'training step (log scale)',
        yLabel: 'running variance',
        legend: 'bottom-right',
        xScale: 'log',
        series: d.cases.map((c) => ({ name: c.label, points: c.runningVar.map((v, i) => [i + 1, v] as [number, number]), style: 'line' as const, dashed: c.profile === 'onnx' })),
        refLines: [
          { axis: 'y', value: 1, label: 'biased fixed point' },
          { axis: 'y', value: 2, label: 'unbiased fixed point' },
        ],
      }),
  },
};
