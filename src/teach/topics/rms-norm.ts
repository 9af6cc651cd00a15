/**
 * rms-norm: RMSNorm, y = x / √(mean(x²) + eps) · gamma, LayerNorm's grouping without centring.
 * Every y here is computed at run time by the float64 reference (referenceFamily 'rmsNorm'),
 * the float16 arithmetic with the project's own rounding (src/numerics/half.ts), and float32
 * with Math.fround: no centring (a shift changes y), the frameworks' eps conventions and what
 * eps does to small rows, and float16 squares and sums that overflow or stop growing.
 */
import type { LayerNormRequest, NormForwardResult, RmsNormRequest, RmsNormResult } from '../../contract/contract.js';
import { resolveProfile } from '../../contract/profiles.js';
import { decodeHalfArray, encodeHalfArray, HALF_FORMATS, roundToHalf } from '../../numerics/half.js';
import { referenceFamily } from '../../reference/family.js';
import { type Topic, list, normals, num, table } from '../common.js';
import { linePlot } from '../svg.js';

/** One framework's default eps for RMSNorm, and where it is stated. */
export interface EpsConvention {
  label: string;
  eps: number;
  source: string;
}

export interface HalfRow {
  x: number[];
  /** Every step in float16 (each operation rounded once, sequential sum): the squares, the running sums, mean(x²), rms, y. */
  squares16: number[];
  sums16: number[];
  meanSquare16: number;
  rms16: number;
  y16: number[];
  /** Squares and sum in float32, y rounded to float16 once (what the frameworks do for float16 inputs). */
  y32: number[];
  /** The reference: float16 x read exactly, float64 arithmetic, y rounded once to float16. */
  yReference: number[];
  exactMeanSquare: number;
}

export interface LongRow {
  m: number;
  a: number;
  exactMeanSquare: number;
  meanSquare16: number;
  /** y of every element (all equal) with float16 arithmetic, and the reference's. */
  y16: number[];
  yReference: number[];
}

export interface RmsNormData {
  shift: { x: number[]; t: number; eps: number; rmsBefore: number[]; rmsAfter: number[]; lnBefore: number[]; lnAfter: number[]; rmsScaled: number[]; dRms: number; dLn: number; dScaled: number };
  conventions: EpsConvention[];
  /** The largest float16 value whose square is finite in float16, and the smallest whose square rounds to Infinity. */
  squareLimit: { largestFinite: number; itsSquare: number; firstOverflow: number; itsSquare16: number };
  overflowSquare: HalfRow;
  overflowSum: HalfRow;
  long: LongRow[];
  tiny: { x: number[]; meanSquare: number; rows: Array<{ label: string; eps: number; y: number[]; outRms: number }> };
  curve: { inputRms: number[]; series: Array<{ label: string; eps: number; outRms: number[] }> };
}

const PROFILE = resolveProfile('pytorch'); // no eps floor (no profile has one): eps is used as given
const r16 = (v: number) => roundToHalf(v, 'float16');
const f32 = Math.fround;

/** Machine epsilon 2^(1 − p) of a format with p significand bits: torch.finfo(dtype).eps. */
const machineEps = (p: number) => 2 ** (1 - p);
const EPS_F32 = machineEps(24);
const EPS_F16 = machineEps(HALF_FORMATS.float16.precision);
const EPS_BF16 = machineEps(HALF_FORMATS.bfloat16.precision);

/**
 * The defaults, each checked against the installed package (torch 2.13, keras 3.15.1, onnx 1.23.1):
 * torch: F.rms_norm(input, normalized_shape, weight=None, eps=None) and nn.RMSNorm(eps=None); eps None
 * is torch.finfo(input.dtype).eps (F.rms_norm on a float32 row of 1e-4 gives 0.2782 = 1e-4/√(1e-8 + 2^-23));
 * Keras: layers.RMSNormalization(axis=-1, epsilon=1e-6); ops.rms_normalization(epsilon=None) uses
 * keras.config.epsilon() = 1e-7; ONNX RMSNormalization-23: epsilon 1e-5, stash_type 1 (float32 arithmetic).
 */
export const RMS_EPS_CONVENTIONS: EpsConvention[] = [
  { label: 'keras.ops (epsilon=None)', eps: 1e-7, source: 'keras.ops.rms_normalization epsilon=None: keras.config.epsilon()' },
  { label: 'torch float32 (eps=None)', eps: EPS_F32, source: 'F.rms_norm / nn.RMSNorm eps=None: torch.finfo(float32).eps' },
  { label: 'Keras layer', eps: 1e-6, source: 'keras.layers.RMSNormalization(epsilon=1e-6)' },
  { label: 'ONNX', eps: 1e-5, source: 'RMSNormalization-23 attribute epsilon, default 1e-5' },
  { label: 'torch float16 (eps=None)', eps: EPS_F16, source: 'torch.finfo(float16).eps = 2^-10' },
  { label: 'torch bfloat16 (eps=None)', eps: EPS_BF16, source: 'torch.finfo(bfloat16).eps = 2^-7' },
];

/** The float64 reference's RMSNorm (or LayerNorm) of one row, gamma 1 (beta 0). */
function refRow(op: 'rmsNorm' | 'layerNorm', x: ArrayLike<number>, eps: number): number[] {
  const m = x.length;
  const req: RmsNormRequest | LayerNormRequest = { x: Float64Array.from(x), shape: [1, m], axis: 1, gamma: new Float64Array(m).fill(1), eps, ...(op === 'layerNorm' ? { beta: new Float64Array(m) } : {}) };
  return Array.from((referenceFamily(PROFILE, op, req) as NormForwardResult).y);
}

/** The reference on a float16 row: x read exactly, float64 arithmetic, y rounded once to float16. */
function refHalf(x: number[], eps: number): number[] {
  const m = x.length;
  const req: RmsNormRequest = { dtype: 'float16', paramDtype: 'float32', x: encodeHalfArray(x, 'float16'), shape: [1, m], axis: 1, gamma: new Float32Array(m).fill(1), eps };
  return Array.from(decodeHalfArray((referenceFamily(PROFILE, 'rmsNorm', req) as RmsNormResult).y as Uint16Array, 'float16'));
}

/** RMSNorm of a float16 row with every operation in float16 (square, sequential sum, divide, add eps, sqrt, divide). */
function rmsHalf(x: number[], eps: number): Omit<HalfRow, 'x' | 'y32' | 'yReference' | 'exactMeanSquare'> {
  const squares16 = x.map((v) => r16(v * v));
  const sums16: number[] = [];
  let s = 0;
  for (const q of squares16) sums16.push((s = r16(s + q)));
  const meanSquare16 = r16(s / x.length);
  const rms16 = r16(Math.sqrt(r16(meanSquare16 + r16(eps))));
  return { squares16, sums16, meanSquare16, rms16, y16: x.map((v) => r16(v / rms16)) };
}

/** Squares and sum in float32 (sequential), y rounded to float16 once. */
function rmsF32(x: number[], eps: number): number[] {
  let s = 0;
  for (const v of x) s = f32(s + f32(v * v));
  const rms = f32(Math.sqrt(f32(f32(s / x.length) + f32(eps))));
  return x.map((v) => r16(f32(v / rms)));
}

const exactMeanSquare = (x: ArrayLike<number>) => Array.from(x).reduce((a, v) => a + v * v, 0) / x.length;
const rmsOf = (y: ArrayLike<number>) => Math.sqrt(exactMeanSquare(y));
const maxAbsDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

function halfRow(x: number[], eps: number): HalfRow {
  const xs = x.map(r16); // the row as float16 values
  return { x: xs, ...rmsHalf(xs, eps), y32: rmsF32(xs, eps), yReference: refHalf(xs, eps), exactMeanSquare: exactMeanSquare(xs) };
}

/** Smallest positive float16 value whose float16 square is Infinity, and the float16 value just below it. */
function squareLimit(): RmsNormData['squareLimit'] {
  let prev = 0;
  for (let bits = 1; bits < 0x7c00; bits++) {
    const v = decodeHalfArray(Uint16Array.of(bits), 'float16')[0]!;
    if (r16(v * v) === Infinity) return { largestFinite: prev, itsSquare: r16(prev * prev), firstOverflow: v, itsSquare16: r16(v * v) };
    prev = v;
  }
  throw new Error('unreachable: 65504² overflows float16');
}

export const rmsNorm: Topic<RmsNormData> = {
  id: 'rms-norm',
  title: 'RMSNorm: no centring, eps conventions, float16 squares',
  summary: 'RMSNorm: not shift-invariant, eps defaults (torch finfo eps, Keras 1e-6, ONNX 1e-5) against small rows, float16 squares and sums that overflow from |x| = 256',
  checks: ['rms:normalization:*', 'rms:invariance:*', 'rms:identities:*', 'rms:edge:*', 'rms:agreement:*', 'rms:gradients:*'],
  compute() {
    // 1. no centring: shift a row by 3; LayerNorm ignores it, RMSNorm does not; both ignore a scale of 2
    const x = Array.from(normals(31, 8), (v) => Number(v.toFixed(3)));
    const t = 3;
    const eps = 1e-6;
    const xs = x.map((v) => v + t);
    const rmsBefore = refRow('rmsNorm', x, eps);
    const rmsAfter = refRow('rmsNorm', xs, eps);
    const lnBefore = refRow('layerNorm', x, eps);
    const lnAfter = refRow('layerNorm', xs, eps);
    const rmsScaled = refRow('rmsNorm', x.map((v) => 2 * v), eps);
    const shift = { x, t, eps, rmsBefore, rmsAfter, lnBefore, lnAfter, rmsScaled, dRms: maxAbsDiff(rmsBefore, rmsAfter), dLn: maxAbsDiff(lnBefore, lnAfter), dScaled: maxAbsDiff(rmsBefore, rmsScaled) };

    // 2. float16: a square past 65504, and squares that fit but whose sum does not (ONNX's eps)
    const overflowSquare = halfRow([256, -180, 120, -60], 1e-5);
    const overflowSum = halfRow([200, -190, 180, -170], 1e-5);
    // long rows of equal values: the float16 sum stops growing (spacing 2 above 2048, 32 above 32768) before it overflows
    const long = [
      { m: 4, a: 200 },
      { m: 4096, a: 1 },
      { m: 4096, a: 4 },
    ].map(({ m, a }) => {
      const row = new Array<number>(m).fill(a);
      const h = rmsHalf(row, 1e-5);
      return { m, a, exactMeanSquare: a * a, meanSquare16: h.meanSquare16, y16: h.y16.slice(0, 1), yReference: refHalf(row, 1e-5).slice(0, 1) };
    });

    // 3. eps against the row's magnitude: a row of |x| ~ 1e-4 (mean(x²) ~ 1e-8)
    const z = normals(41, 8);
    const tinyX = Array.from(z, (v) => Number(((v / rmsOf(z)) * 1e-4).toPrecision(3))); // RMS ≈ 1e-4
    const tiny = {
      x: tinyX,
      meanSquare: exactMeanSquare(tinyX),
      rows: [{ label: 'eps = 0', eps: 0, source: '' }, ...RMS_EPS_CONVENTIONS].map((c) => {
        const y = refRow('rmsNorm', tinyX, c.eps);
        return { label: c.label, eps: c.eps, y, outRms: rmsOf(y) };
      }),
    };

    // the output's RMS against the input's, per convention (a seeded row scaled to each RMS)
    const base = normals(43, 16);
    const unit = Array.from(base, (v) => v / rmsOf(base));
    const inputRms = Array.from({ length: 33 }, (_, i) => 10 ** (-6 + i / 4));
    const curve = {
      inputRms,
      series: RMS_EPS_CONVENTIONS.filter((c) => c.label !== 'keras.ops (epsilon=None)').map((c) => ({ label: `${c.label}: eps ${num(c.eps, c.eps < 1e-4 ? 6 : 3)}`, eps: c.eps, outRms: inputRms.map((r) => rmsOf(refRow('rmsNorm', unit.map((v) => v * r), c.eps))) })),
    };
    return { shift, conventions: RMS_EPS_CONVENTIONS, squareLimit: squareLimit(), overflowSquare, overflowSum, long, tiny, curve };
  },
  render(d) {
    const s = d.shift;
    const sq = d.squareLimit;
    const byLabel = (label: string) => d.tiny.rows.find((r) => r.label === label)!;
    const half = (h: HalfRow, name: string) => [
      `${name}: x = ${list(h.x)} (float16 values), eps 1e-5 (ONNX).`,
      `  float16 squares ${list(h.squares16)}, running sums ${list(h.sums16)},`,
      `  mean(x²) ${num(h.meanSquare16)}, rms ${num(h.rms16)}, y = x / rms = ${list(h.y16, 4)}.`,
      `  Exact mean(x²) ${num(h.exactMeanSquare)}, rms ${num(Math.sqrt(h.exactMeanSquare), 5)}: the reference's y (rounded once to float16) ${list(h.yReference, 4)};`,
      `  squares and sum in float32, y rounded to float16: ${list(h.y32, 4)}.`,
    ];
    return [
      'RMSNorm normalizes each row (LayerNorm\'s grouping, see `explain which-axes`) by its root mean square:',
      'y = x / √(mean(x²) + eps) · gamma. No mean is subtracted and there is no beta.',
      '',
      `Not shift-invariant. A row x (eps ${num(s.eps)}), then x + ${s.t}, through the reference:`,
      table(
        ['', 'x', 'RMSNorm y', `RMSNorm y of x + ${s.t}`, 'LayerNorm y', `LayerNorm y of x + ${s.t}`],
        s.x.map((v, i) => [String(i), num(v), num(s.rmsBefore[i]!, 5), num(s.rmsAfter[i]!, 5), num(s.lnBefore[i]!, 5), num(s.lnAfter[i]!, 5)]),
      ),
      `max |Δy| from the shift: RMSNorm ${num(s.dRms, 4)}, LayerNorm ${num(s.dLn, 3)} (rounding only). Both are scale-invariant up to eps:`,
      `RMSNorm of 2x differs from RMSNorm of x by at most ${num(s.dScaled, 3)}. So an RMSNorm implementation that centres`,
      '(or a LayerNorm used in its place) is a different function, not a rounding difference.',
      '',
      `eps: every framework puts it inside the root, but the defaults span a factor of ${num(Math.max(...d.conventions.map((c) => c.eps)) / Math.min(...d.conventions.map((c) => c.eps)))}:`,
      table(
        ['convention', 'eps', 'stated in'],
        d.conventions.map((c) => [c.label, num(c.eps), c.source]),
      ),
      '',
      `eps only matters against mean(x²). A row with |x| ~ 1e-4: x = ${list(d.tiny.x)},`,
      `mean(x²) = ${num(d.tiny.meanSquare)}. The output's RMS is √(mean(x²) / (mean(x²) + eps)), 1 without eps:`,
      table(
        ['eps', 'value', 'y[0], y[1], y[2]', 'RMS of y'],
        d.tiny.rows.map((r) => [r.label, num(r.eps), r.y.slice(0, 3).map((v) => num(v, 4)).join(', '), num(r.outRms, 4)]),
      ),
      `The same float32 row through torch (eps=None) and ONNX (default): y differs by a factor of ${num(byLabel('torch float32 (eps=None)').outRms / byLabel('ONNX').outRms, 3)};`,
      `and torch's eps follows the dtype: the row cast to float16 gets an eps ${num(EPS_F16 / EPS_F32)} times larger (y's RMS ${num(byLabel('torch float16 (eps=None)').outRms, 3)}).`,
      '',
      'float16 squares. float16\'s largest value is 65504 (from 65520 up everything rounds to Infinity), so',
      `${num(sq.largestFinite)}² rounds to ${num(sq.itsSquare)} but ${num(sq.firstOverflow)}² rounds to ${num(sq.itsSquare16)}. An RMSNorm that squares and sums in float16:`,
      '',
      ...half(d.overflowSquare, 'A square overflows'),
      '',
      ...half(d.overflowSum, 'Every square fits, the sum does not'),
      '',
      'Rows of m equal values a, the float16 way (sequential float16 sum) vs the reference (float16 y, one rounding):',
      table(
        ['m', 'a', 'exact mean(x²)', 'float16 mean(x²)', 'float16 y', 'reference y'],
        d.long.map((r) => [String(r.m), num(r.a), num(r.exactMeanSquare), num(r.meanSquare16), num(r.y16[0]!, 4), num(r.yReference[0]!, 4)]),
      ),
      'Long rows need no large values: past 2048 the float16 spacing is 2, past 32768 it is 32, and a sum of',
      'small squares stops growing long before 65504: mean(x²) comes out too small and y too large, with no',
      'Infinity or NaN to warn. Hence float32 squares and sums for half inputs (torch computes float16 RMSNorm',
      'in float32 on CPU; ONNX RMSNormalization-23 stash_type 1 says float32), one rounding of y at the end.',
    ].join('\n');
  },
  plots: {
    'rms-norm-eps': (d) =>
      linePlot({
        title: 'RMSNorm: what eps leaves of a small row',
        subtitle: 'RMS of y = x / √(mean(x²) + eps) against the RMS of x, per framework default (the reference, float64)',
        legend: 'top-left',
        xLabel: 'RMS of the input row (log scale)',
        yLabel: 'RMS of the output y (1 = no eps effect)',
        xScale: 'log',
        yDomain: [0, 1.05],
        series: d.curve.series.map((s) => ({ name: s.label, points: d.curve.inputRms.map((r, i) => [r, s.outRms[i]!] as [number, number]), style: 'line' as const })),
        refLines: [{ axis: 'y', value: Math.SQRT1_2, label: 'mean(x²) = eps: y keeps 1/√2' }],
      }),
  },
};
