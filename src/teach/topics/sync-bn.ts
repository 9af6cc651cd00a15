/**
 * Synchronized BatchNorm: 8 devices with 2 examples each. Per-device statistics come from m = 2;
 * synchronized ones from the global batch of 16. Every number is computed at run time: the
 * per-device statistics by the reference's forwardTrain on each shard, the synchronized ones by
 * its forwardTrainSync (Chan merge) over the same shards, over seeded trials.
 */
import type { Profile } from '../../contract/contract.js';
import { resolveProfile } from '../../contract/profiles.js';
import { referenceForwardTrain } from '../../reference/reference.js';
import { referenceForwardTrainSync } from '../../reference/sync.js';
import { type Topic, list, normals, num, table } from '../common.js';
import { linePlot } from '../svg.js';

const DEVICES = 8;
const MU = 3;
const SIGMA = 2;
const TRIALS = 400;
const PER_DEVICE = [1, 2, 4, 8, 16, 32];

export interface NoiseRow {
  /** Examples per device. */
  perDevice: number;
  /** RMS error of the batch mean (in units of sigma): per device, synchronized over 8. */
  meanErrDevice: number;
  meanErrSync: number;
  /** RMS relative error of the normalizing scale sqrt(var + eps) against sigma. */
  scaleErrDevice: number;
  scaleErrSync: number;
}

export interface SyncBnData {
  devices: number;
  mu: number;
  sigma: number;
  trials: number;
  /** One concrete step: 8 shards of 2 examples (1 channel). */
  example: { shards: number[][]; deviceMean: number[]; deviceVar: number[]; syncMean: number; syncVar: number; globalMean: number; globalVar: number };
  rows: NoiseRow[];
  /** For a fixed input x = mu + sigma, the median |error| of y against the population's (1.0), m = 2 per device. */
  yErrDevice: number;
  yErrSync: number;
}

const one = (v: number) => Float64Array.of(v);

function stats(p: Profile, xs: number[]) {
  const r = referenceForwardTrain(p, { x: Float64Array.from(xs), shape: [xs.length, 1], axis: 1, gamma: one(1), beta: one(0), eps: 1e-3, momentum: 0.99, runningMean: one(0), runningVar: one(1) });
  return { mean: r.mean[0]!, variance: r.variance[0]! };
}

function syncStats(p: Profile, shards: number[][]) {
  const r = referenceForwardTrainSync(p, {
    shards: shards.map((s) => ({ x: Float64Array.from(s), shape: [s.length, 1] })),
    axis: 1,
    gamma: one(1),
    beta: one(0),
    eps: 1e-3,
    momentum: 0.99,
    runningMean: one(0),
    runningVar: one(1),
    dtype: 'float64',
    paramDtype: 'float64',
  });
  return { mean: r.mean[0]!, variance: r.variance[0]! };
}

const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0) / xs.length);
/** Median of |v|: robust where a near-zero batch variance makes single errors huge. */
const medianAbs = (xs: number[]) => {
  const s = xs.map(Math.abs).sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export const syncBn: Topic<SyncBnData> = {
  id: 'sync-bn',
  title: 'Synchronized BatchNorm: 8 devices with 2 examples each',
  summary: 'per-device batches of 2 versus the global batch: how noisy the statistics are, what synchronizing buys',
  checks: ['bn:sync:concatenation:*', 'bn:sync:split-invariance:*', 'bn:sync:running-var-bessel:*', 'bn:sync:backward:*', 'bn:sync:large-offset:*'],
  compute() {
    const p = resolveProfile('keras');
    const z = normals(20261130, DEVICES * 2, MU, SIGMA);
    const shards = Array.from({ length: DEVICES }, (_, d) => [z[2 * d]!, z[2 * d + 1]!].map((v) => Number(v.toFixed(3))));
    const per = shards.map((s) => stats(p, s));
    const sync = syncStats(p, shards);
    const all = stats(p, shards.flat());
    const rows: NoiseRow[] = [];
    let yErrDevice = 0;
    let yErrSync = 0;
    for (const k of PER_DEVICE) {
      const noise = normals(1000 + k, TRIALS * DEVICES * k, MU, SIGMA);
      const eMeanDev: number[] = [];
      const eMeanSync: number[] = [];
      const eScaleDev: number[] = [];
      const eScaleSync: number[] = [];
      const eyDev: number[] = [];
      const eySync: number[] = [];
      for (let t = 0; t < TRIALS; t++) {
        const sh = Array.from({ length: DEVICES }, (_, d) => Array.from(noise.subarray((t * DEVICES + d) * k, (t * DEVICES + d + 1) * k)));
        const s = syncStats(p, sh);
        const scaleS = Math.sqrt(s.variance + 1e-3);
        eMeanSync.push((s.mean - MU) / SIGMA);
        eScaleSync.push(scaleS / SIGMA - 1);
        // a fixed input one sigma above the mean: its normalized value should be 1
        eySync.push((MU + SIGMA - s.mean) / scaleS - 1);
        for (const shard of sh) {
          const d = stats(p, shard);
          const scaleD = Math.sqrt(d.variance + 1e-3);
          eMeanDev.push((d.mean - MU) / SIGMA);
          eScaleDev.push(scaleD / SIGMA - 1);
          eyDev.push((MU + SIGMA - d.mean) / scaleD - 1);
        }
      }
      rows.push({ perDevice: k, meanErrDevice: rms(eMeanDev), meanErrSync: rms(eMeanSync), scaleErrDevice: rms(eScaleDev), scaleErrSync: rms(eScaleSync) });
      if (k === 2) {
        yErrDevice = medianAbs(eyDev);
        yErrSync = medianAbs(eySync);
      }
    }
    return {
      devices: DEVICES,
      mu: MU,
      sigma: SIGMA,
      trials: TRIALS,
      example: {
        shards,
        deviceMean: per.map((s) => s.mean),
        deviceVar: per.map((s) => s.variance),
        syncMean: sync.mean,
        syncVar: sync.variance,
        globalMean: all.mean,
        globalVar: all.variance,
      },
      rows,
      yErrDevice,
      yErrSync,
    };
  },
  render(d) {
    const e = d.example;
    const r2 = d.rows.find((r) => r.perDevice === 2)!;
    return [
      `Detection models train with 1 or 2 images per device. Here: ${d.devices} devices, 2 examples each, from a`,
      `population with mean ${d.mu} and standard deviation ${d.sigma} (one channel). One training step:`,
      table(
        ['device', 'its 2 examples', 'mean (per device)', 'var 1/m (per device)'],
        e.shards.map((s, i) => [String(i), list(s), num(e.deviceMean[i]!, 5), num(e.deviceVar[i]!, 5)]),
      ),
      '',
      `Synchronized (per-device (count, mean, M2) merged by Chan's update): mean ${num(e.syncMean, 6)}, variance ${num(e.syncVar, 6)};`,
      `single-device BN over all 16 examples: mean ${num(e.globalMean, 6)}, variance ${num(e.globalVar, 6)}. The same numbers:`,
      'synchronized BN IS BN over the global batch, whatever the split (bn:sync:split-invariance).',
      '',
      `How noisy, over ${d.trials} seeded steps (RMS errors; the mean's in units of sigma, the scale sqrt(var + eps) relative to sigma):`,
      table(
        ['examples per device', 'mean error, per device', 'mean error, synchronized', 'scale error, per device', 'scale error, synchronized'],
        d.rows.map((r) => [String(r.perDevice), num(r.meanErrDevice, 3), num(r.meanErrSync, 3), num(r.scaleErrDevice, 3), num(r.scaleErrSync, 3)]),
      ),
      `The mean's error falls as 1/sqrt(m): ${d.devices} devices synchronized behave like one device with ${d.devices}x the batch`,
      `(per device m = 2: ${num(r2.meanErrDevice, 3)}; synchronized, 16 examples: ${num(r2.meanErrSync, 3)}, about 1/sqrt(${d.devices}) of it).`,
      'With 1 example per device the per-device variance is 0: every output is beta, nothing is learned.',
      `With 2, an input one sigma above the mean should normalize to 1; its median error is ${num(d.yErrDevice, 3)} per device and`,
      `${num(d.yErrSync, 3)} synchronized (the per-device mean error is heavy-tailed: a near-zero variance sends single`,
      'outputs far away). Training normalizes with that noise; inference uses the running statistics: they disagree.',
      '',
      'What it costs: one all-reduce of (count, mean, M2), or (count, sum x, sum of squared deviations), per',
      'channel per step, and one more of (sum dy, sum dy·x-hat) in the backward pass. What it must get right:',
      'weights n_r / N when merging (not a mean of means), the global count in the running variance\'s',
      'Bessel factor, the all-reduce in the backward, and a merge that does not subtract E[x]^2 from E[x^2]',
      '(Keras 3 does: see docs/adapters.md).',
    ].join('\n');
  },
  plots: {
    'sync-bn-noise': (d) =>
      linePlot({
        title: 'Noise of BN statistics: per device vs synchronized over 8 devices',
        subtitle: `RMS error of the batch mean (units of sigma), ${d.trials} seeded steps per point; dashed: 1/sqrt(m) and 1/sqrt(8m)`,
        xLabel: 'examples per device (log scale)',
        yLabel: 'RMS error of the batch mean / sigma',
        xScale: 'log',
        yScale: 'log',
        legend: 'top-right',
        series: [
          { name: 'per device (m examples)', points: d.rows.map((r) => [r.perDevice, r.meanErrDevice] as [number, number]), style: 'line' as const },
          { name: `synchronized (${d.devices}m examples)`, points: d.rows.map((r) => [r.perDevice, r.meanErrSync] as [number, number]), style: 'line' as const },
          { name: '1/sqrt(m)', points: d.rows.map((r) => [r.perDevice, 1 / Math.sqrt(r.perDevice)] as [number, number]), style: 'line' as const, dashed: true },
          { name: `1/sqrt(${d.devices}m)`, points: d.rows.map((r) => [r.perDevice, 1 / Math.sqrt(d.devices * r.perDevice)] as [number, number]), style: 'line' as const, dashed: true },
        ],
      }),
  },
};
