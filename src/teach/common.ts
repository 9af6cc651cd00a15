/**
 * Shared pieces of the teaching topics: a seeded random source, float32 variance kernels
 * (every operation rounded to float32, like spec/support/f32-kernels.ts), number formatting,
 * and the Topic shape every `explain` topic implements.
 */
import type { ForwardTrainRequest, ForwardTrainResult, Profile, ProfileName } from '../contract/contract.js';
import { createReference, referenceForwardTrain } from '../reference/reference.js';
import { resolveProfile } from '../contract/profiles.js';
import { mulberry32 } from '../numerics/random.js';

/** A topic: structured numbers (computed at run time by the reference) and a text rendering. */
export interface Topic<D = unknown> {
  id: string;
  title: string;
  /** One line for the topic list. */
  summary: string;
  /** Check IDs (patterns with *) that guard what this topic explains. */
  checks: string[];
  compute(): D | Promise<D>;
  render(data: D): string;
  /** Plots this topic can draw, by name (the first is the topic's main plot). */
  plots: Record<string, (data: D) => string>;
}

/** mulberry32: every number a topic prints is reproducible from its seed. */
export const rng = mulberry32;

/** Standard normal samples (Box–Muller) from a seeded generator. */
export function normals(seed: number, n: number, mean = 0, std = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(r(), 1e-300);
    const u2 = r();
    const rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = mean + std * rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

const f = Math.fround;

/** Float32 mean and variance of xs (values already float32), every op rounded to float32, sequential sums. */
export function f32Variance(xs: ArrayLike<number>, variant: 'one-pass' | 'two-pass'): { mean: number; variance: number; meanOfSquares: number } {
  const m = xs.length;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < m; i++) {
    s = f(s + xs[i]!);
    s2 = f(s2 + f(xs[i]! * xs[i]!));
  }
  const mu = f(s / m);
  const ex2 = f(s2 / m);
  if (variant === 'one-pass') return { mean: mu, variance: f(ex2 - f(mu * mu)), meanOfSquares: ex2 };
  let q = 0;
  for (let i = 0; i < m; i++) {
    const d = f(xs[i]! - mu);
    q = f(q + f(d * d));
  }
  return { mean: mu, variance: f(q / m), meanOfSquares: ex2 };
}

/** One training step of the reference for a [m, C] batch (channel axis 1), float64. */
export function trainStep(
  profile: ProfileName | Profile,
  x: number[][],
  opts: { runningMean?: number[]; runningVar?: number[]; momentum?: number; eps?: number; gamma?: number[]; beta?: number[] } = {},
): ForwardTrainResult & { request: ForwardTrainRequest } {
  const p = resolveProfile(profile);
  const m = x.length;
  const C = x[0]!.length;
  const req: ForwardTrainRequest = {
    x: Float64Array.from(x.flat()),
    shape: [m, C],
    axis: 1,
    gamma: Float64Array.from(opts.gamma ?? new Array(C).fill(1)),
    beta: Float64Array.from(opts.beta ?? new Array(C).fill(0)),
    eps: opts.eps ?? p.defaultEps,
    momentum: opts.momentum ?? p.defaultMomentum,
    runningMean: Float64Array.from(opts.runningMean ?? new Array(C).fill(0)),
    runningVar: Float64Array.from(opts.runningVar ?? new Array(C).fill(1)),
  };
  return { ...referenceForwardTrain(p, req), request: req };
}

export const reference = (p?: ProfileName | Profile) => createReference(p);

/** Short number formatting for the walk-throughs: 7 significant digits, exponent when needed. */
export function num(v: number, digits = 7): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-4 && a < 1e7) return String(Number(v.toPrecision(digits)));
  return v.toExponential(Math.max(0, digits - 1 - 3)).replace(/\.?0+e/, 'e');
}

export const list = (a: ArrayLike<number>, digits = 7) => `[${Array.from(a, (v) => num(v, digits)).join(', ')}]`;

/** A left-aligned text table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `  ${r.map((c, i) => c.padEnd(w[i]!)).join('  ')}`.trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}
