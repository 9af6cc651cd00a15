/** eps: output variance var/(var + eps), constant channels, eps = 0. */
import { type Topic, num, table, trainStep } from '../common.js';
import { linePlot } from '../svg.js';

export interface EpsRow {
  variance: number;
  /** Biased variance of the reference's y (gamma 1, beta 0) for each eps, and the formula. */
  outKeras: number;
  outPytorch: number;
  formulaKeras: number;
  formulaPytorch: number;
}

export interface EpsData {
  epsKeras: number;
  epsPytorch: number;
  rows: EpsRow[];
  constant: { x: number[]; beta: number; yEps: number[]; yEps0: number[]; epsUsed: number };
}

const variance = (a: number[]) => {
  const mu = a.reduce((s, v) => s + v, 0) / a.length;
  return a.reduce((s, v) => s + (v - mu) ** 2, 0) / a.length;
};

/** A channel of 4 values with biased variance exactly v: [a, −a, a, −a] + 1 with a = sqrt(v). */
const channelWithVariance = (v: number) => {
  const a = Math.sqrt(v);
  return [1 + a, 1 - a, 1 + a, 1 - a];
};

const DENSE = Array.from({ length: 81 }, (_, i) => 10 ** (-7 + i / 10));

export const VARIANCES = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];

export const eps: Topic<EpsData> = {
  id: 'eps',
  title: 'eps: the variance after normalization is var/(var + eps)',
  summary: 'eps inside the square root: var/(var + eps) output variance, constant channels (y = beta), eps = 0 (NaN)',
  checks: ['bn:normalization:variance:*', 'bn:edge:constant-channel:*', 'bn:edge:eps-zero:*', 'bn:edge:denormal:*'],
  compute() {
    const epsKeras = 1e-3;
    const epsPytorch = 1e-5;
    const rows = VARIANCES.map((v) => {
      const x = channelWithVariance(v).map((e) => [e]);
      const yk = Array.from(trainStep('keras', x, { eps: epsKeras }).y);
      const yp = Array.from(trainStep('pytorch', x, { eps: epsPytorch }).y);
      const vr = trainStep('keras', x).variance[0]!;
      return { variance: vr, outKeras: variance(yk), outPytorch: variance(yp), formulaKeras: vr / (vr + epsKeras), formulaPytorch: vr / (vr + epsPytorch) };
    });
    const cx = [5, 5, 5, 5];
    const beta = 0.75;
    const yEps = Array.from(trainStep('keras', cx.map((v) => [v]), { beta: [beta] }).y);
    const yEps0 = Array.from(trainStep('keras', cx.map((v) => [v]), { beta: [beta], eps: 0 }).y);
    return { epsKeras, epsPytorch, rows, constant: { x: cx, beta, yEps, yEps0, epsUsed: epsKeras } };
  },
  render(d) {
    return [
      'y = gamma·(x − mean)/sqrt(var + eps) + beta, with eps INSIDE the square root in every framework',
      "(TF.js's JSDoc says sqrt(var) + eps; its code does not). The normalized output's variance is",
      'var/(var + eps), so "unit variance" holds only when var ≫ eps.',
      '',
      `Channels [1+a, 1−a, 1+a, 1−a] with var = a², variance of the reference's output (gamma 1, beta 0):`,
      table(
        ['batch var', `out var, eps ${d.epsKeras} (keras)`, 'var/(var+eps)', `out var, eps ${d.epsPytorch} (pytorch)`, 'var/(var+eps)'],
        d.rows.map((r) => [num(r.variance, 4), num(r.outKeras), num(r.formulaKeras), num(r.outPytorch), num(r.formulaPytorch)]),
      ),
      '',
      `A constant channel x = [${d.constant.x.join(', ')}] has var = 0 and x − mean = 0 exactly:`,
      `  eps = ${d.constant.epsUsed}: y = [${d.constant.yEps.map((v) => num(v)).join(', ')}] = beta (${d.constant.beta})`,
      `  eps = 0:     y = [${d.constant.yEps0.map((v) => num(v)).join(', ')}] (0/0). TF fused CPU gives NaN too; PyTorch 2.13 rejects eps <= 0 in training.`,
      'A kernel that computes a constant channel\'s variance with rounding residue (1e-17 instead of 0)',
      'turns eps = 0 into huge outputs instead of NaN: the reference detects min = max exactly.',
    ].join('\n');
  },
  plots: {
    'eps-output-variance': (d) =>
      linePlot({
        title: 'Variance after normalization: var / (var + eps)',
        subtitle: 'points: measured on the reference output; lines: the formula',
        legend: 'bottom-right',
        xLabel: 'batch variance (log scale)',
        yLabel: 'variance of the normalized output',
        xScale: 'log',
        yDomain: [0, 1.05],
        series: [
          { name: `eps = ${d.epsKeras} (keras default), measured`, points: d.rows.map((r) => [r.variance, r.outKeras]), style: 'points' },
          { name: `eps = ${d.epsPytorch} (pytorch default), measured`, points: d.rows.map((r) => [r.variance, r.outPytorch]), style: 'points' },
          { name: `var/(var + ${d.epsKeras})`, points: DENSE.map((v) => [v, v / (v + d.epsKeras)]), style: 'line', dashed: true, color: '#1f77b4' },
          { name: `var/(var + ${d.epsPytorch})`, points: DENSE.map((v) => [v, v / (v + d.epsPytorch)]), style: 'line', dashed: true, color: '#d62728' },
        ],
        refLines: [{ axis: 'y', value: 1, label: 'unit variance' }],
      }),
  },
};
