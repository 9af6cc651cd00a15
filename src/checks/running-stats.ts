/**
 * bn:running-stats:* — the moving statistics, as a model-based test and as statistics.
 *
 * closed-form: fc.commands drives sequences of training steps (each with its own batch and
 * momentum) through the implementation, threading its running statistics from step to step.
 * The model is not a copy of the kernel: it keeps the closed form
 *   r_k = keep_k ... keep_1 r_0 + sum_j take_j (prod_{i>j} keep_i) stat_j
 * with the exact batch statistics, and the error budget that the tolerance allows each step,
 * propagated through the same products.
 * convergence: under a stationary distribution the running mean converges to the population
 * mean and the running variance to sigma^2 (unbiased estimator) or (m - 1)/m sigma^2 (biased),
 * approaching at the geometric rate of the momentum.
 */
import { countComparison } from '../judge/tally.js';
import { isHalf } from '../numerics/half.js';
import { unitRoundoff } from '../numerics/ulp.js';
import fc from 'fast-check';
import { typed } from '../arbitraries/problem.js';
import type { ForwardTrainRequest, Profile } from '../contract/contract.js';
import { commandsReplay, Mismatch, runProperty, type CheckContext } from '../harness/check.js';
import { layoutOf } from '../contract/layout.js';
import { emaWeights, runningVarFactor } from '../contract/profiles.js';
import { expectation, exactStats } from './common.js';
import { mulberry32 } from '../numerics/random.js';
import type { CheckSpec } from './spec.js';

interface Model {
  /** Closed-form expectation and its error budget, per channel. */
  mean: Float64Array;
  variance: Float64Array;
  budgetMean: Float64Array;
  budgetVar: Float64Array;
  steps: string[];
}

interface Real {
  ctx: CheckContext;
  shape: number[];
  axis: number;
  runningMean: Float32Array | Float64Array;
  runningVar: Float32Array | Float64Array;
}

class TrainStep implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly z: number[],
    readonly offset: number,
    readonly momentum: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const { ctx } = real;
    const L = layoutOf(real.shape, real.axis);
    const x = Array.from({ length: L.numel }, (_, i) => this.offset + this.z[i % this.z.length]! * (1 + (Math.floor(i / L.inner) % L.channels)));
    const C = L.channels;
    const req: ForwardTrainRequest = {
      x: typed(ctx.dtype, x),
      shape: real.shape,
      axis: real.axis,
      gamma: typed(ctx.paramDtype, new Array(C).fill(1)),
      beta: typed(ctx.paramDtype, new Array(C).fill(0)),
      eps: ctx.profile.defaultEps,
      momentum: this.momentum,
      runningMean: real.runningMean,
      runningVar: real.runningVar,
    };
    const got = await ctx.call('forwardTrain', req);
    const e = expectation(ctx, 'forwardTrain', req);
    const { mean, variance } = exactStats(ctx, req);
    const { keep, take } = emaWeights(ctx.profile, this.momentum);
    const bessel = runningVarFactor(ctx.profile, L.m);
    model.steps.push(this.toString());
    for (let c = 0; c < C; c++) {
      model.mean[c] = keep * model.mean[c]! + take * mean[c]!;
      model.variance[c] = keep * model.variance[c]! + take * bessel * variance[c]!;
      // what this step may add, and what earlier errors become after decaying by |keep|
      model.budgetMean[c] = Math.abs(keep) * model.budgetMean[c]! + e.bounds.runningMean![c]!;
      model.budgetVar[c] = Math.abs(keep) * model.budgetVar[c]! + e.bounds.runningVar![c]!;
      const script = model.steps.join('; ');
      // two compared values (src/judge/tally.ts): informative while their budgets are finite
      countComparison(model.budgetMean[c]! < Infinity);
      countComparison(model.budgetVar[c]! < Infinity);
      if (!(Math.abs(got.runningMean[c]! - model.mean[c]!) <= model.budgetMean[c]!)) {
        throw new Mismatch(
          `runningMean[${c}] = ${got.runningMean[c]} after ${model.steps.length} steps, closed form ${model.mean[c]} (allowed ${model.budgetMean[c]!.toExponential(3)}); ${describeConvention(ctx.profile)}`,
          { counterexample: { script } },
        );
      }
      if (!(Math.abs(got.runningVar[c]! - model.variance[c]!) <= model.budgetVar[c]!)) {
        throw new Mismatch(
          `runningVar[${c}] = ${got.runningVar[c]} after ${model.steps.length} steps, closed form ${model.variance[c]} (allowed ${model.budgetVar[c]!.toExponential(3)}); ${describeConvention(ctx.profile)}`,
          { counterexample: { script } },
        );
      }
    }
    real.runningMean = got.runningMean;
    real.runningVar = got.runningVar;
  }
  toString(): string {
    return `train(momentum=${this.momentum}, offset=${this.offset}, z=[${this.z.join(',')}])`;
  }
}

export function describeConvention(p: Profile): string {
  const ema = p.momentum === 'decay' ? 'r = momentum*r + (1-momentum)*batch' : 'r = (1-momentum)*r + momentum*batch';
  return `profile ${p.name}: ${ema}, ${p.runningVar} batch variance${p.runningVar === 'unbiased' ? ' (m/(m-1))' : ' (1/m)'}`;
}

/** Seeded normal deviates (Box–Muller over mulberry32, shifted half a step off 0 for the log). */
function normals(seed: number): () => number {
  const next = mulberry32(seed);
  const uniform = () => next() + 2 ** -33;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Samples per channel in the convergence check; small, so biased and unbiased differ by 25%. */
const M = 4;
/** Independent channels: 8 sequences per call, averaged (the sd below divides by their number). */
const CHANNELS = 8;
/** Steps before averaging: keep^150 = 0.9^150 = 1.4e-7 of the start's 50 sigma (mean) and 100
 * sigma^2 (variance) is left, 7e-6 sigma and 1.4e-5 sigma^2: far under the 10.5-sd allowance. */
const BURN_IN = 150;
/** Steps averaged: 600 x 8 values, so the allowance (10.5 sd = 0.37) is 9% of sigma^2 = 4 for
 * the variance, against the 25% (1.0) a swapped estimator moves it. */
const AVERAGE_OVER = 600;
/**
 * Sigmas of slack in the statistical comparisons. False-alarm probability per case (one seeded
 * sequence per case, whatever --runs says):
 * - geometric approach, 16 comparisons (k = 10, 20 x 8 channels): each running mean is Gaussian
 *   (a linear filter of Gaussian batches) with variance take^2 (1 - keep^2k) / (1 - keep^2) *
 *   sigma^2 / M, below the stationary value used, so each fails with P(|N| > 7) = 2.6e-12;
 *   union bound 4.1e-11 (float32 rounding of the EMA, ~20 u |r0|, is under the 1e-6 |r0| slack).
 * - time averages over AVERAGE_OVER x CHANNELS = 4800 values, at Z * 1.5 = 10.5 sigma: the mean
 *   is Gaussian (edge terms ~13% of sigma, see below): P < 1e-24; the variance average is
 *   ~ chi^2 with 3 * 4800 degrees of freedom / scaled (batch variances of independent Gaussian
 *   batches), Wilson-Hilferty puts 10.5 sigma at z > 10 on both sides: P < 1e-22.
 * Total < 5e-11 per case: 100,000 cases (far more than any campaign runs: one per dtype and
 * profile per full check) stay green with probability > 1 - 5e-6. Z = 6 gave 3.2e-8 per case.
 * Power is not lost: the bugs this check names are off by 25% of sigma^2 (estimator swapped:
 * 1.0 against an allowance of 0.37) or by a factor keep^k / take^k (convention).
 */
const Z = 7;

export const runningStatsChecks: CheckSpec[] = [
  {
    family: 'running-stats',
    name: 'closed-form',
    title: 'after k training steps the running statistics equal the profile\'s closed form (momentum convention, Bessel factor)',
    needs: ['forwardTrain'],
    axes: 'one',
    run: (ctx) => {
      const momentum = fc.constantFrom(ctx.profile.defaultMomentum, 0, 0.5, 0.9, 0.1, 1);
      const step = fc
        .tuple(fc.array(fc.integer({ min: -8, max: 8 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: -64, max: 64 }), momentum)
        .map(([z, offset, mom]) => new TrainStep(z, offset, mom));
      const scenario = fc.record({
        // a replay hands the commands' replayPath back (fast-check's path alone cannot replay commands)
        commands: fc.commands([step], { maxCommands: 6, ...commandsReplay(ctx) }),
        shape: fc.constantFrom([4, 2], [3, 2, 2], [2, 3, 2]).map((d) => [...d]),
      });
      return runProperty(ctx, scenario, async ({ commands, shape }, c) => {
        const axis = ctx.axis === 'last' ? shape.length - 1 : 1;
        const C = shape[axis]!;
        const real: Real = {
          ctx: c,
          shape,
          axis,
          runningMean: typed(ctx.paramDtype, new Array(C).fill(0)),
          runningVar: typed(ctx.paramDtype, new Array(C).fill(1)),
        };
        const model: Model = {
          mean: new Float64Array(C),
          variance: new Float64Array(C).fill(1),
          budgetMean: new Float64Array(C),
          budgetVar: new Float64Array(C),
          steps: [],
        };
        await fc.asyncModelRun(() => ({ model, real }), commands);
      });
    },
  },
  {
    family: 'running-stats',
    name: 'convergence',
    title:
      'under a stationary distribution the running mean converges to the population mean and the running variance to sigma^2 (unbiased) or (m-1)/m sigma^2 (biased), at the geometric rate of the momentum',
    needs: ['forwardTrain'],
    axes: 'one',
    run: async (ctx) => {
      const started = await runProperty(
        ctx,
        fc.constant(null),
        async (_, c) => {
          const gauss = normals(c.seed);
          const mu = 3;
          const sigma = 2;
          const shape = [M, CHANNELS]; // rank 2: axis 1 is both the first and the last
          const axis = 1;
          // momentum that keeps 90% of the history in the profile's own convention
          const momentum = c.profile.momentum === 'decay' ? 0.9 : 0.1;
          const { keep } = emaWeights(c.profile, momentum);
          const bessel = runningVarFactor(c.profile, M);
          const targetVar = c.profile.runningVar === 'unbiased' ? sigma * sigma : ((M - 1) / M) * sigma * sigma;
          const r0Mean = mu + 50 * sigma;
          const r0Var = 100 * sigma * sigma;
          let rm: Float32Array | Float64Array = typed(c.paramDtype, new Array(CHANNELS).fill(r0Mean));
          let rv: Float32Array | Float64Array = typed(c.paramDtype, new Array(CHANNELS).fill(r0Var));
          // half parameters: each step rounds the running mean once more (|error| <= u |r| <= u r0Mean);
          // decayed by keep per step, the sum stays below u r0Mean / (1 - keep)
          const heldInHalf = isHalf(c.paramDtype) ? (unitRoundoff(c.paramDtype) * Math.abs(r0Mean)) / (1 - keep) : 0;
          let sumMean = 0;
          let sumVar = 0;
          // stationary noise of one running value: AR(1) with coefficient keep driven by take * batch stat
          const varOfBatchMean = (sigma * sigma) / M;
          const sdRunningMean = Math.sqrt(((1 - keep) ** 2 / (1 - keep * keep)) * varOfBatchMean);
          for (let k = 1; k <= BURN_IN + AVERAGE_OVER; k++) {
            const x = Array.from({ length: M * CHANNELS }, () => mu + sigma * gauss());
            const got = await c.call('forwardTrain', {
              x: typed(c.dtype, x),
              shape,
              axis,
              gamma: typed(c.paramDtype, new Array(CHANNELS).fill(1)),
              beta: typed(c.paramDtype, new Array(CHANNELS).fill(0)),
              eps: c.profile.defaultEps,
              momentum,
              runningMean: rm,
              runningVar: rv,
            });
            rm = got.runningMean;
            rv = got.runningVar;
            if (k === 10 || k === 20) {
              // geometric approach: distance to mu shrinks by keep^k (plus stationary noise)
              const expected = keep ** k * (r0Mean - mu);
              for (let ch = 0; ch < CHANNELS; ch++) {
                const d = rm[ch]! - mu;
                if (!(Math.abs(d - expected) <= Z * sdRunningMean + 1e-6 * Math.abs(r0Mean) + heldInHalf)) {
                  throw new Mismatch(
                    `after ${k} steps the running mean is ${rm[ch]}, ${d.toFixed(4)} from the population mean; the geometric rate keep^k predicts ${expected.toFixed(4)} (±${(Z * sdRunningMean).toFixed(4)}); ${describeConvention(c.profile)}`,
                  );
                }
              }
            }
            if (k > BURN_IN) {
              for (let ch = 0; ch < CHANNELS; ch++) {
                sumMean += rm[ch]!;
                sumVar += rv[ch]!;
              }
            }
          }
          const n = AVERAGE_OVER * CHANNELS;
          const avgMean = sumMean / n;
          const avgVar = sumVar / n;
          // the time average of the EMA has the variance of the average of the batch statistics
          // over the window (AR(1) sum rule), across independent channels
          const sdMean = Math.sqrt(varOfBatchMean / n);
          const varOfBatchVar = (2 * (M - 1) * sigma ** 4) / (M * M) * bessel * bessel;
          const sdVar = Math.sqrt(varOfBatchVar / n);
          // 1.5: the EMA's time average equals the window average of the batch statistics only up
          // to edge terms of relative size 1/((1 - keep) * AVERAGE_OVER) ~ 2%, plus the AR(1)
          // approximation; 1.5 covers both with room.
          if (!(Math.abs(avgMean - mu) <= Z * sdMean * 1.5)) {
            throw new Mismatch(`the running mean averages ${avgMean.toFixed(4)}, the population mean is ${mu} (±${(Z * sdMean * 1.5).toFixed(4)})`);
          }
          if (!(Math.abs(avgVar - targetVar) <= Z * sdVar * 1.5)) {
            throw new Mismatch(
              `the running variance averages ${avgVar.toFixed(4)}; with m = ${M} the ${c.profile.runningVar} estimator converges to ${targetVar} (sigma^2 = ${sigma * sigma}; ±${(Z * sdVar * 1.5).toFixed(4)}); ${describeConvention(c.profile)}`,
            );
          }
        },
        1,
      );
      return started;
    },
  },
];
