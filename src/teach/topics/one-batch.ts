/** Seed question: one mini-batch for all features, statistics per feature. */
import { layoutOf } from '../../contract/layout.js';
import { channelStats, referenceForwardTrain } from '../../reference/reference.js';
import { resolveProfile } from '../../contract/profiles.js';
import { type Topic, list, normals, num, table, trainStep } from '../common.js';

export interface OneBatchData {
  x: number[][];
  /** Reference batch statistics, per feature (keras profile, eps 1e-3, momentum 0.99). */
  mean: number[];
  variance: number[];
  /** The same statistics by hand: column means over the same rows. */
  handMean: number[];
  handVariance: number[];
  /** Per feature: mean and biased variance of the normalized output y (gamma 1, beta 0). */
  yMean: number[];
  yVariance: number[];
  eps: number;
  runningMean: number[];
  runningVar: number[];
  /** A conv-style [N, C, H, W] = [2, 3, 2, 2] batch: m per channel and the reference's means. */
  conv: { shape: number[]; m: number; mean: number[]; handMean: number[] };
}

const colMean = (x: number[][], c: number) => x.reduce((a, r) => a + r[c]!, 0) / x.length;
const colVar = (x: number[][], c: number) => {
  const mu = colMean(x, c);
  return x.reduce((a, r) => a + (r[c]! - mu) ** 2, 0) / x.length;
};

export const oneBatch: Topic<OneBatchData> = {
  id: 'one-batch',
  title: 'One mini-batch, statistics per feature',
  summary: 'does BN use one mini-batch for all features, or different samples per dimension? (one batch, per-feature statistics, moving averages)',
  checks: ['bn:consistency:batch-statistics:*', 'bn:invariance:channel-independence:*', 'bn:invariance:batch-permutation:*', 'bn:normalization:zero-mean:*', 'bn:normalization:variance:*'],
  compute() {
    const z = normals(8, 12);
    const scales: Array<[number, number]> = [[0, 1], [10, 2], [-3, 0.5]];
    const x = Array.from({ length: 4 }, (_, i) => scales.map(([mu, s], c) => Number((mu + s * z[i * 3 + c]!).toFixed(3))));
    const r = trainStep('keras', x);
    const C = 3;
    const y = Array.from(r.y);
    const yRows = Array.from({ length: 4 }, (_, i) => y.slice(i * C, i * C + C));
    // conv layout: [N, C, H, W], channel axis 1: each channel's statistics run over N*H*W = 8 values
    const shape = [2, 3, 2, 2];
    const xc = normals(9, 24).map((v, i) => v + 5 * (Math.floor(i / 4) % 3));
    const L = layoutOf(shape, 1);
    const st = channelStats(xc, L);
    const handMean = [0, 1, 2].map((c) => {
      let s = 0;
      for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) s += xc[(n * 3 + c) * 4 + k]!;
      return s / 8;
    });
    // run the conv batch through the reference once, so the conv example uses the same path
    referenceForwardTrain(resolveProfile('keras'), { x: xc, shape, axis: 1, gamma: new Float64Array(3).fill(1), beta: new Float64Array(3), eps: 1e-3, momentum: 0.99, runningMean: new Float64Array(3), runningVar: new Float64Array(3).fill(1) });
    return {
      x,
      mean: Array.from(r.mean),
      variance: Array.from(r.variance),
      handMean: [0, 1, 2].map((c) => colMean(x, c)),
      handVariance: [0, 1, 2].map((c) => colVar(x, c)),
      yMean: [0, 1, 2].map((c) => colMean(yRows, c)),
      yVariance: [0, 1, 2].map((c) => colVar(yRows, c)),
      eps: r.request.eps,
      runningMean: Array.from(r.runningMean),
      runningVar: Array.from(r.runningVar),
      conv: { shape, m: L.m, mean: Array.from(st.meanHi, (h, c) => h + st.meanLo[c]!), handMean },
    };
  },
  render(d) {
    return [
      'Every framework computes one mean and one variance PER FEATURE (channel), and every feature uses',
      'the SAME m samples: the rows of the current mini-batch. No feature gets its own sample.',
      '',
      'A batch of m = 4 rows and 3 features (shape [4, 3], channel axis 1):',
      table(['row', 'feature 0', 'feature 1', 'feature 2'], d.x.map((r, i) => [String(i), ...r.map((v) => num(v))])),
      '',
      'Reference (keras profile) batch statistics, and the same numbers by hand over the same 4 rows:',
      table(
        ['feature', 'mean (ref)', 'mean (by hand)', 'var 1/m (ref)', 'var 1/m (by hand)'],
        d.mean.map((_, c) => [String(c), num(d.mean[c]!), num(d.handMean[c]!), num(d.variance[c]!), num(d.handVariance[c]!)]),
      ),
      '',
      `After normalization each feature has mean ${list(d.yMean, 3)} and variance ${list(d.yVariance)}`,
      `= var/(var + eps) with eps = ${d.eps}: not exactly 1 (see \`explain eps\`).`,
      '',
      'The moving averages are also per feature: one step from running mean 0, variance 1 with',
      `momentum 0.99 (keras): running mean ${list(d.runningMean)}, running variance ${list(d.runningVar)}.`,
      '',
      `Convolutions: shape [${d.conv.shape.join(', ')}] with channel axis 1 reduces over N·H·W, so m = ${d.conv.m} per channel`,
      `(paper §3.2). Channel means: reference ${list(d.conv.mean)}, by hand over all n, h, w ${list(d.conv.handMean)}.`,
      '',
      'Opt-in exceptions, not plain BN: ghost batches (tf-keras virtual_batch_size, strided groups),',
      "cuDNN's PER_ACTIVATION mode (each C·H·W activation over N only).",
    ].join('\n');
  },
  plots: {},
};
