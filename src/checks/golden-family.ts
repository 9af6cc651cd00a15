/**
 * Golden checks for the normalization family's fixtures (fixtures/keras-family/ from Keras 3,
 * fixtures/tfjs-family/ from TF.js; issue 23): the scheme of ./golden.ts, ID
 * `<prefix>:golden:<case>` (ln, rms, gn, in), for implementations with the fixture's op.
 *
 * Which fixtures apply (./golden.ts's rule): the implementation has an op of the fixture, declares
 * its precision and supports its axis variant (layer ops: axis 1 'first', rank - 1 'last'; group
 * ops: the channel axis), and its profile has the recording frameworks' semantics: Keras 3 and
 * TF.js record under the keras profile (tfjs is keras), so a run under keras (or an equivalent
 * profile) replays them, as it replays the TensorFlow and TF.js BatchNorm fixtures. Of a profile
 * only its eps floor and its rule for a group of one value (InstanceNorm) change a family answer;
 * both are checked too, so a custom profile equivalent to keras never replays a case whose exact
 * answer it changes.
 * What passes (./golden.ts's argument): every recorded output within the implementation's bound
 * plus the framework's (a program of unknown summation order: sequential sums, float32 for half
 * data). Where the framework's own output is off the exact answer beyond its bound (the known
 * issues the file names: Keras RMSNormalization's float16 dgamma under mixed_float16, TF.js
 * layerNormalization with axes out of order), the implementation is compared with the exact answer
 * (the reference on the same inputs) instead, and the message says so.
 */
import type { AccumulationInfo, BatchNormImplementation, FamilyOp, Profile } from '../contract/contract.js';
import { precisionsOf, toContractRequest } from '../contract/dtypes.js';
import { FAMILY, groupingFor } from '../contract/grouping.js';
import { effectiveEps, resolveProfile } from '../contract/profiles.js';
import { loadFamilyFixtures, type FamilyFixture, type FamilyFixtureStep } from '../fixtures/family-fixtures.js';
import { callImplementation, type CallOptions } from '../harness/call.js';
import type { AxisVariant } from '../harness/types.js';
import { accumulationFor, expectationFor, type Expectation } from '../judge/compare.js';
import { errorRatio } from '../judge/tolerance.js';
import { countComparison } from '../judge/tally.js';
import { frameworkAccumulation, profilesEquivalent, type GoldenOutcome, type GoldenWorst } from './golden.js';
import { TARGET, type FamilyPrefix } from './family-common.js';

/** The profile of the frameworks that recorded the family fixtures (Keras 3, TF.js). */
const KERAS = resolveProfile('keras');

const PREFIX: Record<FamilyFixture['op'], FamilyPrefix> = { layerNorm: 'ln', rmsNorm: 'rms', groupNorm: 'gn', instanceNorm: 'in' };

export interface FamilyGoldenCase {
  id: string;
  description: string;
  fixture: FamilyFixture;
  run(): Promise<GoldenOutcome>;
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(6) : String(v));
const describeWorst = (w: GoldenWorst) =>
  `step ${w.step} ${w.op} ${w.output}[${w.index}]: expected ${fmt(w.expected)}, got ${fmt(w.got)}, error ${w.error.toExponential(2)} > allowed ${w.bound.toExponential(2)} (ratio ${w.ratio.toPrecision(3)})`;

/** A fixture's axis as the variant of its IDs. */
export function familyFixtureVariant(f: Pick<FamilyFixture, 'shape' | 'axis'>): AxisVariant {
  return f.axis === 1 ? 'first' : f.axis === f.shape.length - 1 ? 'last' : 'other';
}

/** Does the implementation take this fixture (an op of it, precision, axis, eps and m = 1 under its profile)? */
export function familyFixtureApplies(impl: BatchNormImplementation, f: FamilyFixture, profile: Profile = resolveProfile(impl.profile)): boolean {
  const t = TARGET[PREFIX[f.op]];
  if (typeof impl[t.forward] !== 'function' && typeof impl[t.backward] !== 'function') return false;
  if (!precisionsOf(impl).some((q) => q.dtype === f.dtype && q.paramDtype === f.paramDtype)) return false;
  const axes = impl.axes ?? 'any';
  const v = familyFixtureVariant(f);
  if (axes !== 'any' && axes !== v) return false;
  if (!profilesEquivalent(profile, KERAS)) return false;
  if (effectiveEps(profile, f.eps) !== f.eps) return false;
  const G = groupingFor(f.op, f);
  if (FAMILY[f.op].singleValueRule && G.m === 1 && profile.singleValue === 'error') return false;
  return true;
}

class Tracker {
  worst?: GoldenWorst;
  max = 0;
  /** The implementation's comparisons are counted (src/judge/tally.ts); the framework's own assessment is not. */
  constructor(readonly counted = false) {}
  check(step: number, op: FamilyOp, output: string, index: number, expected: number, got: unknown, bound: number): void {
    if (this.counted) countComparison(bound < Infinity);
    const g = typeof got === 'number' ? got : NaN;
    const error = Math.abs(g - expected);
    const ratio = typeof got === 'number' ? errorRatio(error, bound) : Infinity;
    if (ratio > this.max || this.worst === undefined) {
      this.max = Math.max(this.max, ratio);
      this.worst = { step, op: op as never, output, index, expected, got: g, error, bound, ratio };
    }
  }
}

const expect = (step: FamilyFixtureStep, profile: Profile, f: FamilyFixture, acc: AccumulationInfo): Expectation =>
  expectationFor(step.op, profile, step.request, { accumulation: acc, precision: { dtype: f.dtype, paramDtype: f.paramDtype } });

/** The framework's recorded outputs against the exact answer, under its own (least favourable) bound. */
export function assessFamilyFixture(f: FamilyFixture, profile: Profile = resolveProfile('keras')): Tracker[] {
  return f.steps.map((step, s) => {
    const e = expect(step, profile, f, frameworkAccumulation(f.dtype));
    const t = new Tracker();
    for (const [k, rec] of Object.entries(step.result)) for (let i = 0; i < rec.length; i++) t.check(s, step.op, k, i, e.expected[k]![i]!, rec[i]!, e.bounds[k]![i]!);
    return t;
  });
}

/** Fresh arrays in the fixture's precision (the implementation must not touch the fixture's). */
const cloneRequest = (step: FamilyFixtureStep): FamilyFixtureStep['request'] =>
  Object.fromEntries(Object.entries(step.request).map(([k, v]) => [k, ArrayBuffer.isView(v) ? (v as Float64Array).slice() : Array.isArray(v) ? v.slice() : v])) as FamilyFixtureStep['request'];

async function runFamilyFixture(impl: BatchNormImplementation, f: FamilyFixture, profile: Profile, callOpts: CallOptions): Promise<GoldenOutcome> {
  const implAcc = accumulationFor(impl, f.dtype);
  const fwAcc = frameworkAccumulation(f.dtype);
  const unsupported = [...new Set(f.steps.map((s) => s.op).filter((op) => typeof impl[op] !== 'function'))];
  const off = assessFamilyFixture(f, profile).filter((t) => t.max > 1);
  const basis: GoldenOutcome['basis'] = off.length ? 'reference' : 'tensorflow';
  const w = new Tracker(true);
  let steps = 0;
  const precision = { dtype: f.dtype, paramDtype: f.paramDtype };
  for (let s = 0; s < f.steps.length; s++) {
    const step = f.steps[s]!;
    if (typeof impl[step.op] !== 'function') continue;
    let got: Record<string, ArrayLike<number>>;
    try {
      got = await callImplementation(impl, step.op, toContractRequest(cloneRequest(step), precision), precision, callOpts);
    } catch (e) {
      return { ok: false, basis, unsupported: unsupported as never, message: `step ${s} ${step.op} failed: ${(e as Error)?.message ?? String(e)}` };
    }
    const exact = expect(step, profile, f, implAcc);
    const fw = basis === 'tensorflow' ? expect(step, profile, f, fwAcc) : undefined;
    for (const [k, rec] of Object.entries(step.result)) {
      const arr = got[k]!;
      for (let i = 0; i < rec.length; i++) {
        if (fw) w.check(s, step.op, k, i, rec[i]!, arr[i], exact.bounds[k]![i]! + fw.bounds[k]![i]!);
        else w.check(s, step.op, k, i, exact.expected[k]![i]!, arr[i], exact.bounds[k]![i]!);
      }
    }
    steps++;
  }
  const ok = w.max <= 1;
  const src = f.source === 'tfjs-family' ? `TF.js ${f.generator.packages['@tensorflow/tfjs'] ?? ''}`.trim() : `Keras ${f.generator.packages.keras ?? ''}`.trim();
  const parts: string[] = [];
  if (basis === 'reference') {
    const known = f.knownIssues.length ? ` (known issue: ${f.knownIssues.map((k) => k.id).join(', ')})` : ' (no known issue recorded: please report it)';
    parts.push(`${src}'s recorded output is off the exact answer beyond its own bound${known}: ${describeWorst(off[0]!.worst!)}; compared with the exact answer (the reference on the same inputs) instead`);
  } else parts.push(`compared with ${src}'s recorded outputs within the implementation's bound plus ${src}'s`);
  parts.push(ok ? `${steps} step(s) pass, worst ratio ${w.max.toPrecision(3)}` : `fails at ${describeWorst(w.worst!)}`);
  if (unsupported.length) parts.push(`not supported by the implementation, not checked: ${unsupported.join(', ')}`);
  return { ok, basis, unsupported: unsupported as never, message: parts.join('; '), ...(w.worst ? { worst: w.worst } : {}) };
}

export interface FamilyGoldenOptions {
  fixtures?: FamilyFixture[];
  profile?: Profile;
  timeoutMs?: number;
  /** The run's in-process restart budget (src/harness/restarts.ts), shared with every other call of the run. */
  budget?: CallOptions['budget'];
}

/** One case per family fixture that applies: ID `<ln|rms|gn|in>:golden:<case>`. */
export function familyGoldenCases(impl: BatchNormImplementation, options: FamilyGoldenOptions = {}): FamilyGoldenCase[] {
  if (!Object.values(TARGET).some((t) => typeof impl[t.forward] === 'function' || typeof impl[t.backward] === 'function')) return [];
  const profile = options.profile ?? resolveProfile(impl.profile);
  const all = options.fixtures ?? loadFamilyFixtures();
  return all
    .filter((f) => familyFixtureApplies(impl, f, profile))
    .map((f) => ({
      id: `${PREFIX[f.op]}:golden:${f.name}`,
      description: `${f.description} [${f.source} ${f.source === 'tfjs-family' ? (f.generator.packages['@tensorflow/tfjs'] ?? '') : (f.generator.packages.keras ?? '')}, ${f.op}, ${f.dtype}${f.paramDtype !== f.dtype ? `/${f.paramDtype}` : ''}, ${f.layout ? `${f.layout} ` : ''}${JSON.stringify(f.shape)} axis ${f.axis}${f.groups !== undefined ? ` groups ${f.groups}` : ''}]`,
      fixture: f,
      run: () => runFamilyFixture(impl, f, profile, { timeoutMs: options.timeoutMs ?? 10_000, ...(options.budget ? { budget: options.budget } : {}) }),
    }));
}
