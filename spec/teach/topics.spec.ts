/**
 * Every number a topic prints is checked here against the reference (or an independent
 * float64 computation), and the text rendering is checked to show those numbers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createReference } from '../../src/reference/reference.js';
import { profiles } from '../../src/contract/profiles.js';
import { explain, findTopic, TOPICS, topicList } from '../../src/teach/index.js';
import { num } from '../../src/teach/common.js';
import { oneBatch, type OneBatchData } from '../../src/teach/topics/one-batch.js';
import { tinyBatches, type TinyData } from '../../src/teach/topics/tiny-batches.js';
import { eps, type EpsData } from '../../src/teach/topics/eps.js';
import { halfPrecision, type HalfData } from '../../src/teach/topics/half-precision.js';
import { onePass, type OnePassData } from '../../src/teach/topics/one-pass.js';
import { momentum, type MomentumData } from '../../src/teach/topics/momentum.js';
import { runningVariance, type RunningVarianceData, OBSERVED_RUNNING_VAR } from '../../src/teach/topics/running-variance.js';
import { trainVsInfer, type TrainInferData } from '../../src/teach/topics/train-vs-infer.js';
import { toleranceTopic, type ToleranceData } from '../../src/teach/topics/tolerance.js';
import { syncBn, type SyncBnData } from '../../src/teach/topics/sync-bn.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

/** Plain float64 two-pass statistics of one column, independent of the reference's code. */
function colStats(x: number[][], c: number) {
  const m = x.length;
  const mu = x.reduce((a, r) => a + r[c]!, 0) / m;
  return { mean: mu, variance: x.reduce((a, r) => a + (r[c]! - mu) ** 2, 0) / m };
}

describe('topic list', () => {
  it('lists every topic with its summary and plots', () => {
    const text = topicList();
    for (const t of TOPICS) expect(text).toContain(`${t.id}  `);
    expect(text).toContain('ema-running-mean');
    expect(TOPICS.map((t) => t.id)).toEqual(['one-batch', 'tiny-batches', 'eps', 'one-pass', 'momentum', 'running-variance', 'train-vs-infer', 'tolerance', 'half-precision', 'sync-bn', 'which-axes', 'rms-norm']);
  });
  it('every topic names the checks that guard it', () => {
    for (const t of TOPICS) {
      expect(t.checks.length).toBeGreaterThan(0);
      // BN's checks, and the normalization family's (ln, rms, gn, in: spec/teach/family-topics.spec.ts)
      for (const c of t.checks) expect(c).toMatch(/^(bn|ln|rms|gn|in):[a-z-]+:/);
    }
  });
  it('an unknown topic is a usage error naming the topics', () => {
    expect(() => findTopic('nope')).toThrow(/one-batch/);
  });
});

describe('one-batch', () => {
  let d: OneBatchData;
  beforeAll(() => {
    d = oneBatch.compute() as OneBatchData;
  });
  it('per-feature statistics come from the same rows', () => {
    for (let c = 0; c < 3; c++) {
      const s = colStats(d.x, c);
      expect(rel(d.mean[c]!, s.mean)).toBeLessThan(1e-14);
      expect(rel(d.variance[c]!, s.variance)).toBeLessThan(1e-12);
      expect(d.handMean[c]).toBeCloseTo(d.mean[c]!, 12);
      expect(Math.abs(d.yMean[c]!)).toBeLessThan(1e-12);
      expect(rel(d.yVariance[c]!, s.variance / (s.variance + d.eps))).toBeLessThan(1e-12);
      expect(rel(d.runningMean[c]!, 0.01 * s.mean)).toBeLessThan(1e-12);
      expect(rel(d.runningVar[c]!, 0.99 + 0.01 * s.variance)).toBeLessThan(1e-12);
    }
    // the features really differ, so a per-batch (not per-feature) statistic would be caught
    expect(new Set(d.mean.map((v) => v.toFixed(3))).size).toBe(3);
  });
  it('a conv layout reduces over N·H·W', () => {
    expect(d.conv.m).toBe(8);
    for (let c = 0; c < 3; c++) expect(rel(d.conv.mean[c]!, d.conv.handMean[c]!)).toBeLessThan(1e-14);
  });
  it('the text shows the computed numbers', () => {
    const text = oneBatch.render(d);
    expect(text).toContain(num(d.mean[1]!));
    expect(text).toContain(num(d.variance[2]!));
    expect(text).toContain('m = 8');
  });
});

describe('tiny-batches', () => {
  let d: TinyData;
  beforeAll(() => {
    d = tinyBatches.compute() as TinyData;
  });
  it('m = 2: the biased variance averages to half the population variance, the unbiased to all of it', () => {
    const N = d.population.length;
    const mu = d.population.reduce((a, b) => a + b, 0) / N;
    const pv = d.population.reduce((a, b) => a + (b - mu) ** 2, 0) / N;
    expect(rel(d.populationVar, pv)).toBeLessThan(1e-14);
    expect(rel(d.meanBiasedBatchVar, pv / 2)).toBeLessThan(1e-12);
    expect(rel(d.fedKeras, pv / 2)).toBeLessThan(1e-12);
    expect(rel(d.fedPytorch, pv)).toBeLessThan(1e-12);
    // the moving averages settle near those values
    expect(d.tailBiased / pv).toBeGreaterThan(0.4);
    expect(d.tailBiased / pv).toBeLessThan(0.6);
    expect(d.tailUnbiased / pv).toBeGreaterThan(0.85);
    expect(d.tailUnbiased / pv).toBeLessThan(1.15);
    expect(d.traceBiased).toHaveLength(d.steps);
  });
  it('m = 1: error for pytorch and paper, y = beta and a decayed running variance elsewhere', () => {
    const by = Object.fromEntries(d.m1.outcomes.map((o) => [o.profile, o]));
    expect(by.pytorch!.outcome).toBe('error');
    expect(by.pytorch!.message).toMatch(/Expected more than 1 value per channel when training/);
    expect(by.paper!.outcome).toBe('error');
    for (const [p, keep] of [['keras', 0.99], ['onnx', 0.9], ['tensorflow-fused', 0.99]] as const) {
      expect(by[p]!.y).toEqual(d.m1.beta);
      expect(by[p]!.variance).toEqual([0, 0]);
      expect(by[p]!.runningVar![0]).toBeCloseTo(keep * d.m1.runningVar[0]!, 14);
      expect(by[p]!.runningVar![1]).toBeCloseTo(keep * d.m1.runningVar[1]!, 14);
    }
    const text = tinyBatches.render(d);
    expect(text).toMatch(/pytorch +error: Expected more than 1 value/);
    expect(text).toContain('cuDNN');
    expect(text).toContain('NaN');
  });
});

describe('eps', () => {
  let d: EpsData;
  beforeAll(() => {
    d = eps.compute() as EpsData;
  });
  it('the output variance is var/(var + eps)', () => {
    expect(d.rows.length).toBeGreaterThan(5);
    for (const r of d.rows) {
      expect(rel(r.outKeras, r.variance / (r.variance + 1e-3))).toBeLessThan(1e-6);
      expect(rel(r.outPytorch, r.variance / (r.variance + 1e-5))).toBeLessThan(1e-6);
    }
    // half the variance survives exactly when var = eps
    const at = d.rows.find((r) => Math.abs(r.variance - 1e-3) < 1e-12)!;
    expect(at.outKeras).toBeCloseTo(0.5, 9);
  });
  it('a constant channel gives beta, and NaN with eps = 0', () => {
    expect(d.constant.yEps).toEqual([0.75, 0.75, 0.75, 0.75]);
    expect(d.constant.yEps0.every(Number.isNaN)).toBe(true);
    const ref = createReference('keras').forwardTrain!({ x: Float64Array.of(5, 5, 5, 5), shape: [4, 1], axis: 1, gamma: Float64Array.of(1), beta: Float64Array.of(0.75), eps: 0, momentum: 0.99, runningMean: Float64Array.of(0), runningVar: Float64Array.of(1) }) as { y: Float64Array };
    expect(Number.isNaN(ref.y[0])).toBe(true);
    expect(eps.render(d)).toContain('NaN');
  });
});

describe('half-precision', () => {
  let d: HalfData;
  beforeAll(() => {
    d = halfPrecision.compute() as HalfData;
  });
  it('eps, 65504 and the sums are what float16 arithmetic gives', () => {
    expect(d.float16.max).toBe(65504);
    expect(d.eps.find((r) => r.eps === 1e-8)!.float16).toBe(0);
    expect(d.eps.find((r) => r.eps === 1e-5)!.float16).toBe(0.000010013580322265625);
    expect(d.runningVar.asFloat16).toBe(Infinity);
    expect(d.runningVar.yCastToHalf).toBe(0);
    expect(d.runningVar.yFloat32).toBeCloseTo(300 / Math.sqrt(1e5), 5);
    const ones = d.sums.find((s) => s.v === 1)!;
    expect([ones.float16, ones.float32, ones.exact]).toEqual([2048, 4096, 4096]);
    expect(d.sums.find((s) => s.v === 20)!.float16).toBe(Infinity);
    expect(Math.abs(d.mixedMean.mean - d.mixedMean.exactSum / 4096)).toBeLessThan(1e-5);
    expect(d.mixedMean.exactSum).toBeGreaterThan(65504);
  });
  it('a bfloat16 mean loses x-hat at |mean|/std = 100; float32 does not', () => {
    const at100 = d.cancellation.find((r) => r.ratio === 100)!;
    expect(at100.bfloat16).toBeGreaterThan(0.05);
    expect(at100.float16).toBeLessThan(at100.bfloat16);
    for (const r of d.cancellation) expect(r.float32).toBeLessThan(1e-4);
    expect(halfPrecision.render(d)).toContain('65504');
  });
});

describe('one-pass', () => {
  let d: OnePassData;
  beforeAll(() => {
    d = onePass.compute() as OnePassData;
  });
  it('the float32 one-pass variance goes negative at mean 1e4, std 1e-2; two-pass stays within the bound', () => {
    expect(d.mean).toBe(1e4);
    expect(d.std).toBe(1e-2);
    expect(d.onePass).toBeLessThan(0);
    expect(Math.abs(d.twoPass - d.exact)).toBeLessThanOrEqual(d.bound);
    expect(Math.abs(d.onePass - d.exact)).toBeGreaterThan(100 * d.bound);
    // the exact variance is about std^2 (it is the reference's, of the float32 samples)
    expect(d.exact).toBeGreaterThan(0.5e-4);
    expect(d.exact).toBeLessThan(2e-4);
    const text = onePass.render(d);
    expect(text).toContain(num(d.onePass));
    expect(text).toContain(num(d.twoPass));
  });
  it('sweep: one-pass error grows like r², two-pass stays under the bound', () => {
    for (const p of d.sweep) expect(p.twoPass).toBeLessThanOrEqual(p.bound);
    const at = (r: number) => d.sweep.find((p) => Math.abs(Math.log10(p.ratio) - Math.log10(r)) < 1e-9)!;
    expect(at(1e4).onePass).toBeGreaterThan(1); // error larger than the variance itself
    expect(at(1e4).onePass).toBeGreaterThan(at(1e4).bound);
    // two decades in r: ~four decades in the one-pass error
    expect(Math.log10(at(1e5).onePass / at(1e3).onePass)).toBeGreaterThan(3);
  });
});

describe('momentum', () => {
  let d: MomentumData;
  beforeAll(() => {
    d = momentum.compute() as MomentumData;
  });
  it('conventions: pytorch 0.1 ≡ keras 0.9; the simulated 95% step matches the closed form', () => {
    const c = Object.fromEntries(d.cases.map((x) => [x.label, x]));
    const pt = c['pytorch, momentum 0.1 (default)']!;
    const k9 = c['keras, momentum 0.9']!;
    const k99 = c['keras, momentum 0.99 (default)']!;
    expect(pt.keep).toBeCloseTo(0.9, 15);
    expect(k99.keep).toBe(0.99);
    for (let i = 0; i < d.steps; i++) expect(pt.runningMean[i]).toBeCloseTo(k9.runningMean[i]!, 12);
    for (const x of d.cases) {
      expect(x.steps95).toBe(x.steps95ClosedForm);
      // closed form of the EMA from 0 towards 1
      expect(x.runningMean[9]).toBeCloseTo(1 - x.keep ** 10, 12);
    }
    expect(pt.steps95).toBe(29);
    expect(k99.steps95).toBe(299);
    // fixed points: unbiased 2 for pytorch, biased 1 for keras/onnx
    expect(pt.runningVar[d.steps - 1]).toBeCloseTo(2, 9);
    expect(k9.runningVar[d.steps - 1]).toBeCloseTo(1, 9);
    expect(momentum.render(d)).toMatch(/pytorch, momentum 0\.1 \(default\) +0\.9 +0\.1 +6\.579 +29 +29/);
  });
});

describe('running-variance', () => {
  let d: RunningVarianceData;
  beforeAll(() => {
    d = runningVariance.compute() as RunningVarianceData;
  });
  it('one step per profile matches keep + take·factor·var and what the frameworks returned', () => {
    for (const r of d.rows) {
      const p = profiles[r.profile as keyof typeof profiles];
      const keep = p.momentum === 'decay' ? p.defaultMomentum : 1 - p.defaultMomentum;
      const factor = p.runningVar === 'unbiased' ? 1.5 : 1;
      expect(r.factor).toBe(factor);
      for (let c = 0; c < 4; c++) expect(rel(r.result[c]!, keep + (1 - keep) * factor * r.batchVar[c]!)).toBeLessThan(1e-12);
      const obs = OBSERVED_RUNNING_VAR[r.profile];
      if (obs) for (let c = 0; c < 4; c++) expect(rel(r.result[c]!, obs.values[c]!)).toBeLessThan(3e-6);
    }
    expect(d.rows.map((r) => r.profile)).toEqual(['keras', 'tensorflow-fused', 'pytorch', 'onnx', 'paper']);
  });
  it('enumerated expectations equal (m−1)/m × factor', () => {
    for (const pts of Object.values(d.bias)) for (const p of pts) expect(p.enumerated).toBeCloseTo(p.closedForm, 12);
    expect(d.bias.keras!.find((p) => p.m === 2)!.enumerated).toBeCloseTo(0.5, 12);
    expect(d.bias.pytorch!.find((p) => p.m === 1)).toBeUndefined();
    expect(runningVariance.render(d)).toContain('error (m = 1)');
  });
});

describe('train-vs-infer', () => {
  let d: TrainInferData;
  beforeAll(() => {
    d = trainVsInfer.compute() as TrainInferData;
  });
  it('keras inference at the fixed point reproduces training; pytorch shrinks by sqrt((m−1)/m)', () => {
    const [keras, pytorch] = d.cases;
    // golden values (SEMANTICS.md, from real frameworks)
    const golden = { keras: [-0.805371, -0.9502233, -1.1624058, -1.3885813], pytorch: [-0.8053871, -0.9502549, -1.1624757, -1.3887287] };
    for (let c = 0; c < 4; c++) {
      expect(rel(keras!.yTrain[c]!, golden.keras[c]!)).toBeLessThan(2e-7);
      expect(rel(pytorch!.yTrain[c]!, golden.pytorch[c]!)).toBeLessThan(2e-7);
      expect(rel(keras!.yInferConverged[c]!, keras!.yTrain[c]!)).toBeLessThan(1e-12);
      expect(rel(pytorch!.ratio[c]!, pytorch!.ratioClosedForm[c]!)).toBeLessThan(1e-12);
      expect(pytorch!.ratio[c]).toBeCloseTo(Math.sqrt(2 / 3), 5);
    }
    expect(keras!.fixedPoint.drift).toBeLessThan(1e-12);
    expect(pytorch!.fixedPoint.drift).toBeLessThan(1e-12);
    // after one step from (0, 1) inference is far from training
    expect(Math.abs(keras!.yInferAfterOne[0]! - keras!.yTrain[0]!)).toBeGreaterThan(1);
    expect(trainVsInfer.render(d)).toContain(num(pytorch!.ratio[0]!));
  });
});

describe('tolerance', () => {
  let d: ToleranceData;
  beforeAll(async () => {
    d = await toleranceTopic.compute();
  });
  it('the honest float32 kernel stays under the bound, the one-pass kernel does not', () => {
    const [two, one] = d.samples;
    expect(two!.ratios.length).toBeGreaterThan(1000);
    expect(two!.over).toBe(0);
    expect(two!.max).toBeLessThan(1);
    expect(one!.over).toBeGreaterThan(one!.ratios.length / 10);
    for (let k = 0; k < 2; k++) expect(d.counts[k]!.reduce((a, b) => a + b, 0)).toBe(d.samples[k]!.ratios.length);
    expect(toleranceTopic.render(d)).toMatch(/teach-f32-two-pass +\d+ +0 /);
  });
});

describe('sync-bn', () => {
  let d: SyncBnData;
  beforeAll(async () => {
    d = await syncBn.compute();
  });
  it('synchronized statistics are those of the global batch; per-device ones are the shards\'', () => {
    const all = d.example.shards.flat();
    const mu = all.reduce((a, b) => a + b, 0) / all.length;
    expect(rel(d.example.syncMean, mu)).toBeLessThan(1e-14);
    expect(rel(d.example.syncVar, all.reduce((a, v) => a + (v - mu) ** 2, 0) / all.length)).toBeLessThan(1e-12);
    d.example.shards.forEach((s, i) => expect(d.example.deviceMean[i]).toBeCloseTo((s[0]! + s[1]!) / 2, 12));
  });
  it('the noise falls as 1/sqrt(m): synchronizing 8 devices divides the mean\'s error by about sqrt(8)', () => {
    for (const r of d.rows) {
      // sampling error of an RMS over 400 (x 8) trials is a few percent: 15% is far outside it
      expect(r.meanErrDevice * Math.sqrt(r.perDevice)).toBeGreaterThan(0.85);
      expect(r.meanErrDevice * Math.sqrt(r.perDevice)).toBeLessThan(1.15);
      expect(r.meanErrDevice / r.meanErrSync).toBeGreaterThan(Math.sqrt(8) * 0.8);
      expect(r.meanErrDevice / r.meanErrSync).toBeLessThan(Math.sqrt(8) * 1.25);
      expect(r.scaleErrSync).toBeLessThan(r.scaleErrDevice);
    }
    expect(d.yErrSync).toBeLessThan(d.yErrDevice / 3);
    expect(syncBn.render(d)).toContain(num(d.rows[1]!.meanErrSync, 3));
  });
});

describe('explain', () => {
  it('prints the title, the walk-through and the guarding checks', async () => {
    const r = await explain('eps');
    expect(r.text.split('\n')[0]).toBe(eps.title);
    expect(r.text).toContain('Guarded by: bn:normalization:variance:*');
  });
});
