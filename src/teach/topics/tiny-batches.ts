/** Tiny batches: m = 2 halves the biased running variance; m = 1 per framework. */
import { SingleValuePerChannelError } from '../../contract/errors.js';
import { type Topic, list, normals, num, rng, table, trainStep } from '../common.js';
import { linePlot } from '../svg.js';

export interface M1Outcome {
  profile: string;
  outcome: 'error' | 'ok';
  message?: string;
  y?: number[];
  variance?: number[];
  runningVar?: number[];
}

export interface TinyData {
  population: number[];
  /** Population (1/N) variance. */
  populationVar: number;
  /** Averages over all 64 equally likely batches of m = 2 drawn with replacement. */
  meanBiasedBatchVar: number;
  /** What each profile feeds the moving average, averaged over the same 64 batches. */
  fedKeras: number;
  fedPytorch: number;
  /** EMA simulation: random pairs, momentum 0.99 for both (decay convention), running var per step. */
  steps: number;
  traceBiased: number[];
  traceUnbiased: number[];
  /** Mean of the running variance over the second half of the simulation. */
  tailBiased: number;
  tailUnbiased: number;
  m1: { x: number[]; gamma: number[]; beta: number[]; runningVar: number[]; outcomes: M1Outcome[] };
}

export const tinyBatches: Topic<TinyData> = {
  id: 'tiny-batches',
  title: 'Tiny batches: m = 2 and m = 1',
  summary: 'm = 2: the biased running variance converges to half the population variance; m = 1 per framework',
  checks: ['bn:edge:m2:*', 'bn:edge:m1:*', 'bn:running-stats:convergence:*', 'bn:running-stats:closed-form:*'],
  compute() {
    const population = Array.from(normals(21, 8, 3, 2), (v) => Number(v.toFixed(3)));
    const N = population.length;
    const mu = population.reduce((a, b) => a + b, 0) / N;
    const populationVar = population.reduce((a, b) => a + (b - mu) ** 2, 0) / N;
    let sumVar = 0;
    let fedK = 0;
    let fedP = 0;
    for (const a of population)
      for (const b of population) {
        const x = [[a], [b]];
        // momentum chosen so the running variance after one step from 0 IS the fed value
        const k = trainStep('keras', x, { momentum: 0, runningVar: [0] });
        const p = trainStep('pytorch', x, { momentum: 1, runningVar: [0] });
        sumVar += k.variance[0]!;
        fedK += k.runningVar[0]!;
        fedP += p.runningVar[0]!;
      }
    const steps = 4000;
    const r = rng(5);
    let rb = populationVar;
    let ru = populationVar;
    const traceBiased: number[] = [];
    const traceUnbiased: number[] = [];
    for (let s = 0; s < steps; s++) {
      const x = [[population[Math.floor(r() * N)]!], [population[Math.floor(r() * N)]!]];
      rb = trainStep('keras', x, { momentum: 0.99, runningVar: [rb] }).runningVar[0]!;
      ru = trainStep('paper', x, { momentum: 0.99, runningVar: [ru] }).runningVar[0]!;
      traceBiased.push(rb);
      traceUnbiased.push(ru);
    }
    const tail = (t: number[]) => t.slice(steps / 2).reduce((a, b) => a + b, 0) / (steps / 2);
    const m1x = [3, -1];
    const gamma = [2, 2];
    const beta = [0.5, -0.25];
    const runningVar = [1, 4];
    const outcomes: M1Outcome[] = (['pytorch', 'paper', 'keras', 'onnx', 'tensorflow-fused'] as const).map((p) => {
      try {
        const o = trainStep(p, [m1x], { gamma, beta, runningVar });
        return { profile: p, outcome: 'ok', y: Array.from(o.y), variance: Array.from(o.variance), runningVar: Array.from(o.runningVar) };
      } catch (e) {
        if (!(e instanceof SingleValuePerChannelError)) throw e;
        return { profile: p, outcome: 'error', message: e.message };
      }
    });
    return {
      population,
      populationVar,
      meanBiasedBatchVar: sumVar / N ** 2,
      fedKeras: fedK / N ** 2,
      fedPytorch: fedP / N ** 2,
      steps,
      traceBiased,
      traceUnbiased,
      tailBiased: tail(traceBiased),
      tailUnbiased: tail(traceUnbiased),
      m1: { x: m1x, gamma, beta, runningVar, outcomes },
    };
  },
  render(d) {
    const pv = d.populationVar;
    return [
      `A population of ${d.population.length} values ${list(d.population)}, population variance ${num(pv)}.`,
      'Draw batches of m = 2 (with replacement); all 64 batches are equally likely. Averaged over them:',
      table(
        ['quantity', 'average', '/ population var'],
        [
          ['biased batch variance (training normalizes with it)', num(d.meanBiasedBatchVar), num(d.meanBiasedBatchVar / pv)],
          ['fed to the running var, keras (biased)', num(d.fedKeras), num(d.fedKeras / pv)],
          ['fed to the running var, pytorch (unbiased, ×m/(m−1) = ×2)', num(d.fedPytorch), num(d.fedPytorch / pv)],
        ],
      ),
      'E[biased var] = (m−1)/m · σ² = σ²/2 at m = 2, so a biased running variance converges to HALF the',
      'population variance, and inference then divides by sqrt(σ²/2 + eps): outputs come out ~1.41× too large.',
      '',
      `Simulation, ${d.steps} random batches of m = 2, momentum 0.99, mean of the running variance over the`,
      `last ${d.steps / 2} steps: biased (keras) ${num(d.tailBiased)} = ${num(d.tailBiased / pv, 3)}·σ²; unbiased (paper) ${num(d.tailUnbiased)} = ${num(d.tailUnbiased / pv, 3)}·σ².`,
      '',
      `m = 1 (one row x = ${list(d.m1.x)}, gamma ${list(d.m1.gamma)}, beta ${list(d.m1.beta)}, running var ${list(d.m1.runningVar)}):`,
      ...d.m1.outcomes.map((o) =>
        o.outcome === 'error'
          ? `  ${o.profile.padEnd(17)} error: ${o.message}`
          : `  ${o.profile.padEnd(17)} y = ${list(o.y!)} (= beta), batch var ${list(o.variance!)}, running var ${list(o.runningVar!)}`,
      ),
      '  PyTorch raises ValueError "Expected more than 1 value per channel when training" (_verify_batch_size);',
      '  its raw torch.batch_norm instead returns running_var NaN (0/0). Keras, TF.js and ONNX allow m = 1:',
      '  the variance is 0, so (x − mean) = 0 and y = beta. TF fused on CPU guards Bessel with max(m−1, 1).',
      '  cuDNN (described from sources, no GPU ran here): the running variance becomes NaN at m = 1',
      '  (tensorflow/tensorflow#34062; PR #40338: "the GPU implementation (CUDNN) explicitly returns NaN").',
    ].join('\n');
  },
  plots: {
    'tiny-batch-running-var': (d) =>
      linePlot({
        title: 'Running variance with batches of m = 2 (momentum 0.99)',
        subtitle: `population variance ${num(d.populationVar, 4)}; every 10th step shown`,
        legend: 'bottom-right',
        yDomain: [0, Math.ceil(Math.max(...d.traceUnbiased) * 1.1)],
        xLabel: 'training step',
        yLabel: 'running variance',
        series: [
          { name: 'biased (keras, onnx)', points: d.traceBiased.filter((_, i) => i % 10 === 0).map((v, i) => [i * 10, v]), style: 'line' },
          { name: 'unbiased (paper, pytorch, tf fused)', points: d.traceUnbiased.filter((_, i) => i % 10 === 0).map((v, i) => [i * 10, v]), style: 'line' },
        ],
        refLines: [
          { axis: 'y', value: d.populationVar, label: 'population variance σ²' },
          { axis: 'y', value: d.populationVar / 2, label: 'σ²/2' },
        ],
      }),
  },
};
