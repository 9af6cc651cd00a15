/**
 * The distribution of an implementation's errors relative to the tolerance bound: sample
 * forwardTrain requests over a wide range of offset-to-spread ratios, run the implementation,
 * and divide each output element's error by the bound that `expectationFor` allows for it.
 * A ratio <= 1 passes; an honest kernel's ratios sit well below 1, a one-pass kernel's spill over.
 */
import type { BatchNormImplementation, DType, ForwardTrainRequest } from '../contract/contract.js';
import { accumulationFor, expectationFor } from '../judge/compare.js';
import { resolveProfile } from '../contract/profiles.js';
import { normals, rng } from './common.js';
import { histogram } from './svg.js';
import { errorRatio } from '../judge/tolerance.js';

export interface ErrorRatioSample {
  implementation: string;
  dtype: DType;
  requests: number;
  /** error / bound for every compared output element (y, mean, variance, runningMean, runningVar). */
  ratios: number[];
  /** Elements of singular channels (src/judge/tolerance.ts): the bound is Infinity, no claim, no ratio. */
  unbounded: number;
  /** How many ratios exceed 1 (would fail), and the largest. */
  over: number;
  max: number;
  /** The implementation threw or returned nothing this many times (not counted in ratios). */
  errors: number;
}

export interface SampleOptions {
  requests?: number;
  seed?: number;
  /** log10 range of |mean|/std to sample (default [0, 5]). */
  log10Ratio?: [number, number];
}

/** A reproducible request: shape [m, C], channel c with std 10^a and offset r * std. */
export function sampleRequest(seed: number, dtype: DType, log10Ratio: [number, number]): ForwardTrainRequest {
  const r = rng(seed);
  const m = 2 + Math.floor(r() * 63);
  const C = 1 + Math.floor(r() * 3);
  const z = normals(seed + 1, m * C);
  const x = new Float64Array(m * C);
  for (let c = 0; c < C; c++) {
    const std = 10 ** (-2 + 4 * r());
    const ratio = 10 ** (log10Ratio[0] + (log10Ratio[1] - log10Ratio[0]) * r());
    const mean = (r() < 0.5 ? -1 : 1) * ratio * std;
    for (let i = 0; i < m; i++) x[i * C + c] = mean + std * z[i * C + c]!;
  }
  const A = (vals: ArrayLike<number>) => (dtype === 'float32' ? Float32Array.from(vals) : Float64Array.from(vals));
  const gamma = A(Array.from({ length: C }, () => 0.5 + r()));
  const beta = A(Array.from({ length: C }, () => r() - 0.5));
  return {
    x: A(x),
    shape: [m, C],
    axis: 1,
    gamma,
    beta,
    eps: 1e-3,
    momentum: 0.9,
    runningMean: A(new Array<number>(C).fill(0)),
    runningVar: A(new Array<number>(C).fill(1)),
  };
}

export async function sampleErrorRatios(impl: BatchNormImplementation, opts: SampleOptions = {}): Promise<ErrorRatioSample> {
  if (!impl.forwardTrain) throw new Error(`${impl.name} has no forwardTrain to sample`);
  const profile = resolveProfile(impl.profile);
  const dtype: DType = impl.dtypes.includes('float32') ? 'float32' : 'float64';
  const n = opts.requests ?? 200;
  const seed = opts.seed ?? 1;
  const range = opts.log10Ratio ?? [0, 5];
  const ratios: number[] = [];
  let errors = 0;
  let unbounded = 0;
  for (let k = 0; k < n; k++) {
    const req = sampleRequest(seed * 100_003 + k * 7, dtype, range);
    // axis 1 of [m, C] is the last axis: fine for 'last' and 'any'; 'first' implementations get [C, m] with axis 0
    let request = req;
    if (impl.axes === 'first') {
      const [m, C] = req.shape as [number, number];
      const A = dtype === 'float32' ? Float32Array : Float64Array;
      const xt = new A(m * C);
      for (let i = 0; i < m; i++) for (let c = 0; c < C; c++) xt[c * m + i] = req.x[i * C + c]!;
      request = { ...req, x: xt, shape: [C, m], axis: 0 };
    }
    let got: Record<string, ArrayLike<number>>;
    try {
      got = (await impl.forwardTrain({ ...request, x: request.x.slice(), gamma: request.gamma.slice(), beta: request.beta.slice(), runningMean: request.runningMean.slice(), runningVar: request.runningVar.slice() })) as unknown as Record<string, ArrayLike<number>>;
    } catch {
      errors++;
      continue;
    }
    const e = expectationFor('forwardTrain', profile, request, { accumulation: accumulationFor(impl, dtype) });
    for (const [output, expected] of Object.entries(e.expected)) {
      const g = got?.[output];
      if (!g) continue;
      const b = e.bounds[output]!;
      for (let i = 0; i < expected.length; i++) {
        if (b[i] === Infinity) unbounded++;
        else ratios.push(errorRatio(Math.abs(g[i]! - expected[i]!), b[i]!));
      }
    }
  }
  return { implementation: impl.name, dtype, requests: n, ratios, unbounded, over: ratios.filter((r) => r > 1).length, max: Math.max(0, ...ratios), errors };
}

/** Log-spaced bins of error/bound: [1e-6, ..., 1e3]; smaller ratios (and 0) go in the first bin, larger in the last. */
export const RATIO_EDGES = Array.from({ length: 19 }, (_, i) => 10 ** (-6 + i * 0.5));

export function binRatios(ratios: number[], edges = RATIO_EDGES): number[] {
  const n = edges.length - 1;
  const counts = new Array<number>(n).fill(0);
  for (const r of ratios) {
    let i = 0;
    while (i < n - 1 && !(r < edges[i + 1]!)) i++;
    counts[i]!++;
  }
  return counts;
}

/** Histogram of error / bound for one or more samples (stacked), with the pass line at 1. */
export function errorRatioPlot(samples: ErrorRatioSample[], title = 'Errors relative to the tolerance bound'): string {
  const total = samples.reduce((a, s) => a + s.ratios.length, 0);
  return histogram({
    title,
    subtitle: `${total} output elements; ${samples.map((s) => `${s.implementation}: ${s.over} over the bound, max ${s.max.toPrecision(3)}`).join('; ')}`,
    xLabel: 'error / allowed bound (log scale; ≤ 1 passes; first bin includes 0, last bin everything above)',
    yLabel: 'output elements',
    edges: RATIO_EDGES,
    xScale: 'log',
    bars: samples.map((s) => ({ name: `${s.implementation} (${s.dtype})`, counts: binRatios(s.ratios) })),
    refLines: [{ axis: 'x', value: 1, label: 'bound' }],
  });
}
