/**
 * half-precision: why BN in float16 / bfloat16 computes in float32 and keeps its statistics there.
 * Every number is computed at run time: the conversions (src/numerics/half.ts), the reference on
 * half inputs, and sums carried out in each precision.
 */
import { roundTo } from '../../contract/dtypes.js';
import { encodeHalfArray, HALF_FORMATS, roundToHalf } from '../../numerics/half.js';
import { createReference } from '../../reference/reference.js';
import { type Topic, normals, num, table } from '../common.js';
import { linePlot } from '../svg.js';

export interface HalfEpsRow {
  eps: number;
  float16: number;
  bfloat16: number;
}

export interface CancellationRow {
  ratio: number;
  /** max |x-hat error| when x − mean is formed with the mean held in each precision. */
  bfloat16: number;
  float16: number;
  float32: number;
}

export interface HalfData {
  float16: { max: number; overflowAt: number; tiny: number; minNormal: number; u: number };
  bfloat16: { max: number; tiny: number; u: number };
  eps: HalfEpsRow[];
  /** A moving variance of 1e5 kept in float32 vs cast to float16, and y at x = mean + 300. */
  runningVar: { value: number; asFloat16: number; yFloat32: number; yCastToHalf: number };
  /** Sums of m values of v accumulated in float16 and in float32, vs exact. */
  sums: Array<{ m: number; v: number; exact: number; float16: number; float32: number; meanFromFloat16: number }>;
  /** The reference on float16 x (mixed: float32 statistics) for a channel of 4096 values near 20. */
  mixedMean: { mean: number; exactSum: number };
  cancellation: CancellationRow[];
}

/** Sequential sum with every addition rounded to dtype. */
function sumIn(dtype: 'float16' | 'float32', values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s = roundTo(dtype, s + values[i]!);
  return s;
}

const RATIOS = [1, 3, 10, 30, 100, 300, 1000, 3000];

export const halfPrecision: Topic<HalfData> = {
  id: 'half-precision',
  title: 'Half precision: float16 and bfloat16 inputs, float32 arithmetic',
  summary: 'float16 / bfloat16 BN: 65504, eps rounding, sums that overflow, bfloat16 cancellation; why statistics stay float32',
  checks: ['bn:edge:half-*', 'bn:edge:large-offset:dtype=bfloat16*', 'bn:agreement:*;params=float32*', 'bn:gradients:*;params=float32*'],
  compute() {
    const f16 = HALF_FORMATS.float16;
    const bf16 = HALF_FORMATS.bfloat16;
    const eps = [1e-3, 1e-5, 1e-8].map((e) => ({ eps: e, float16: roundToHalf(e, 'float16'), bfloat16: roundToHalf(e, 'bfloat16') }));
    // a moving variance above 65504: float32 keeps it, a cast to float16 makes it inf and y = beta
    const rv = 1e5;
    const dev = 300;
    const runningVar = { value: rv, asFloat16: roundToHalf(rv, 'float16'), yFloat32: dev / Math.sqrt(Math.fround(rv) + 1e-3), yCastToHalf: dev / Math.sqrt(roundToHalf(rv, 'float16') + 1e-3) };
    const sums = [
      { m: 4096, v: 1 },
      { m: 4096, v: 20 },
    ].map(({ m, v }) => {
      const values = new Float64Array(m).fill(v);
      const s16 = sumIn('float16', values);
      return { m, v, exact: m * v, float16: s16, float32: sumIn('float32', values), meanFromFloat16: s16 / m };
    });
    // the reference, mixed precision: float16 x near 20, float32 statistics
    const xs = Float64Array.from(normals(12, 4096, 20, 0.5), (v) => roundToHalf(v, 'float16'));
    const ref = createReference('keras', { precisions: [{ dtype: 'float16', paramDtype: 'float32' }] });
    const C = 1;
    const req = {
      dtype: 'float16' as const,
      paramDtype: 'float32' as const,
      x: encodeHalfArray(xs, 'float16'),
      shape: [4096, C],
      axis: 1,
      gamma: Float32Array.of(1),
      beta: Float32Array.of(0),
      eps: 1e-3,
      momentum: 0.9,
      runningMean: Float32Array.of(0),
      runningVar: Float32Array.of(1),
    };
    const out = ref.forwardTrain!(req) as { mean: Float32Array };
    const mixedMean = { mean: out.mean[0]!, exactSum: xs.reduce((a, b) => a + b, 0) };
    // cancellation: x = ratio + z (float32 values, std ~1); x-hat exact vs with the mean held in each precision
    const z = normals(7, 64);
    const cancellation = RATIOS.map((ratio) => {
      const x = Array.from(z, (v) => Math.fround(ratio + v));
      const mean = x.reduce((a, b) => a + b, 0) / x.length;
      const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length);
      const err = (dtype: 'bfloat16' | 'float16' | 'float32') => Math.max(...x.map((v) => Math.abs((v - roundTo(dtype, mean)) / sd - (v - mean) / sd)));
      return { ratio, bfloat16: err('bfloat16'), float16: err('float16'), float32: err('float32') };
    });
    return {
      float16: { max: f16.max, overflowAt: f16.overflowThreshold, tiny: f16.tiny, minNormal: f16.minNormal, u: 2 ** -11 },
      bfloat16: { max: bf16.max, tiny: bf16.tiny, u: 2 ** -8 },
      eps,
      runningVar,
      sums,
      mixedMean,
      cancellation,
    };
  },
  render(d) {
    return [
      `float16: 11 significant bits (u = 2^-11 = ${num(d.float16.u, 4)}), largest ${num(d.float16.max)} (from ${num(d.float16.overflowAt)} up everything rounds to Infinity),`,
      `smallest normal ${num(d.float16.minNormal, 4)}, smallest subnormal ${num(d.float16.tiny, 4)}. bfloat16: float32's range (largest ${num(d.bfloat16.max, 4)})`,
      `with 8 significant bits (u = 2^-8 = ${num(d.bfloat16.u, 4)}). Every framework computes BN for half inputs in float32 and keeps`,
      'gamma, beta and the running statistics in float32 (mixed precision); the bugs come from doing part of it in half.',
      '',
      'eps held in half:',
      table(['eps', 'in float16', 'in bfloat16'], d.eps.map((r) => [num(r.eps), num(r.float16, 8), num(r.bfloat16, 8)])),
      `eps = 1e-8 is below half of float16's smallest subnormal: it becomes 0, and a constant channel gives 0/0 = NaN.`,
      '',
      `A running variance of ${num(d.runningVar.value)} is fine in float32; cast to float16 it is ${num(d.runningVar.asFloat16)}, and inference`,
      `turns x − mean = 300 into ${num(d.runningVar.yCastToHalf)} instead of ${num(d.runningVar.yFloat32, 5)}: the output silently becomes beta.`,
      '',
      'Summing m equal values, every addition rounded:',
      table(
        ['m', 'value', 'exact sum', 'float16 sum', 'float32 sum', 'mean from the float16 sum'],
        d.sums.map((s) => [String(s.m), num(s.v), num(s.exact), num(s.float16), num(s.float32), num(s.meanFromFloat16)]),
      ),
      'In float16, 2048 + 1 rounds back to 2048 (the spacing there is 2), and 4096 values of 20 pass 65504.',
      `The reference on the same kind of data (4096 float16 values near 20, float32 statistics): mean ${num(d.mixedMean.mean)}`,
      `(the exact sum is ${num(d.mixedMean.exactSum)}, far past float16's range, and nothing overflows).`,
      '',
      'Centring with the mean held in each precision (64 float32 values, std ~1): max |x-hat error| at |mean|/std = ratio:',
      table(
        ['|mean|/std', 'mean in bfloat16', 'mean in float16', 'mean in float32'],
        d.cancellation.map((r) => [num(r.ratio), num(r.bfloat16, 3), num(r.float16, 3), num(r.float32, 3)]),
      ),
      `A bfloat16 mean costs ~ratio·2^-9 of x-hat: ${num(d.cancellation.find((r) => r.ratio === 100)!.bfloat16, 3)} at |mean|/std = 100; float16 reaches that at ~1000;`,
      'in float32 it stays small. Hence: half inputs, float32 arithmetic, one rounding of y at the end.',
    ].join('\n');
  },
  plots: {
    'half-cancellation': (d) =>
      linePlot({
        title: 'Centring in half precision: x-hat error vs |mean| / std',
        subtitle: 'max |x-hat error| over 64 float32 values when x − mean uses the mean held in each precision',
        legend: 'bottom-right',
        xLabel: '|mean| / std (log scale)',
        yLabel: 'max |x-hat error| (log scale)',
        xScale: 'log',
        yScale: 'log',
        series: (['bfloat16', 'float16', 'float32'] as const).map((k) => ({ name: `mean in ${k}`, points: d.cancellation.map((r) => [r.ratio, Math.max(r[k], 1e-12)] as [number, number]), style: 'both' as const })),
        refLines: [{ axis: 'y', value: 0.01, label: '1% of x-hat' }],
      }),
  },
};
