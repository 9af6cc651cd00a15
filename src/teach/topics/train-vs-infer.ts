/** Training vs inference outputs. */
import type { ProfileName } from '../../contract/contract.js';
import { referenceForwardInfer } from '../../reference/reference.js';
import { resolveProfile, runningVarFactor } from '../../contract/profiles.js';
import { type Topic, list, num, table, trainStep } from '../common.js';
import { GOLDEN_X } from './running-variance.js';

export interface TrainInferCase {
  profile: ProfileName;
  yTrain: number[];
  /** Inference right after one step from (0, 1). */
  runningAfterOne: { mean: number[]; var: number[] };
  yInferAfterOne: number[];
  /** The moving averages' fixed point on this batch (mean, factor·var), checked to be a fixed point. */
  fixedPoint: { mean: number[]; var: number[]; drift: number };
  yInferConverged: number[];
  /** y_infer / y_train at the fixed point, per feature, and sqrt((var + eps)/(factor·var + eps)). */
  ratio: number[];
  ratioClosedForm: number[];
}

export interface TrainInferData {
  x: number[][];
  cases: TrainInferCase[];
}

const infer = (p: ProfileName, x: number[][], mean: number[], v: number[]) => {
  const C = x[0]!.length;
  const prof = resolveProfile(p);
  return Array.from(
    referenceForwardInfer(prof, {
      x: Float64Array.from(x.flat()),
      shape: [x.length, C],
      axis: 1,
      gamma: new Float64Array(C).fill(1),
      beta: new Float64Array(C),
      eps: prof.defaultEps,
      runningMean: Float64Array.from(mean),
      runningVar: Float64Array.from(v),
    }).y,
  );
};

export const trainVsInfer: Topic<TrainInferData> = {
  id: 'train-vs-infer',
  title: 'Training vs inference outputs',
  summary: 'training normalizes with batch statistics, inference with the running ones: how far apart they are',
  checks: ['bn:consistency:infer-equals-train:*', 'bn:agreement:forward-infer:*', 'bn:gradients:analytic-inference:*'],
  compute() {
    const x = GOLDEN_X;
    const C = 4;
    const cases = (['keras', 'pytorch'] as ProfileName[]).map((p) => {
      const prof = resolveProfile(p);
      const r = trainStep(p, x);
      const yTrain = Array.from(r.y.slice(0, C));
      const mean = Array.from(r.mean);
      const factor = runningVarFactor(prof, x.length);
      const fv = Array.from(r.variance, (v) => v * factor);
      const again = trainStep(p, x, { runningMean: mean, runningVar: fv });
      const drift = Math.max(...mean.map((v, c) => Math.abs(again.runningMean[c]! - v)), ...fv.map((v, c) => Math.abs(again.runningVar[c]! - v) / v));
      const yInferConverged = infer(p, x, mean, fv).slice(0, C);
      const eps = prof.defaultEps;
      return {
        profile: p,
        yTrain,
        runningAfterOne: { mean: Array.from(r.runningMean), var: Array.from(r.runningVar) },
        yInferAfterOne: infer(p, x, Array.from(r.runningMean), Array.from(r.runningVar)).slice(0, C),
        fixedPoint: { mean, var: fv, drift },
        yInferConverged,
        ratio: yInferConverged.map((v, c) => v / yTrain[c]!),
        ratioClosedForm: Array.from(r.variance, (v) => Math.sqrt((v + eps) / (factor * v + eps))),
      };
    });
    return { x, cases };
  },
  render(d) {
    const out = [
      'Training: y = (x − batch mean)/sqrt(batch var + eps), the batch statistics of THIS batch.',
      'Inference: y = (x − running mean)/sqrt(running var + eps), the moving averages (constants).',
      `Row 0 of the 3×4 batch [${d.x.map((r) => `[${r.join(', ')}]`).join(', ')}], gamma 1, beta 0:`,
      '',
    ];
    for (const c of d.cases) {
      out.push(
        `${c.profile}:`,
        table(
          ['', 'y, row 0'],
          [
            ['training', list(c.yTrain)],
            ['inference after 1 step from (0, 1)', list(c.yInferAfterOne)],
            ['inference at the fixed point', list(c.yInferConverged)],
            ['ratio inference / training', list(c.ratio)],
            ['sqrt((var+eps)/(factor·var+eps))', list(c.ratioClosedForm)],
          ],
        ),
        `  fixed point: running mean ${list(c.fixedPoint.mean)}, running var ${list(c.fixedPoint.var)} (one more step moves it by ${num(c.fixedPoint.drift, 2)})`,
        '',
      );
    }
    out.push(
      'Even when the running statistics have converged on a batch, inference reproduces training only for',
      'a biased profile; an unbiased one (pytorch) divides by sqrt(m/(m−1)·var): outputs shrink by sqrt((m−1)/m)',
      '≈ 0.816 at m = 3. After one step from the initial state inference is far from training either way.',
    );
    return out.join('\n');
  },
  plots: {},
};
