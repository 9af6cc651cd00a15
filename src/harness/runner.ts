/**
 * runConformance: plan the cases for an implementation, run each through the same door
 * (callImplementation), and return the report. Every case gets its own seed, derived from the
 * run's seed and its ID, so adding a check never changes another's inputs, and a failure
 * replays alone with `--only <id> --seed <seed> --replay <path>`.
 */
import { readFileSync } from 'node:fs';
import type { AnyOp, AnyRequest, BatchNormImplementation, Op, Profile, ProfileName } from '../contract/contract.js';
import { goldenCases } from '../checks/golden.js';
import { syncGoldenCases, type SyncGoldenCase } from '../checks/golden-sync.js';
import { familyGoldenCases, type FamilyGoldenCase } from '../checks/golden-family.js';
import { loadFixtures, type Fixture } from '../fixtures/load.js';
import { accumulationFor } from '../judge/compare.js';
import { planCases, type PlannedCase } from '../checks/index.js';
import type { CheckSpec } from '../checks/spec.js';
import { InternalError, UsageError } from '../contract/errors.js';
import { accumulationOf, describeAccumulation, validateImplementation } from '../contract/declaration.js';
import { dtypesOf, precisionsOf } from '../contract/dtypes.js';
import { idMatcher, requireMatches } from './filters.js';
import { createIsolatedImplementation, type IsolatedImplementation } from './isolate.js';
import { resolveProfile } from '../contract/profiles.js';
import { callImplementation, callSyncImplementation, inProcessBudget, supportedFamilyOps, supportedOps, supportedSyncOps } from './call.js';
import type { RestartBudget } from './restarts.js';
import { checkSeed, failureOf, type CheckContext } from './check.js';
import { withTally, type ComparisonCounts } from '../judge/tally.js';
import { REPORT_SCHEMA_VERSION, type AccumulationRecord, type CheckResult, type ConformanceReport, type GoldenCoverage } from './types.js';

export const DEFAULT_RUNS = 25;

/**
 * A check's outcome with its comparison counts: a pass whose every compared value had an
 * uninformative bound is 'inconclusive' (it could not have failed); a check that compared no
 * value at all (a refusal, a contract fault check) keeps its status.
 */
export function concludeCounts<R extends Omit<CheckResult, 'id' | 'family' | 'title' | 'durationMs'>>(r: R, counts: ComparisonCounts): R {
  if (counts.values === 0) return r;
  const status = r.status === 'pass' && counts.inconclusive === counts.values ? 'inconclusive' : r.status;
  return { ...r, status, comparisons: { ...counts } };
}
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface ProgressEvent {
  index: number;
  total: number;
  id: string;
  result?: CheckResult;
}

export interface ConformanceOptions {
  /** Check against this profile instead of the one the implementation claims. */
  profile?: ProfileName | Profile;
  /** fast-check runs per property (hand-written examples always run in full). */
  runs?: number;
  /** The run's seed; random (and reported) when absent. */
  seed?: number;
  /**
   * ID patterns (src/harness/filters.ts): `*` matches anything; a pattern without `*` matches
   * that ID or any ID continuing it at ':' or ';'. A pattern that matches no planned check is a
   * NoMatchError (a UsageError).
   */
  only?: string[];
  skip?: string[];
  /** Patterns from a skips file: skipped like `skip`, but one matching nothing is only a warning (onWarning). */
  skipsFile?: string[];
  onWarning?(message: string): void;
  /** Per call. */
  timeoutMs?: number;
  /** Replay one failure: the fast-check path printed with it (use with only = [its ID]). */
  replayPath?: string;
  /** Deterministic split across CI jobs: run the cases with index % count === index - 1. */
  shard?: { index: number; count: number };
  /** More checks to plan beside the built-in families. */
  extraChecks?: CheckSpec[];
  /**
   * A check whose every comparison was inconclusive (no informative bound) does not fail the run
   * (report.ok) when true; default false: a check that proved nothing is not a pass.
   */
  allowInconclusive?: boolean;
  /** Replay the golden fixtures (bn:golden:<case>) that apply; default true. */
  golden?: boolean;
  /**
   * Stop the run (Ctrl-C in the CLI): the check in flight is abandoned (its calls fail at once
   * from then on; its result is not reported, as it may be the interruption's), no further check
   * starts, and the report holds the finished checks with `interrupted: true` and ok false.
   */
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export { idMatcher };

/** What the report records about accumulation: per declared dtype, the bounds' assumption and whether it was declared. */
export function accumulationReport(impl: BatchNormImplementation): AccumulationRecord {
  const out: AccumulationRecord = {};
  for (const d of dtypesOf(impl)) {
    const { info, declared } = accumulationOf(impl, d);
    out[d] = { ...info, declared, description: `${describeAccumulation(info)}${declared ? '' : ' (not declared: assumed)'}` };
  }
  return out;
}

/**
 * The cases a run executes. --only / --skip patterns that match no planned case are a usage
 * error (NoMatchError, with the closest IDs); skips-file patterns skip too but may match nothing
 * (a shared file names checks other implementations plan), reported through `warn`.
 */
export function selectCases(
  cases: PlannedCase[],
  options: Pick<ConformanceOptions, 'only' | 'skip' | 'skipsFile' | 'shard'>,
  warn: (message: string) => void = () => undefined,
): PlannedCase[] {
  const ids = cases.map((c) => c.def.id);
  requireMatches('--only', options.only ?? [], ids);
  requireMatches('--skip', options.skip ?? [], ids);
  for (const pattern of options.skipsFile ?? []) {
    if (!ids.some(idMatcher(pattern))) warn(`skips file entry "${pattern}" matches no check`);
  }
  const only = (options.only ?? []).map(idMatcher);
  const skip = [...(options.skip ?? []), ...(options.skipsFile ?? [])].map(idMatcher);
  let selected = cases.filter((c) => (only.length === 0 || only.some((m) => m(c.def.id))) && !skip.some((m) => m(c.def.id)));
  if (options.shard) {
    const { index, count } = options.shard;
    selected = selected.filter((_, k) => k % count === index - 1);
  }
  return selected;
}

/** One case per golden fixture that applies; each step goes through the guarded call. */
function goldenPlan(impl: BatchNormImplementation, profile: Profile, timeoutMs: number, budget?: RestartBudget): { cases: PlannedCase[]; coverage: GoldenCoverage } {
  const call = (f: Fixture) => (op: Op, req: AnyRequest) =>
    callImplementation(impl, op, req, { dtype: f.dtype, paramDtype: f.paramDtype }, { timeoutMs, ...(budget ? { budget } : {}) });
  const loaded = loadFixtures();
  // synchronized fixtures (fixtures/keras-sync) join the same scheme, for implementations with the sync ops
  // the normalization family's fixtures (fixtures/keras-family, tfjs-family): <ln|rms|gn|in>:golden:<case>
  const cases: Array<ReturnType<typeof goldenCases>[number] | SyncGoldenCase | FamilyGoldenCase> = [
    ...goldenCases(impl, { profile, call, fixtures: loaded }),
    ...syncGoldenCases(impl, { profile, timeoutMs, ...(budget ? { budget } : {}) }),
    ...familyGoldenCases(impl, { profile, timeoutMs, ...(budget ? { budget } : {}) }),
  ];
  const sources: Record<string, number> = {};
  for (const g of cases) sources[g.fixture.source] = (sources[g.fixture.source] ?? 0) + 1;
  const coverage: GoldenCoverage = { fixtures: cases.length, sources };
  if (!cases.length) {
    // say so: a profile without fixtures is a blind spot of the run, not a pass
    const have = [...new Set(loaded.fixtures.map((f) => f.profileName))].sort().join(', ');
    const precisions = precisionsOf(impl).map((q) => (q.dtype === q.paramDtype ? q.dtype : `${q.dtype}/${q.paramDtype}`)).join(', ');
    coverage.note = `no golden fixture applies to profile ${profile.name} with ${precisions}, axes ${impl.axes ?? 'any'} (fixtures exist for profiles ${have}): no bn:golden checks ran`;
  }
  const planned = cases.map((g) => {
    const f = g.fixture;
    const axis = f.axis === 1 ? 'first' : f.axis === f.shape.length - 1 ? 'last' : 'other';
    const spec: CheckSpec = {
      family: 'golden',
      name: f.name,
      title: g.description,
      // every op the fixture replays: a kernel lacking one is "not supported", never passed on the others
      needs: [...new Set(f.steps.map((s) => s.op))],
      run: async () => {
        const out = await g.run();
        if (out.unsupported.length) throw new InternalError(`golden case ${g.id} ran without ${out.unsupported.join(', ')}, which its needs declare`);
        if (out.ok) return { status: 'pass', numRuns: f.steps.length };
        const w = out.worst;
        return {
          status: 'fail',
          numRuns: f.steps.length,
          failure: {
            message: out.message,
            ...(w ? { worst: { output: w.output, index: w.index, channel: -1, expected: w.expected, got: w.got, error: w.error, bound: w.bound, where: `step ${w.step} ${w.op} ${w.output}[${w.index}]` } } : {}),
            counterexample: { op: f.steps[w?.step ?? 0]!.op, shape: f.shape, axis: f.axis, dtype: f.dtype, script: `fixture ${f.file}` },
          },
        };
      },
    };
    return { spec, dtype: f.dtype, paramDtype: 'paramDtype' in f ? f.paramDtype : f.dtype, axis, def: { id: g.id, family: 'golden', title: g.description, needs: spec.needs, run: spec.run } } satisfies PlannedCase;
  });
  return { cases: planned, coverage };
}

/**
 * Validate the declaration and plan the run: every case (golden ones included unless
 * golden: false), then the selection (filters, shard). The vitest suite plans with this too, so
 * its tests are exactly the run's cases and a filter matching nothing fails the same way.
 */
export function planRun(
  impl: BatchNormImplementation,
  options: ConformanceOptions = {},
  budget?: RestartBudget,
): { profile: Profile; cases: PlannedCase[]; planned: number; golden: GoldenCoverage } {
  validateImplementation(impl);
  const profile = resolveProfile(options.profile ?? impl.profile);
  const planned = planCases(impl, undefined, options.extraChecks ?? []);
  let golden: GoldenCoverage = { fixtures: 0, sources: {}, note: 'golden fixtures not replayed (golden: false, --no-golden)' };
  if (options.golden !== false) {
    const g = goldenPlan(impl, profile, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, budget);
    planned.push(...g.cases);
    golden = g.coverage;
  }
  return { profile, cases: selectCases(planned, options, options.onWarning), planned: planned.length, golden };
}

/** What a call or check sees once the run is interrupted. */
export class InterruptedError extends Error {
  constructor() {
    super('the run was interrupted');
    this.name = 'InterruptedError';
  }
}

const EXECUTED: ReadonlySet<CheckResult['status']> = new Set(['pass', 'fail', 'inconclusive']);

/**
 * A run that executed no check proves nothing: a UsageError naming why (nothing selected, or
 * what made each selected check not supported or skipped), never a PASS.
 */
function requireExecuted(impl: BatchNormImplementation, planned: number, results: CheckResult[]): void {
  if (results.some((r) => EXECUTED.has(r.status))) return;
  const declared = `dtypes [${impl.dtypes.join(', ')}]${impl.precisions?.length ? `, precisions [${impl.precisions.map((p) => `${p.dtype}/${p.paramDtype}`).join(', ')}]` : ''}, axes ${impl.axes ?? 'any'}`;
  if (results.length === 0) {
    throw new UsageError(
      planned === 0
        ? `no check to run: ${impl.name} (${declared}) plans no check`
        : `no check to run: the filters (--only, --skip, the skips file, --shard) leave none of the ${planned} planned checks`,
      'BN_NOTHING_CHECKED',
    );
  }
  const why = new Map<string, string[]>();
  for (const r of results) {
    const key = `${r.status}: ${r.reason ?? ''}`;
    why.set(key, [...(why.get(key) ?? []), r.id]);
  }
  const lines = [...why].map(([reason, ids]) => `${ids.length} ${reason} (e.g. ${ids[0]})`);
  throw new UsageError(`no check ran, so nothing was checked: of the ${results.length} selected, ${lines.join('; ')}`, 'BN_NOTHING_CHECKED');
}

/**
 * Run the conformance checks. `impl` is an implementation object (called in this process, each
 * call's synchronous part under the watchdog of src/harness/call.ts) or a module path, which is
 * loaded in a worker thread exactly as the CLI does (a busy loop anywhere, a crash or
 * process.exit cannot take the run down) and closed when the run ends.
 */
export async function runConformance(impl: BatchNormImplementation | string, options: ConformanceOptions = {}): Promise<ConformanceReport> {
  if (typeof impl === 'string') {
    const isolated: IsolatedImplementation = await createIsolatedImplementation(impl, { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    try {
      return await runConformance(isolated, options);
    } finally {
      await isolated.close();
    }
  }
  // one give-up rule for the run when the object is called in this process; the worker and
  // --exec proxies (they count `restarts` themselves) apply the same rule to their own process
  const budget = typeof impl === 'object' && impl !== null && 'restarts' in impl ? undefined : inProcessBudget();
  const { profile, cases, planned, golden } = planRun(impl, options, budget);
  const runs = options.runs ?? DEFAULT_RUNS;
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`runs must be a positive integer, got ${runs}`);
  if (cases.length === 0) requireExecuted(impl, planned, []);
  const signal = options.signal;
  // rejects once the run is interrupted: the check in flight is raced against it
  const interrupted = new Promise<never>((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(new InterruptedError());
    else signal.addEventListener('abort', () => reject(new InterruptedError()), { once: true });
  });
  interrupted.catch(() => undefined);
  const seed = options.seed ?? (Math.random() * 2 ** 31) | 0;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  const ops: AnyOp[] = [...supportedOps(impl), ...supportedSyncOps(impl), ...supportedFamilyOps(impl)];
  const callOpts = { timeoutMs, ...(budget ? { budget } : {}) };
  const results: CheckResult[] = [];

  for (const [index, plannedCase] of cases.entries()) {
    if (signal?.aborted) break;
    const { def, dtype, paramDtype, axis } = plannedCase;
    options.onProgress?.({ index, total: cases.length, id: def.id });
    const t0 = Date.now();
    const caseSeed = checkSeed(seed, def.id);
    // a check may call only the ops it declares: what `needs` says is what makes it "not supported"
    const declared = new Set<AnyOp>([...def.needs, ...(def.uses ?? [])]);
    const ctx: CheckContext = {
      impl,
      profile,
      dtype,
      paramDtype,
      axis,
      accumulation: accumulationFor(impl, dtype),
      runs,
      seed: caseSeed,
      timeoutMs,
      ...(options.replayPath ? { path: options.replayPath } : {}),
      ...(signal ? { signal } : {}),
      call: (op, req) => {
        if (signal?.aborted) return Promise.reject(new InterruptedError());
        if (!declared.has(op)) return Promise.reject(new InternalError(`check ${def.id} called ${op}, which it does not declare (needs: [${def.needs.join(', ')}], uses: [${(def.uses ?? []).join(', ')}])`));
        return callImplementation(impl, op, req, { dtype, paramDtype }, callOpts) as never;
      },
      callSync: (op, req) => {
        if (signal?.aborted) return Promise.reject(new InterruptedError());
        if (!declared.has(op)) return Promise.reject(new InternalError(`check ${def.id} called ${op}, which it does not declare (needs: [${def.needs.join(', ')}], uses: [${(def.uses ?? []).join(', ')}])`));
        return callSyncImplementation(impl, op, req, callOpts);
      },
    };
    const base = { id: def.id, family: def.family, title: def.title };
    let result: CheckResult;
    const missing = def.needs.filter((op) => !ops.includes(op));
    // a check that needs no op but runs each of its `uses` the implementation has (bn:edge, bn:hygiene)
    // checks nothing without any of them (a family-only kernel): not supported, never a vacuous pass
    const noneUsed = !missing.length && def.needs.length === 0 && (def.uses?.length ?? 0) > 0 && !def.uses!.some((op) => ops.includes(op));
    const skipReason = missing.length || noneUsed ? undefined : def.skip?.(ctx);
    if (missing.length) {
      result = { ...base, status: 'not-supported', reason: `needs ${missing.join(' and ')}, which ${impl.name} does not implement`, durationMs: 0 };
    } else if (noneUsed) {
      result = { ...base, status: 'not-supported', reason: `needs one of ${def.uses!.join(', ')}, none of which ${impl.name} implements`, durationMs: 0 };
    } else if (skipReason) {
      result = { ...base, status: 'skipped', reason: skipReason, durationMs: 0 };
    } else {
      try {
        // every value the check compares is counted (src/judge/tally.ts): a check that passed
        // without one informative bound proved nothing and is 'inconclusive', never a pass
        const running = withTally(() => def.run(ctx)).then(({ result: r, counts }) => concludeCounts(r, counts));
        running.catch(() => undefined); // abandoned when interrupted: it winds down on its own
        const r = signal ? await Promise.race([running, interrupted]) : await running;
        result = { ...base, ...r, durationMs: Date.now() - t0 };
      } catch (e) {
        result = { ...base, status: 'fail', failure: failureOf(e), durationMs: Date.now() - t0 };
      }
      // the check in flight when the run was interrupted: its outcome may be the interruption's
      // (a child or browser killed by the same Ctrl-C), so it is not reported
      if (signal?.aborted) break;
      if (result.failure) {
        const f = result.failure;
        f.replay = `--only '${def.id}' --seed ${seed}${f.path ? ` --replay '${f.path}'` : ''}`;
      }
    }
    results.push(result);
    options.onProgress?.({ index, total: cases.length, id: def.id, result });
  }

  const wasInterrupted = signal?.aborted === true;
  if (!wasInterrupted) requireExecuted(impl, planned, results);
  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  const summary = {
    total: results.length,
    passed: count('pass'),
    failed: count('fail'),
    notSupported: count('not-supported'),
    skipped: count('skipped'),
    inconclusive: count('inconclusive'),
  };
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'bn-conformance', version: packageVersion() },
    implementation: { name: impl.name, dtypes: dtypesOf(impl), axes: impl.axes ?? 'any', ops, accumulation: accumulationReport(impl) },
    profile,
    options: {
      runs,
      seed,
      only: options.only ?? [],
      skip: options.skip ?? [],
      timeoutMs,
      ...(options.shard ? { shard: `${options.shard.index}/${options.shard.count}` } : {}),
      ...(options.allowInconclusive ? { allowInconclusive: true } : {}),
    },
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    summary,
    ...(wasInterrupted ? { interrupted: true } : {}),
    golden,
    ok: !wasInterrupted && summary.failed === 0 && (summary.inconclusive === 0 || options.allowInconclusive === true),
    results,
  };
}
