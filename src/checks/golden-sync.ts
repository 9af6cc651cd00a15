/**
 * Golden checks for synchronized fixtures (fixtures/keras-sync/): the same scheme as
 * ./golden.ts, ID bn:golden:<case>, for implementations with the synchronized ops.
 *
 * What passes: every recorded output within the implementation's merged bound plus the
 * framework's (syncTolerance for a float32 program with sequential sums and a sequential
 * all-reduce: the least favourable declared structure). Where the framework's own output is off
 * the exact answer beyond its bound (Keras's E[x^2] - E[x]^2 at large offsets: a known issue in
 * the file), the implementation is compared with the exact answer instead, and the message says so.
 */
import { accumulationFor } from '../judge/compare.js';
import { errorRatio } from '../judge/tolerance.js';
import { countComparison } from '../judge/tally.js';
import { expectationForSync, flattenSyncResult, type SyncExpectation } from '../judge/compare.js';
import type { AccumulationInfo, BatchNormImplementation, DType, Profile, SyncOp } from '../contract/contract.js';
import { loadSyncFixtures, type SyncFixture, type SyncFixtureStep } from '../fixtures/sync-fixtures.js';
import { callSyncImplementation } from '../harness/call.js';
import type { CallOptions } from '../harness/call.js';
import { resolveProfile } from '../contract/profiles.js';
import { fixtureApplies, profilesEquivalent, tensorflowAccumulation, type GoldenOutcome, type GoldenWorst } from './golden.js';

export interface SyncGoldenCase {
  id: string;
  description: string;
  fixture: SyncFixture;
  run(): Promise<GoldenOutcome>;
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(6) : String(v));
const describeWorst = (w: GoldenWorst) =>
  `step ${w.step} ${w.op} ${w.output}[${w.index}]: expected ${fmt(w.expected)}, got ${fmt(w.got)}, error ${w.error.toExponential(2)} > allowed ${w.bound.toExponential(2)} (ratio ${w.ratio.toPrecision(3)})`;

/** Fresh typed arrays for a recorded request (the implementation must not touch the fixture's). */
function cloneSyncRequest<T extends SyncFixtureStep['request']>(req: T): T {
  const copy = (v: unknown): unknown => (ArrayBuffer.isView(v) ? (v as Float64Array).slice() : Array.isArray(v) ? v.map(copy) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) : v);
  return copy(req) as T;
}

class Tracker {
  worst?: GoldenWorst;
  max = 0;
  /** The implementation's comparisons are counted (src/judge/tally.ts); the framework's own assessment is not. */
  constructor(readonly counted = false) {}
  check(step: number, op: SyncOp, output: string, index: number, expected: number, got: number, bound: number): void {
    if (this.counted) countComparison(bound < Infinity);
    const error = Math.abs(got - expected);
    const ratio = errorRatio(error, bound);
    if (ratio > this.max || this.worst === undefined) {
      this.max = Math.max(this.max, ratio);
      this.worst = { step, op: op as never, output, index, expected, got, error, bound, ratio };
    }
  }
}

const expectation = (step: SyncFixtureStep, profile: Profile, acc: AccumulationInfo): SyncExpectation =>
  expectationForSync(step.op, profile, step.request, { accumulation: acc });

/** The framework's recorded outputs against the exact answer, under its own (least favourable) bound. */
export function assessSyncFixture(f: SyncFixture): Tracker[] {
  return f.steps.map((step, s) => {
    const e = expectation(step, f.profile, tensorflowAccumulation(f.dtype));
    const rec = flattenSyncResult(step.result as never);
    const t = new Tracker();
    for (const [k, exp] of Object.entries(e.expected)) for (let i = 0; i < exp.length; i++) t.check(s, step.op, k, i, exp[i]!, rec[k]![i]!, e.bounds[k]![i]!);
    return t;
  });
}

async function runSyncFixture(impl: BatchNormImplementation, f: SyncFixture, profile: Profile, callOpts: CallOptions): Promise<GoldenOutcome> {
  const implAcc = accumulationFor(impl, f.dtype as DType);
  const unsupported = [...new Set(f.steps.map((s) => s.op).filter((op) => typeof impl[op] !== 'function'))];
  const off = assessSyncFixture(f).filter((t) => t.max > 1);
  const basis: GoldenOutcome['basis'] = off.length ? 'reference' : 'tensorflow';
  const w = new Tracker(true);
  let steps = 0;
  for (let s = 0; s < f.steps.length; s++) {
    const step = f.steps[s]!;
    if (typeof impl[step.op] !== 'function') continue;
    let got: Record<string, ArrayLike<number>>;
    try {
      got = flattenSyncResult((await callSyncImplementation(impl, step.op, cloneSyncRequest(step.request), callOpts)) as never);
    } catch (e) {
      return { ok: false, basis, unsupported: unsupported as never, message: `step ${s} ${step.op} failed: ${(e as Error)?.message ?? String(e)}` };
    }
    const exact = expectation(step, profile, implAcc);
    const fw = basis === 'tensorflow' ? expectation(step, profile, tensorflowAccumulation(f.dtype)) : undefined;
    const recorded = flattenSyncResult(step.result as never);
    for (const [k, exp] of Object.entries(exact.expected)) {
      for (let i = 0; i < exp.length; i++) {
        if (fw) w.check(s, step.op, k, i, recorded[k]![i]!, got[k]![i]!, exact.bounds[k]![i]! + fw.bounds[k]![i]!);
        else w.check(s, step.op, k, i, exp[i]!, got[k]![i]!, exact.bounds[k]![i]!);
      }
    }
    steps++;
  }
  const ok = w.max <= 1;
  const src = `Keras ${f.generator.packages.keras ?? ''}`.trim();
  const parts: string[] = [];
  if (basis === 'reference') {
    const known = f.knownIssues.length ? ` (known issue: ${f.knownIssues.map((k) => k.id).join(', ')})` : '';
    parts.push(`${src}'s recorded output is off the exact answer beyond its own bound${known}: ${describeWorst(off[0]!.worst!)}; compared with the exact answer instead`);
  } else parts.push(`compared with ${src}'s recorded outputs within the implementation's merged bound plus ${src}'s`);
  parts.push(ok ? `${steps} step(s) pass, worst ratio ${w.max.toPrecision(3)}` : `fails at ${describeWorst(w.worst!)}`);
  if (unsupported.length) parts.push(`not supported by the implementation, not checked: ${unsupported.join(', ')}`);
  return { ok, basis, unsupported: unsupported as never, message: parts.join('; '), ...(w.worst ? { worst: w.worst } : {}) };
}

export interface SyncGoldenOptions {
  fixtures?: SyncFixture[];
  profile?: Profile;
  timeoutMs?: number;
  /** The run's in-process restart budget (src/harness/restarts.ts), shared with every other call of the run. */
  budget?: CallOptions['budget'];
}

/** One case per synchronized fixture that applies to an implementation with synchronized ops. */
export function syncGoldenCases(impl: BatchNormImplementation, options: SyncGoldenOptions = {}): SyncGoldenCase[] {
  if (typeof impl.forwardTrainSync !== 'function' && typeof impl.backwardSync !== 'function') return [];
  const profile = options.profile ?? resolveProfile(impl.profile);
  const all = options.fixtures ?? loadSyncFixtures();
  return all
    // sync fixtures are pure precision (paramDtype = dtype), which fixtureApplies now asks about
    .filter((f) => profilesEquivalent(profile, f.profile) && fixtureApplies(impl, { ...f, shape: f.shape, axis: f.axis, paramDtype: f.dtype } as never, profile))
    .map((f) => ({
      id: `bn:golden:${f.name}`,
      description: `${f.description} [keras-sync ${f.generator.packages.keras ?? ''}, ${f.profileName}, ${f.dtype}, ${f.layout} ${JSON.stringify(f.shape)}, replicas ${f.counts.join('+')}]`,
      fixture: f,
      run: () => runSyncFixture(impl, f, profile, { timeoutMs: options.timeoutMs ?? 10_000, ...(options.budget ? { budget: options.budget } : {}) }),
    }));
}
