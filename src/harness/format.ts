/**
 * Report formats: text for people (a failure reads as a reproduction recipe, fast-check style),
 * JSON for machines (docs/report-schema.md), JUnit XML for CI dashboards.
 */
import junitModule, { type Builder } from 'junit-report-builder';
import pc from 'picocolors';
import { type Cause, type CauseEntry, causeIndex, describeChecks, entriesPerCause, findCauses, inconclusiveFraction, shownEntries, verdictOf, withoutAxis } from './causes.js';
import type { CheckResult, ConformanceReport } from './types.js';

export type Format = 'text' | 'json' | 'junit' | 'html';

/** A number as 1.234e-5; JSON writes NaN and Infinity as null, so a report read back from a file has null there. */
export const exp3 = (v: number | null | undefined) => (typeof v === 'number' ? v.toExponential(3) : 'not finite');

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);

const plain = { green: (s: string) => s, red: (s: string) => s, yellow: (s: string) => s, magenta: (s: string) => s, dim: (s: string) => s, bold: (s: string) => s };

function symbol(status: CheckResult['status'], color: boolean): string {
  const c = color ? pc : plain;
  if (status === 'pass') return c.green('✓');
  if (status === 'fail') return c.red('✗');
  if (status === 'inconclusive') return c.magenta('?');
  if (status === 'not-supported') return c.dim('–');
  return c.yellow('○');
}

/**
 * Requests a text or HTML failure shows in full: the first and the last REQUESTS_SHOWN each
 * (a convergence check sends 750; the JSON report keeps every one).
 */
export const REQUESTS_SHOWN = 3;

export interface FailureOptions {
  /** Show every request of a many-request counterexample (default: the first and last three). */
  allRequests?: boolean;
}

/** The failure block: message, worst element, why the bound, counterexample, replay. */
export function formatFailure(r: CheckResult, replayPrefix = 'bn-conformance check <module>', opts: FailureOptions = {}): string {
  const f = r.failure;
  if (!f) return '';
  const lines = [`${r.id}`, `  ${r.title}`, `  ${f.message}`];
  if (f.fault) lines.push(`  fault: ${f.fault}`);
  if (f.worst) {
    const w = f.worst;
    lines.push(`  worst: ${w.where}: expected ${w.expected}, got ${w.got}, error ${exp3(w.error)}, allowed ${exp3(w.bound)}`);
  }
  if (f.boundReason) lines.push(`  bound: ${f.boundReason}`);
  const cx = f.counterexample;
  if (cx) {
    if (cx.shape) lines.push(`  counterexample: ${cx.op ?? ''} ${cx.dtype ?? ''} shape [${cx.shape.join(', ')}], axis ${cx.axis}`);
    if (cx.requests && cx.requests.length > 1) {
      // every request of the case, in order: a two-call check's failure needs both to replay it;
      // a long sequence shows its ends (the JSON report has all of them)
      const n = cx.requests.length;
      const line = (k: number) => `  request ${k + 1} of ${n} (${cx.requests![k]!.op}): ${truncate(JSON.stringify(cx.requests![k]!.request), 600)}`;
      if (opts.allRequests || n <= 2 * REQUESTS_SHOWN + 1) cx.requests.forEach((_, k) => lines.push(line(k)));
      else {
        for (let k = 0; k < REQUESTS_SHOWN; k++) lines.push(line(k));
        lines.push(`  … ${n - 2 * REQUESTS_SHOWN} more requests (complete in the JSON report)`);
        for (let k = n - REQUESTS_SHOWN; k < n; k++) lines.push(line(k));
      }
    } else if (cx.request) lines.push(`  request: ${truncate(JSON.stringify(cx.request), 600)}`);
    if (cx.script) lines.push(`  script: ${truncate(cx.script, 600)}`);
  }
  if (f.seed !== undefined) lines.push(`  fast-check: { seed: ${f.seed}, path: "${f.path ?? ''}", endOnFailure: true }${f.numShrinks !== undefined ? `, shrunk ${f.numShrinks} time(s)` : ''}`);
  if (f.replay) lines.push(`  replay: ${replayPrefix} ${f.replay}`);
  return lines.join('\n');
}

/** The accumulation each dtype's bounds assume, e.g. `float32: float64 sequential sums; float64: float64 sequential sums`. */
export function accumulationLine(report: ConformanceReport): string {
  const a = report.implementation.accumulation;
  if (!a) return 'not recorded (a report from before 0.2.0)';
  return Object.entries(a)
    .map(([d, info]) => `${d}: ${info?.description ?? ''}`)
    .join('; ');
}

/**
 * The one-line verdict with the counts: `FAIL: 150 passed, 2 failed, 3 inconclusive, 0 skipped,
 * 4 not supported`. INCONCLUSIVE when nothing failed but a check proved nothing (and the run did
 * not allow it); INTERRUPTED, saying the results are partial, for a run stopped early (`planned`:
 * how many checks it would have run, when the caller knows).
 */
export function verdictLine(report: ConformanceReport, planned?: number): string {
  const s = report.summary;
  const counts = `${s.passed} passed, ${s.failed} failed, ${s.inconclusive ?? 0} inconclusive${report.options.allowInconclusive && s.inconclusive ? ' (allowed)' : ''}, ${s.skipped} skipped, ${s.notSupported} not supported`;
  const partial = report.interrupted ? `; interrupted after ${s.total}${planned !== undefined ? ` of ${planned}` : ''} checks, the results are partial` : '';
  return `${verdictOf(report)}: ${counts}${partial}`;
}

/** What an entry folds beside its representative: other channel axes of the check, other checks with the same counterexample. */
export function foldedNote(e: CauseEntry): string | undefined {
  const [rep, ...rest] = e.checks;
  if (!rep || !rest.length) return undefined;
  const axes = rest.filter((id) => withoutAxis(id) === withoutAxis(rep)).map((id) => /;axis=(\w+)$/.exec(id)?.[1] ?? id);
  const others = rest.filter((id) => withoutAxis(id) !== withoutAxis(rep));
  return [axes.length ? `fails on axis ${axes.join(', ')} too` : '', others.length ? `the same counterexample fails ${others.join(', ')}` : ''].filter(Boolean).join('; ');
}

/** The summary before the details: `133 failures, 2 distinct causes:` and a line (and hints) per cause. */
export function causeSummary(report: ConformanceReport, causes: Cause[]): string[] {
  if (!causes.length) return [];
  const n = report.summary.failed;
  const out = [`${n} failure${n === 1 ? '' : 's'}, ${causes.length} distinct cause${causes.length === 1 ? '' : 's'}:`];
  for (const c of causes) {
    out.push(`  ${c.id}. ${c.symptom}: ${c.checks.length} check${c.checks.length === 1 ? '' : 's'} (${describeChecks(c.checks, 8)})`);
    for (const h of c.hints ?? []) out.push(`     hint: ${h.text}`);
  }
  return out;
}

/** At most this many checks in the "could not bound everything" block (the JSON report has every count). */
const INCONCLUSIVE_LISTED = 20;

export interface TextOptions {
  color?: boolean;
  /** Print passing checks too (default: only the summary for them). */
  verbose?: boolean;
  replayPrefix?: string;
}

export function formatText(report: ConformanceReport, opts: TextOptions = {}): string {
  const color = opts.color ?? false;
  const out: string[] = [];
  const o = report.options;
  out.push(
    `bn-conformance ${report.tool.version}: ${report.implementation.name} [${report.implementation.dtypes.join(', ')}; axes ${report.implementation.axes}; ops ${report.implementation.ops.join(', ') || 'none'}]`,
    `profile ${report.profile.name} (momentum ${report.profile.momentum}, running variance ${report.profile.runningVar}, m = 1 ${report.profile.singleValue})`,
    `seed ${o.seed}, ${o.runs} runs per property, call time limit ${o.timeoutMs} ms${o.shard ? `, shard ${o.shard}` : ''}`,
    `accumulation (sets every bound): ${accumulationLine(report)}`,
    ...(report.golden ? [`golden fixtures: ${report.golden.fixtures ? `${report.golden.fixtures} (${Object.entries(report.golden.sources).map(([s, n]) => `${s} ${n}`).join(', ')})` : 'none'}${report.golden.note ? ` — ${report.golden.note}` : ''}`] : []),
    '',
  );
  const c = color ? pc : plain;
  if (report.interrupted) out.push(c.yellow(`INTERRUPTED: the run stopped early; the results below are partial (${report.results.length} checks finished)`), '');
  // the causes first: a first-time reader sees what is wrong before 130 check IDs
  const causes = findCauses(report);
  const causeOf = causeIndex(causes);
  const summary = causeSummary(report, causes);
  if (summary.length) out.push(...summary, '');
  // not run (not supported, skipped): one line per reason unless verbose (a sync-less kernel has 24 alike)
  const notRun = new Map<string, CheckResult[]>();
  for (const r of report.results) {
    if (opts.verbose || (r.status !== 'not-supported' && r.status !== 'skipped')) continue;
    const key = `${r.status}\u0000${r.reason ?? ''}`;
    notRun.set(key, [...(notRun.get(key) ?? []), r]);
  }
  for (const r of report.results) {
    if (r.status === 'pass' && !opts.verbose) continue;
    if (!opts.verbose && (r.status === 'not-supported' || r.status === 'skipped')) {
      const group = notRun.get(`${r.status}\u0000${r.reason ?? ''}`)!;
      if (group.length > 1) {
        if (group[0] === r) out.push(`${symbol(r.status, color)} ${group.length} checks ${r.status === 'skipped' ? 'skipped' : 'not supported'} (${r.reason ?? ''}): ${describeChecks(group.map((x) => x.id), 8)}`);
        continue;
      }
    }
    const fraction = inconclusiveFraction(r);
    const note =
      r.status === 'not-supported' || r.status === 'skipped'
        ? ` (${r.status}: ${r.reason ?? ''})`
        : r.status === 'inconclusive'
          ? ` (inconclusive: ${fraction ? `${fraction} had no informative bound` : (r.reason ?? 'no value had an informative bound')})`
          : r.status === 'fail'
            ? `  (cause ${causeOf.get(r.id)})`
            : fraction
              ? ` ${r.durationMs} ms, ${fraction} unbounded`
              : ` ${r.durationMs} ms`;
    out.push(`${symbol(r.status, color)} ${r.id}${note}`);
  }
  if (causes.length) {
    out.push('', c.red(c.bold('Failures, by cause')));
    for (const cause of causes) {
      const shown = shownEntries(cause, entriesPerCause(causes.length));
      out.push('', c.bold(`Cause ${cause.id} of ${causes.length}: ${cause.symptom} (${cause.checks.length} check${cause.checks.length === 1 ? '' : 's'}, ${cause.entries.length} counterexample${cause.entries.length === 1 ? '' : 's'})`));
      for (const h of cause.hints ?? []) out.push(`  hint: ${h.text}`);
      for (const e of shown) {
        const r = report.results.find((x) => x.id === e.checks[0])!;
        const folded = foldedNote(e);
        out.push('', formatFailure(r, opts.replayPrefix), ...(folded ? [`  also: ${folded}`] : []));
      }
      const restEntries = cause.entries.filter((e) => !shown.includes(e));
      const rest = restEntries.flatMap((e) => e.checks);
      if (rest.length) out.push('', `  … ${rest.length} more check${rest.length === 1 ? '' : 's'} with this cause, ${restEntries.length} more counterexample${restEntries.length === 1 ? '' : 's'} (marked "cause ${cause.id}" above; details in the JSON report): ${describeChecks(rest, 8)}`);
    }
  }
  const unbounded = report.results.filter((r) => inconclusiveFraction(r) !== undefined);
  if (unbounded.length) {
    out.push('', c.magenta(`Checks that could not bound everything (values whose bound was uninformative: Infinity, or no smaller than the value itself):`));
    for (const r of unbounded.slice(0, INCONCLUSIVE_LISTED)) out.push(`  ${r.id}: ${inconclusiveFraction(r)} [${r.status}]`);
    if (unbounded.length > INCONCLUSIVE_LISTED) out.push(`  … and ${unbounded.length - INCONCLUSIVE_LISTED} more (the JSON report has every check's comparisons)`);
  }
  out.push('', `${verdictLine(report)} (${report.summary.total} checks, ${(report.durationMs / 1000).toFixed(1)} s)`);
  return out.join('\n');
}

/** The report as JSON, with `causes` (recomputed: a merged report's are its shards' no longer) before the results. */
export function formatJson(report: ConformanceReport): string {
  const { results, causes: _stale, ...head } = report;
  return `${JSON.stringify({ ...head, causes: findCauses(report), results }, null, 2)}\n`;
}

/** JUnit XML: one suite per family, one test case per check ID. */
export function formatJunit(report: ConformanceReport, replayPrefix?: string): string {
  // CommonJS package: under Node's ESM loader the default import is the builder instance itself
  const builder = (junitModule as unknown as Builder).newBuilder();
  const families = new Map<string, CheckResult[]>();
  for (const r of report.results) families.set(r.family, [...(families.get(r.family) ?? []), r]);
  const causes = findCauses(report);
  const causeOf = new Map(causes.flatMap((c) => c.checks.map((id) => [id, c] as const)));
  for (const [family, results] of families) {
    const suite = builder.testSuite().name(`bn-conformance ${report.implementation.name} ${family}`);
    suite.property('profile', report.profile.name).property('seed', String(report.options.seed));
    for (const [d, info] of Object.entries(report.implementation.accumulation ?? {})) suite.property(`accumulation.${d}`, info?.description ?? '');
    if (report.interrupted) suite.property('interrupted', 'true: the run stopped early, these results are partial');
    for (const r of results) {
      const tc = suite.testCase().className(`bn.${family}`).name(r.id).time(r.durationMs / 1000);
      const fraction = inconclusiveFraction(r);
      if (r.status === 'fail') {
        const cause = causeOf.get(r.id);
        const head = cause ? [`cause ${cause.id} of ${causes.length}: ${cause.symptom} (${cause.checks.length} checks)`, ...(cause.hints ?? []).map((h) => `hint: ${h.text}`), ''] : [];
        tc.failure(r.failure?.message ?? 'failed', r.failure?.fault ?? 'mismatch').standardOutput([...head, formatFailure(r, replayPrefix)].join('\n'));
      } else if (r.status === 'inconclusive') {
        // a check that proved nothing fails the build unless the run allowed it
        const message = `inconclusive: ${fraction ? `${fraction} had no informative bound` : (r.reason ?? 'no value had an informative bound')}`;
        if (report.options.allowInconclusive) skippedWithMessage(tc, message).standardOutput(message);
        else tc.failure(message, 'inconclusive').standardOutput(message);
      } else if (r.status !== 'pass') tc.skipped().standardOutput(`${r.status}: ${r.reason ?? ''}`);
      else if (fraction) tc.standardOutput(`${fraction} had no informative bound`);
    }
  }
  return builder.build();
}

type JunitCase = ReturnType<ReturnType<Builder['testSuite']>['testCase']>;
type XmlNode = { name?: string; children?: XmlNode[]; att?(name: string, value: string): unknown };

/**
 * `<skipped message="...">`: junit-report-builder 5 writes a bare `<skipped/>`, so the element
 * it builds gets the attribute (JUnit's schema allows it; Jenkins and GitLab show it).
 */
function skippedWithMessage(tc: JunitCase, message: string): JunitCase {
  tc.skipped();
  const build = tc.build.bind(tc);
  tc.build = (parent) => {
    const el = build(parent) as unknown as XmlNode;
    for (const child of el.children ?? []) if (child.name === 'skipped') child.att?.('message', message);
    return el as never;
  };
  return tc;
}
