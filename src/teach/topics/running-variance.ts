/** Biased vs unbiased running variance, per framework. */
import type { ProfileName } from '../../contract/contract.js';
import { profiles, runningVarFactor } from '../../contract/profiles.js';
import { SingleValuePerChannelError } from '../../contract/errors.js';
import { type Topic, list, num, table, trainStep } from '../common.js';
import { linePlot } from '../svg.js';

/** The golden 3×4 batch of SEMANTICS.md and the running variance real frameworks returned for it. */
export const GOLDEN_X = [
  [1, 2, 3, 4],
  [2, 4, 6, 8],
  [12, 11, 10, 9],
];
export const OBSERVED_RUNNING_VAR: Partial<Record<ProfileName, { source: string; values: number[] }>> = {
  keras: { source: 'Keras 3 / TF.js layers', values: [1.2366667, 1.1388888, 1.0722222, 1.0366666] },
  'tensorflow-fused': { source: 'TF FusedBatchNormV3', values: [1.36, 1.2133334, 1.1133333, 1.06] },
  pytorch: { source: 'PyTorch BatchNorm1d', values: [4.6, 3.1333334, 2.1333334, 1.6] },
  onnx: { source: 'ONNX 15 reference', values: [3.3666673, 2.3888893, 1.7222223, 1.3666668] },
};

export interface RunningVarRow {
  profile: ProfileName;
  runningVar: 'biased' | 'unbiased';
  momentum: number;
  factor: number;
  batchVar: number[];
  result: number[];
  observed?: { source: string; values: number[] };
}

export interface BiasPoint {
  m: number;
  /** E[fed variance] / population variance, exactly, by enumerating every batch from a 4-value population. */
  enumerated: number;
  closedForm: number;
}

export interface RunningVarianceData {
  rows: RunningVarRow[];
  population: number[];
  bias: Record<string, BiasPoint[]>;
}

const PROFILES: ProfileName[] = ['keras', 'tensorflow-fused', 'pytorch', 'onnx', 'paper'];

/** Every length-m tuple over the population (with replacement). */
function* tuples(pop: number[], m: number): Generator<number[]> {
  const idx = new Array<number>(m).fill(0);
  for (;;) {
    yield idx.map((i) => pop[i]!);
    let k = m - 1;
    while (k >= 0 && ++idx[k]! === pop.length) idx[k--] = 0;
    if (k < 0) return;
  }
}

export const runningVariance: Topic<RunningVarianceData> = {
  id: 'running-variance',
  title: 'Biased vs unbiased running variance, per framework',
  summary: 'which frameworks feed the biased (1/m) or the unbiased (1/(m−1)) batch variance to the moving average',
  checks: ['bn:running-stats:closed-form:*', 'bn:edge:m2:*', 'bn:golden:*'],
  compute() {
    const rows = PROFILES.map((name) => {
      const p = profiles[name as keyof typeof profiles];
      const r = trainStep(name, GOLDEN_X);
      return {
        profile: name,
        runningVar: p.runningVar,
        momentum: p.defaultMomentum,
        factor: runningVarFactor(p, 3),
        batchVar: Array.from(r.variance),
        result: Array.from(r.runningVar),
        ...(OBSERVED_RUNNING_VAR[name] ? { observed: OBSERVED_RUNNING_VAR[name] } : {}),
      };
    });
    const population = [0, 1, 3, 8];
    const mu = population.reduce((a, b) => a + b, 0) / 4;
    const pv = population.reduce((a, b) => a + (b - mu) ** 2, 0) / 4;
    const bias: Record<string, BiasPoint[]> = {};
    for (const name of ['keras', 'pytorch', 'tensorflow-fused'] as ProfileName[]) {
      const pts: BiasPoint[] = [];
      for (let m = 1; m <= 5; m++) {
        let sum = 0;
        let n = 0;
        let errored = false;
        for (const t of tuples(population, m)) {
          try {
            // decay/update weights chosen so that running' = the value fed to the average
            const mom = name === 'pytorch' ? 1 : 0;
            sum += trainStep(name, t.map((v) => [v]), { momentum: mom, runningVar: [0] }).runningVar[0]!;
            n++;
          } catch (e) {
            if (!(e instanceof SingleValuePerChannelError)) throw e;
            errored = true;
            break;
          }
        }
        if (errored) continue;
        const p = profiles[name as keyof typeof profiles];
        pts.push({ m, enumerated: sum / n / pv, closedForm: (runningVarFactor(p, m) * (m - 1)) / m });
      }
      bias[name] = pts;
    }
    return { rows, population, bias };
  },
  render(d) {
    return [
      'Training always normalizes with the biased variance (1/m). What differs is the variance fed to',
      'the moving average: biased (Keras 3, tf-keras non-fused, TF.js, ONNX) or unbiased ×m/(m−1)',
      '(PyTorch, TF fused / cuDNN, the paper; TF fused guards m = 1 with max(m−1, 1)).',
      '',
      `One step on the 3×4 batch of SEMANTICS.md (m = 3) from running variance 1, each profile with its defaults:`,
      table(
        ['profile', 'fed', 'factor', 'momentum', 'running variance (reference)', 'observed in the framework'],
        d.rows.map((r) => [r.profile, r.runningVar, num(r.factor, 4), String(r.momentum), list(r.result), r.observed ? `${list(r.observed.values)} (${r.observed.source})` : '—']),
      ),
      `(batch variance, biased: ${list(d.rows[0]!.batchVar)})`,
      '',
      `Expected fed variance / population variance, by enumerating every batch of m values from [${d.population.join(', ')}]:`,
      table(
        ['m', ...Object.keys(d.bias).map((k) => `${k} (enumerated | (m−1)/m·factor)`)],
        [1, 2, 3, 4, 5].map((m) => [
          String(m),
          ...Object.values(d.bias).map((pts) => {
            const p = pts.find((q) => q.m === m);
            return p ? `${num(p.enumerated, 6)} | ${num(p.closedForm, 6)}` : 'error (m = 1)';
          }),
        ]),
      ),
      'The biased average underestimates by (m−1)/m: 0.5 at m = 2, negligible at m = N·H·W of a conv layer.',
    ].join('\n');
  },
  plots: {
    'running-variance-bias': (d) => {
      const ms = Array.from({ length: 64 }, (_, i) => i + 1);
      const line = (p: ProfileName) => ms.filter((m) => !(m === 1 && profiles[p as keyof typeof profiles].singleValue === 'error')).map((m) => [m, (runningVarFactor(profiles[p as keyof typeof profiles], m) * (m - 1)) / m] as [number, number]);
      return linePlot({
        title: 'Bias of the running variance against m',
        subtitle: 'lines: (m−1)/m × the profile factor; points: exact averages over every batch from a 4-value population (reference)',
        legend: 'bottom-right',
        xLabel: 'values per channel m (log scale)',
        yLabel: 'E[fed variance] / population variance',
        xScale: 'log',
        yDomain: [0, 1.1],
        series: [
          { name: 'biased: keras, onnx, tfjs', points: line('keras'), style: 'line' },
          { name: 'unbiased: pytorch, paper', points: line('pytorch'), style: 'line', dashed: true },
          { name: 'tensorflow-fused (max(m−1, 1) guard)', points: line('tensorflow-fused'), style: 'line', dashed: true, color: '#2ca02c' },
          { name: 'keras, enumerated', points: d.bias.keras!.map((p) => [p.m, p.enumerated]), style: 'points', color: '#1f77b4' },
          { name: 'pytorch, enumerated', points: d.bias.pytorch!.map((p) => [p.m, p.enumerated]), style: 'points', color: '#d62728' },
        ],
        refLines: [{ axis: 'y', value: 1, label: 'unbiased' }],
      });
    },
  },
};
