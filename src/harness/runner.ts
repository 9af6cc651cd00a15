/**
 * runConformance: plan the cases for an implementation, run each through the same door
 * (callImplementation), and return the report. Every case gets its own seed, derived from the
 * run's seed and its ID, so adding a check never changes another's inputs, and a failure
 * replays alone with `--only <id> --seed <seed> --replay <path>`.
 */
import { readFileSync } from 'node:fs';
import { DTYPES, type AnyRequest, type BatchNormImplementation, type Op, type Profile, type ProfileName } from '../contract.js';
import { goldenCases } from '../checks/golden.js';
import type { Fixture } from '../fixtures/load.js';
import { accumulationFor } from '../compare.js';
import { planCases, type PlannedCase } from '../checks/index.js';
import type { CheckSpec } from '../checks/spec.js';
import { UsageError } from '../errors.js';
import { resolveProfile } from '../profiles.js';
import { callImplementation, supportedOps } from './call.js';
import { checkSeed, failureOf, type CheckContext } from './check.js';
import { REPORT_SCHEMA_VERSION, type CheckResult, type ConformanceReport } from './types.js';

export const DEFAULT_RUNS = 25;
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
  /** ID patterns: `*` matches anything; a pattern without `*` matches that ID or its sub-IDs. */
  only?: string[];
  skip?: string[];
  /** Per call. */
  timeoutMs?: number;
  /** Replay one failure: the fast-check path printed with it (use with only = [its ID]). */
  replayPath?: string;
  /** Deterministic split across CI jobs: run the cases with index % count === index - 1. */
  shard?: { index: number; count: number };
  /** More checks to plan beside the built-in families. */
  extraChecks?: CheckSpec[];
  /** Replay the golden fixtures (bn:golden:<case>) that apply; default true. */
  golden?: boolean;
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

/** Compile an ID pattern. */
export function idMatcher(pattern: string): (id: string) => boolean {
  const p = pattern.trim();
  if (p.includes('*')) {
    const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return (id) => re.test(id);
  }
  return (id) => id === p || id.startsWith(`${p}:`);
}

function validateImplementation(impl: unknown): asserts impl is BatchNormImplementation {
  if (typeof impl !== 'object' || impl === null) throw new UsageError('the implementation must be an object (see the contract: name, profile, dtypes, ops)');
  const i = impl as Partial<BatchNormImplementation>;
  const problems: string[] = [];
  if (typeof i.name !== 'string' || !i.name) problems.push('name must be a non-empty string');
  const known = (d: unknown) => typeof d === 'string' && (DTYPES as readonly string[]).includes(d);
  if (!Array.isArray(i.dtypes) || i.dtypes.length === 0 || i.dtypes.some((d) => !known(d))) {
    problems.push(`dtypes must be a non-empty array of ${DTYPES.map((d) => `'${d}'`).join(' | ')}`);
  }
  if (i.precisions !== undefined && (!Array.isArray(i.precisions) || i.precisions.some((p) => typeof p !== 'object' || p === null || !known(p.dtype) || !known(p.paramDtype)))) {
    problems.push(`precisions must be an array of { dtype, paramDtype }, each one of ${DTYPES.join(', ')}`);
  }
  if (i.axes !== undefined && !['first', 'last', 'any'].includes(i.axes)) problems.push(`axes must be 'first', 'last' or 'any'`);
  if (!['forwardTrain', 'forwardInfer', 'backward'].some((op) => typeof (i as Record<string, unknown>)[op] === 'function')) {
    problems.push('it implements none of forwardTrain, forwardInfer, backward');
  }
  if (problems.length) throw new UsageError(`invalid implementation ${JSON.stringify(i.name ?? '')}: ${problems.join('; ')}`);
}

export function selectCases(cases: PlannedCase[], options: Pick<ConformanceOptions, 'only' | 'skip' | 'shard'>): PlannedCase[] {
  const only = (options.only ?? []).map(idMatcher);
  const skip = (options.skip ?? []).map(idMatcher);
  let selected = cases.filter((c) => (only.length === 0 || only.some((m) => m(c.def.id))) && !skip.some((m) => m(c.def.id)));
  if (options.shard) {
    const { index, count } = options.shard;
    selected = selected.filter((_, k) => k % count === index - 1);
  }
  return selected;
}

/** One case per golden fixture that applies; each step goes through the guarded call. */
function goldenPlan(impl: BatchNormImplementation, profile: Profile, timeoutMs: number): PlannedCase[] {
  const call = (f: Fixture) => (op: Op, req: AnyRequest) => callImplementation(impl, op, req, { dtype: f.dtype, paramDtype: f.paramDtype }, { timeoutMs });
  return goldenCases(impl, { profile, call }).map((g) => {
    const f = g.fixture;
    const axis = f.axis === 1 ? 'first' : f.axis === f.shape.length - 1 ? 'last' : 'other';
    const spec: CheckSpec = {
      family: 'golden',
      name: f.name,
      title: g.description,
      needs: [],
      run: async () => {
        const ops = [...new Set(f.steps.map((s) => s.op))];
        const out = await g.run();
        if (out.unsupported.length === ops.length) return { status: 'not-supported', reason: out.message };
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
    return { spec, dtype: f.dtype, paramDtype: f.paramDtype, axis, def: { id: g.id, family: 'golden', title: g.description, needs: [], run: spec.run } } satisfies PlannedCase;
  });
}

export async function runConformance(impl: BatchNormImplementation, options: ConformanceOptions = {}): Promise<ConformanceReport> {
  validateImplementation(impl);
  const profile = resolveProfile(options.profile ?? impl.profile);
  const runs = options.runs ?? DEFAULT_RUNS;
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`runs must be a positive integer, got ${runs}`);
  const seed = options.seed ?? (Math.random() * 2 ** 31) | 0;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  const ops = supportedOps(impl);
  const planned = planCases(impl, undefined, options.extraChecks ?? []);
  if (options.golden !== false) planned.push(...goldenPlan(impl, profile, timeoutMs));
  const cases = selectCases(planned, options);
  const results: CheckResult[] = [];

  for (const [index, planned] of cases.entries()) {
    const { def, dtype, paramDtype, axis } = planned;
    options.onProgress?.({ index, total: cases.length, id: def.id });
    const t0 = Date.now();
    const caseSeed = checkSeed(seed, def.id);
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
      call: (op, req) => callImplementation(impl, op, req, { dtype, paramDtype }, { timeoutMs }) as never,
    };
    const base = { id: def.id, family: def.family, title: def.title };
    let result: CheckResult;
    const missing = def.needs.filter((op) => !ops.includes(op));
    const skipReason = missing.length ? undefined : def.skip?.(ctx);
    if (missing.length) {
      result = { ...base, status: 'not-supported', reason: `needs ${missing.join(' and ')}, which ${impl.name} does not implement`, durationMs: 0 };
    } else if (skipReason) {
      result = { ...base, status: 'skipped', reason: skipReason, durationMs: 0 };
    } else {
      try {
        const r = await def.run(ctx);
        result = { ...base, ...r, durationMs: Date.now() - t0 };
      } catch (e) {
        result = { ...base, status: 'fail', failure: failureOf(e), durationMs: Date.now() - t0 };
      }
      if (result.failure) {
        const f = result.failure;
        f.replay = `--only '${def.id}' --seed ${seed}${f.path ? ` --replay '${f.path}'` : ''}`;
      }
    }
    results.push(result);
    options.onProgress?.({ index, total: cases.length, id: def.id, result });
  }

  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  const summary = {
    total: results.length,
    passed: count('pass'),
    failed: count('fail'),
    notSupported: count('not-supported'),
    skipped: count('skipped'),
  };
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'bn-conformance', version: packageVersion() },
    implementation: { name: impl.name, dtypes: impl.dtypes, axes: impl.axes ?? 'any', ops },
    profile,
    options: {
      runs,
      seed,
      only: options.only ?? [],
      skip: options.skip ?? [],
      timeoutMs,
      ...(options.shard ? { shard: `${options.shard.index}/${options.shard.count}` } : {}),
    },
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    summary,
    ok: summary.failed === 0,
    results,
  };
}
