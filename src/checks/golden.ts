/**
 * Golden checks: replay the fixtures exported from real frameworks (TensorFlow, TF.js, PyTorch,
 * the ONNX reference evaluator) through any BatchNormImplementation. ID `bn:golden:<case>`.
 *
 * Which fixtures apply: those whose profile has the same resolved semantics as the
 * implementation's (momentum convention, running-variance estimator, eps floor, m = 1 rule;
 * names do not matter, so `tfjs` ≡ `keras`), whose dtype the implementation declares and whose
 * channel axis it supports. So a run under `pytorch` replays fixtures/pytorch, one under `onnx`
 * fixtures/onnx, one under `keras` the TensorFlow and TF.js ones.
 *
 * What passes: every recorded output within the sum of two bounds, each from the one tolerance
 * function (src/judge/tolerance.ts): the implementation's against the exact answer, and the framework's
 * (a float32 program of unknown summation order: sequential sums, the least favourable case).
 * Both are inexact programs; if both are within their bounds of the exact answer they are within
 * the sum of the bounds of each other. Where the framework's own output is off the exact answer
 * beyond its bound (ill-conditioned float32 cases, a known framework bug), the check compares the
 * implementation with the exact answer (the reference on the same inputs) instead, and says so.
 * Outputs the fixture does not record (tf.nn.moments has no moving statistics) are compared with
 * the reference. Each step replays the recorded request (the framework's state before the step), so
 * errors do not compound over multi-step cases.
 */
import { fieldDtype, precisionOfRequest, precisionsOf, toContractRequest, toNumbers } from '../contract/dtypes.js';
import { isHalf } from '../numerics/half.js';
import type { AccumulationInfo, BatchNormImplementation, DType, Op, Profile } from '../contract/contract.js';
import { accumulationFor, expectationFor } from '../judge/compare.js';
import { errorRatio } from '../judge/tolerance.js';
import { countComparison } from '../judge/tally.js';
import { resolveProfile } from '../contract/profiles.js';
import { cloneRequest, type Fixture, type FixtureStep, type LoadedFixtures, loadFixtures } from '../fixtures/load.js';

export interface GoldenWorst {
  step: number;
  op: Op;
  output: string;
  index: number;
  /** What the implementation was compared with: TensorFlow's value or the exact one. */
  expected: number;
  got: number;
  error: number;
  bound: number;
  ratio: number;
}

export interface GoldenOutcome {
  ok: boolean;
  message: string;
  worst?: GoldenWorst;
  /**
   * 'tensorflow': compared with the recorded outputs (of whichever framework made the fixture;
   * the name predates the PyTorch and ONNX fixtures); 'reference': the framework was off,
   * compared with the exact answer.
   */
  basis: 'tensorflow' | 'reference';
  /** Ops of the fixture that the implementation lacks (reported, never counted as passed). */
  unsupported: Op[];
}

export interface GoldenCase {
  id: string;
  description: string;
  fixture: Fixture;
  run(): Promise<GoldenOutcome>;
}

/** The semantic fields of a profile: what changes a result when eps and momentum are given. */
export function profilesEquivalent(a: Profile, b: Profile): boolean {
  return (
    a.momentum === b.momentum &&
    a.runningVar === b.runningVar &&
    (a.minEps ?? 0) === (b.minEps ?? 0) &&
    a.singleValue === b.singleValue
  );
}

/** Does the implementation take this fixture (profile semantics, dtype, axis)? */
export function fixtureApplies(impl: BatchNormImplementation, f: Fixture, profile: Profile = resolveProfile(impl.profile)): boolean {
  const p = profile;
  if (!profilesEquivalent(p, f.profile)) return false;
  if (!precisionsOf(impl).some((q) => q.dtype === f.dtype && q.paramDtype === f.paramDtype)) return false;
  const axes = impl.axes ?? 'any';
  const last = f.axis === f.shape.length - 1;
  if (axes === 'last' && !last) return false;
  if (axes === 'first' && f.axis !== 1) return false;
  return true;
}

// ------------------------------------------------------------------ exact answer and bounds

const OUTPUTS: Record<Op, readonly string[]> = {
  forwardTrain: ['y', 'mean', 'variance', 'runningMean', 'runningVar'],
  forwardInfer: ['y'],
  backward: ['dx', 'dgamma', 'dbeta'],
};

/** The exact answer (float64 reference) and, per element, a bound for a program of the given dtype and summation. */
export interface Expected {
  values: Record<string, Float64Array>;
  bounds: Record<string, Float64Array>;
}

/** The reference's answer and its per-element bounds, from compare.ts's expectationFor (the one tolerance function). */
export function expectedWithBounds(profile: Profile, step: FixtureStep, dtype: DType, accumulation: AccumulationInfo): Expected {
  const precision = precisionOfRequest(step.request);
  if (precision.dtype !== dtype) {
    throw new TypeError(`fixture step is ${precision.dtype} (${step.request.x.constructor.name}), expected ${dtype}`);
  }
  const e = expectationFor(step.op, profile, step.request, { accumulation, precision });
  return { values: e.expected, bounds: e.bounds };
}

/**
 * The recording framework's summation order is unknown: the tolerance's least favourable case,
 * sequential sums in the dtype (float32 for half inputs: TF's and torch's CPU half kernels
 * accumulate in float32). Sequential is the worst order: every order's error is within
 * (n - 1) u sum|x|, the sequential bound. A framework that sums more coarsely than this (the
 * ONNX reference evaluator's numpy sums in half) is found off its bound and compared with the
 * exact answer instead.
 */
export const tensorflowAccumulation = (dtype: DType): AccumulationInfo => ({ dtype: isHalf(dtype) ? 'float32' : dtype, order: 'sequential' });
/** The same assumption under a name that fits every source. */
export const frameworkAccumulation = tensorflowAccumulation;

/** Who recorded a fixture, for messages. */
export const FRAMEWORK_NAMES: Partial<Record<Fixture['source'], string>> = {
  tensorflow: 'TensorFlow',
  tfjs: 'TF.js',
  'keras-sync': 'Keras',
  pytorch: 'PyTorch',
  onnx: 'the ONNX reference evaluator',
};

export interface StepAssessment {
  step: number;
  op: Op;
  training?: boolean;
  /** Per recorded output, max |TF - exact| / TF's bound (<= 1: TF within its own bound). */
  ratios: Record<string, number>;
  worst?: GoldenWorst;
  exact: boolean;
}

/** How far the recorded TensorFlow outputs are from the exact answer, step by step. */
export function assessFixture(f: Fixture): StepAssessment[] {
  return f.steps.map((step, s) => {
    const exp = expectedWithBounds(f.profile, step, f.dtype, tensorflowAccumulation(f.dtype));
    const w = new WorstTracker(s, step.op);
    for (const [k, got] of Object.entries(step.result)) {
      if (!got) continue;
      for (let i = 0; i < got.length; i++) w.check(k, i, exp.values[k]![i]!, got[i]!, exp.bounds[k]![i]!);
    }
    return {
      step: s,
      op: step.op,
      ...(step.op === 'backward' ? { training: step.request.training } : {}),
      ratios: w.ratios,
      ...(w.worst ? { worst: w.worst } : {}),
      exact: w.max <= 1,
    };
  });
}

class WorstTracker {
  ratios: Record<string, number> = {};
  worst?: GoldenWorst;
  max = 0;
  constructor(
    readonly step: number,
    readonly op: Op,
    /** The implementation's comparisons are counted (src/judge/tally.ts); the assessment of the framework's own outputs is not. */
    readonly counted = false,
  ) {}
  check(output: string, index: number, expected: number, got: unknown, bound: number): void {
    if (this.counted) countComparison(bound < Infinity);
    const g = typeof got === 'number' ? got : NaN;
    const error = Math.abs(g - expected);
    const ratio = typeof got === 'number' ? errorRatio(error, bound) : Infinity;
    this.ratios[output] = Math.max(this.ratios[output] ?? 0, ratio);
    if (ratio > this.max || this.worst === undefined) {
      this.max = Math.max(this.max, ratio);
      this.worst = { step: this.step, op: this.op, output, index, expected, got: g, error, bound, ratio };
    }
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(6) : String(v));
const describeWorst = (w: GoldenWorst) =>
  `step ${w.step} ${w.op} ${w.output}[${w.index}]: expected ${fmt(w.expected)}, got ${fmt(w.got)}, error ${w.error.toExponential(2)} > allowed ${w.bound.toExponential(2)} (ratio ${w.ratio.toPrecision(3)})`;

/** How a step reaches the implementation: the harness passes its guarded call (timeouts, mutation checks). */
export type GoldenCall = (op: Op, request: FixtureStep['request']) => Promise<unknown>;

async function runFixture(impl: BatchNormImplementation, f: Fixture, call?: GoldenCall): Promise<GoldenOutcome> {
  const implAcc = accumulationFor(impl, f.dtype);
  const tfAcc = tensorflowAccumulation(f.dtype);
  const unsupported = [...new Set(f.steps.map((s) => s.op).filter((op) => typeof impl[op] !== 'function'))];
  const assessment = assessFixture(f);
  const tfOff = assessment.filter((a) => !a.exact);
  const basis: GoldenOutcome['basis'] = tfOff.length ? 'reference' : 'tensorflow';
  const w = new WorstTracker(0, 'forwardTrain');
  let steps = 0;
  for (let s = 0; s < f.steps.length; s++) {
    const step = f.steps[s]!;
    const fn = impl[step.op] as ((r: unknown) => unknown) | undefined;
    if (typeof fn !== 'function') continue;
    const tracker = new WorstTracker(s, step.op, true);
    let got: Record<string, unknown>;
    try {
      const request = cloneRequest(step.request);
      if (call) got = (await call(step.op, request)) as Record<string, unknown>;
      else {
        // no guarded call: send the numbers in the fixture's precision, read half outputs back as numbers
        const p = { dtype: f.dtype, paramDtype: f.paramDtype };
        got = (await fn.call(impl, toContractRequest(request, p))) as Record<string, unknown>;
        if (got && typeof got === 'object') {
          got = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v instanceof Uint16Array ? toNumbers(v, fieldDtype(k, p)) : v]));
        }
      }
    } catch (e) {
      return { ok: false, basis, unsupported, message: `step ${s} ${step.op} threw: ${(e as Error)?.message ?? String(e)}` };
    }
    if (typeof got !== 'object' || got === null) return { ok: false, basis, unsupported, message: `step ${s} ${step.op} returned ${String(got)}, not a result object` };
    const exact = expectedWithBounds(f.profile, step, f.dtype, implAcc);
    const tfB = basis === 'tensorflow' ? expectedWithBounds(f.profile, step, f.dtype, tfAcc) : undefined;
    for (const k of OUTPUTS[step.op]) {
      const arr = got[k] as ArrayLike<number> | undefined;
      const n = exact.values[k]!.length;
      if (!arr || typeof arr.length !== 'number' || arr.length !== n) {
        return { ok: false, basis, unsupported, message: `step ${s} ${step.op}: result ${k} has length ${arr?.length ?? 'none'}, expected ${n}` };
      }
      const recorded = (step.result as Record<string, ArrayLike<number> | undefined>)[k];
      for (let i = 0; i < n; i++) {
        if (tfB && recorded) tracker.check(k, i, recorded[i]!, arr[i], exact.bounds[k]![i]! + tfB.bounds[k]![i]!);
        else tracker.check(k, i, exact.values[k]![i]!, arr[i], exact.bounds[k]![i]!);
      }
    }
    steps++;
    if (tracker.worst && (w.worst === undefined || tracker.worst.ratio > w.worst.ratio)) w.worst = tracker.worst;
    w.max = Math.max(w.max, tracker.max);
  }
  const ok = w.max <= 1;
  const src = FRAMEWORK_NAMES[f.source] ?? f.source;
  const parts: string[] = [];
  if (basis === 'reference') {
    const a = tfOff[0]!;
    const known = f.knownIssues.length ? ` (known issue: ${f.knownIssues.map((k) => k.id).join(', ')})` : '';
    parts.push(
      `${src}'s recorded output is off the exact answer beyond its own bound${known}: ${describeWorst(a.worst!)}; ` +
        `compared with the exact answer (the reference on the same inputs) instead`,
    );
  } else {
    parts.push(`compared with ${src}'s recorded outputs within the implementation's bound plus ${src}'s`);
  }
  parts.push(ok ? `${steps} step(s) pass, worst ratio ${w.max.toPrecision(3)}` : `fails at ${describeWorst(w.worst!)}`);
  if (unsupported.length) parts.push(`not supported by the implementation, not checked: ${unsupported.join(', ')}`);
  return { ok, basis, unsupported, message: parts.join('; '), ...(w.worst ? { worst: w.worst } : {}) };
}

export interface GoldenOptions {
  /** Fixtures already loaded (default: loadFixtures() from the package's fixtures/). */
  fixtures?: LoadedFixtures | Fixture[];
  /** Check against this profile instead of the implementation's claim (the CLI's --profile). */
  profile?: Profile;
  /** Route every step through this (the harness's guarded call) instead of calling directly. */
  call?: (f: Fixture) => GoldenCall;
}

/** The golden checks that apply to an implementation, one per fixture: ID `bn:golden:<case>`. */
export function goldenCases(impl: BatchNormImplementation, options: GoldenOptions = {}): GoldenCase[] {
  const all = options.fixtures === undefined ? loadFixtures().fixtures : Array.isArray(options.fixtures) ? options.fixtures : options.fixtures.fixtures;
  return all
    .filter((f) => fixtureApplies(impl, f, options.profile))
    .map((f) => ({
      id: `bn:golden:${f.name}`,
      description: `${f.description} [${f.source} ${f.generator.packages.tensorflow ?? f.generator.packages['@tensorflow/tfjs'] ?? f.generator.packages.torch ?? f.generator.packages.onnx ?? ''}, ${f.profileName}, ${f.dtype}${f.paramDtype !== f.dtype ? `/${f.paramDtype}` : ''}, ${f.layout} ${JSON.stringify(f.shape)}]`,
      fixture: f,
      run: () => runFixture(impl, f, options.call?.(f)),
    }));
}
