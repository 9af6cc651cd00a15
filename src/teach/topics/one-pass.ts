/** One-pass variance E[x²] − E[x]² in float32: catastrophic cancellation. */
import { expectationFor } from '../../judge/compare.js';
import { layoutOf } from '../../contract/layout.js';
import { resolveProfile } from '../../contract/profiles.js';
import { channelStats } from '../../reference/reference.js';
import { tolerance } from '../../judge/tolerance.js';
import { type Topic, f32Variance, normals, num, table } from '../common.js';
import { linePlot } from '../svg.js';

export interface OnePassSweepPoint {
  ratio: number;
  twoPass: number;
  onePass: number;
  bound: number;
}

export interface OnePassData {
  m: number;
  mean: number;
  std: number;
  /** The first seed (from 1) whose batch makes the float32 one-pass variance negative. */
  seed: number;
  seedsTried: number;
  exact: number;
  exactMean: number;
  twoPass: number;
  onePass: number;
  meanOfSquares: number;
  meanSquared: number;
  /** The tolerance's bound on the variance for this batch (float32, sequential float32 sums). */
  bound: number;
  sweep: OnePassSweepPoint[];
}

function batch(seed: number, m: number, mean: number, std: number): Float32Array {
  return Float32Array.from(normals(seed, m, mean, std));
}

/** Worst relative variance error over `trials` batches, per |mean|/std ratio, both kernels; and the bound. */
export function onePassSweep(ratios: number[], m = 256, trials = 5): OnePassSweepPoint[] {
  return ratios.map((ratio) => {
    let two = 0;
    let one = 0;
    let bound = 0;
    for (let t = 0; t < trials; t++) {
      const x = batch(1000 + t, m, ratio, 1);
      const L = layoutOf([m, 1], 1);
      const st = channelStats(x, L);
      const v = st.variance[0]!;
      const mu = st.meanHi[0]! + st.meanLo[0]!;
      two = Math.max(two, Math.abs(f32Variance(x, 'two-pass').variance - v) / v);
      one = Math.max(one, Math.abs(f32Variance(x, 'one-pass').variance - v) / v);
      let absMean = 0;
      let maxDev = 0;
      for (const e of x) {
        absMean += Math.abs(e) / m;
        maxDev = Math.max(maxDev, Math.abs(e - mu));
      }
      const b = tolerance({ dtype: 'float32', accumulation: { dtype: 'float32', order: 'sequential' } }, { m, mean: mu, variance: v, eps: 0, absMean, maxDev, gamma: 1, training: true });
      bound = Math.max(bound, b.variance / v);
    }
    return { ratio, twoPass: two, onePass: one, bound };
  });
}

export const SWEEP_RATIOS = Array.from({ length: 13 }, (_, i) => 10 ** (i * 0.5));

export const onePass: Topic<OnePassData> = {
  id: 'one-pass',
  title: 'One-pass variance in float32: E[x²] − E[x]² cancels',
  summary: 'E[x²] − E[x]² in float32 goes negative at mean 1e4, std 1e-2; the two-pass result does not',
  checks: ['bn:edge:large-offset:*', 'bn:invariance:shift:*', 'bn:agreement:forward-train:dtype=float32*'],
  compute() {
    const m = 1000;
    const mean = 1e4;
    const std = 1e-2;
    let seed = 1;
    let x = batch(seed, m, mean, std);
    let op = f32Variance(x, 'one-pass');
    while (op.variance >= 0 && seed < 100) {
      seed++;
      x = batch(seed, m, mean, std);
      op = f32Variance(x, 'one-pass');
    }
    const L = layoutOf([m, 1], 1);
    const st = channelStats(x, L);
    const tp = f32Variance(x, 'two-pass');
    const e = expectationFor(
      'forwardTrain',
      resolveProfile('keras'),
      { x, shape: [m, 1], axis: 1, gamma: Float32Array.of(1), beta: Float32Array.of(0), eps: 1e-3, momentum: 0.99, runningMean: Float32Array.of(0), runningVar: Float32Array.of(1) },
      { accumulation: { dtype: 'float32', order: 'sequential' } },
    );
    return {
      m,
      mean,
      std,
      seed,
      seedsTried: seed,
      exact: st.variance[0]!,
      exactMean: st.meanHi[0]! + st.meanLo[0]!,
      twoPass: tp.variance,
      onePass: op.variance,
      meanOfSquares: op.meanOfSquares,
      meanSquared: Math.fround(op.mean * op.mean),
      bound: e.bounds.variance![0]!,
      sweep: onePassSweep(SWEEP_RATIOS),
    };
  },
  render(d) {
    const ulp = 2 ** (Math.floor(Math.log2(d.meanOfSquares)) - 23);
    return [
      `${d.m} samples with mean ${d.mean} and std ${d.std}, rounded to float32 (seed ${d.seed}; the first seed from 1 whose one-pass variance is negative).`,
      table(
        ['method', 'variance', 'error'],
        [
          ['reference (float64, compensated two-pass)', num(d.exact), '0'],
          ['float32 two-pass: mean, then Σ(x − mean)²/m', num(d.twoPass), num(Math.abs(d.twoPass - d.exact), 3)],
          ['float32 one-pass: E[x²] − E[x]²', num(d.onePass), num(Math.abs(d.onePass - d.exact), 3)],
        ],
      ),
      `One-pass: E[x²] = ${num(d.meanOfSquares, 10)} and E[x]² = ${num(d.meanSquared, 10)} in float32, both ≈ 1e8 where one float32`,
      `ulp is ${ulp}: their difference is a multiple of ~${ulp}, while the true variance is ${num(d.exact, 3)}. A negative variance`,
      'then feeds sqrt(var + eps): NaN when var < −eps, or a wildly wrong scale otherwise.',
      '',
      `The tolerance allows the variance an error of ${num(d.bound, 3)} here (float32, sequential float32 sums, m = ${d.m}):`,
      `two-pass ${Math.abs(d.twoPass - d.exact) <= d.bound ? 'passes' : 'FAILS'}; one-pass ${Math.abs(d.onePass - d.exact) <= d.bound ? 'passes' : 'fails'} by a factor ${num(Math.abs(d.onePass - d.exact) / d.bound, 3)}.`,
      '',
      'Relative variance error against r = |mean|/std (m = 256, worst of 5 batches):',
      table(
        ['r', 'two-pass', 'one-pass', 'bound / var'],
        d.sweep.map((p) => [num(p.ratio, 3), num(p.twoPass, 3), num(p.onePass, 3), num(p.bound, 3)]),
      ),
      'The two-pass error grows like u·r (the rounded mean), the one-pass error like u·r² (u = 2⁻²⁴); by',
      'r ≈ 1/√u ≈ 4,000 it exceeds the variance itself. Keras 3 torch/numpy backends, sync-BN and XLA\'s',
      'BatchNormExpander still compute it this way (tensorflow#118701).',
    ].join('\n');
  },
  plots: {
    'one-pass-error': (d) => {
      const floor = 1e-9;
      return linePlot({
        title: 'float32 variance error: one-pass vs two-pass',
        subtitle: `m = 256, worst of 5 batches per ratio; errors of 0 drawn at ${floor}`,
        legend: 'top-left',
        xLabel: '|mean| / std (log scale)',
        yLabel: 'relative error of the variance (log scale)',
        xScale: 'log',
        yScale: 'log',
        series: [
          { name: 'two-pass Σ(x − mean)²/m', points: d.sweep.map((p) => [p.ratio, Math.max(p.twoPass, floor)]) },
          { name: 'one-pass E[x²] − E[x]²', points: d.sweep.map((p) => [p.ratio, Math.max(p.onePass, floor)]) },
          { name: 'tolerance bound / var', points: d.sweep.map((p) => [p.ratio, p.bound]), style: 'line', dashed: true, color: '#555' },
        ],
        refLines: [{ axis: 'y', value: 1, label: 'error = the variance itself' }],
      });
    },
  },
};
