/**
 * Report formats: text for people (a failure reads as a reproduction recipe, fast-check style),
 * JSON for machines (docs/report-schema.md), JUnit XML for CI dashboards.
 */
import junitModule, { type Builder } from 'junit-report-builder';
import pc from 'picocolors';
import type { CheckResult, ConformanceReport } from './types.js';

export type Format = 'text' | 'json' | 'junit' | 'html';

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);

function symbol(status: CheckResult['status'], color: boolean): string {
  const c = color ? pc : { green: (s: string) => s, red: (s: string) => s, yellow: (s: string) => s, dim: (s: string) => s };
  if (status === 'pass') return c.green('✓');
  if (status === 'fail') return c.red('✗');
  if (status === 'not-supported') return c.dim('–');
  return c.yellow('○');
}

/** The failure block: message, worst element, why the bound, counterexample, replay. */
export function formatFailure(r: CheckResult, replayPrefix = 'bn-conformance check <module>'): string {
  const f = r.failure;
  if (!f) return '';
  const lines = [`${r.id}`, `  ${r.title}`, `  ${f.message}`];
  if (f.fault) lines.push(`  fault: ${f.fault}`);
  if (f.worst) {
    const w = f.worst;
    lines.push(`  worst: ${w.where}: expected ${w.expected}, got ${w.got}, error ${w.error.toExponential(3)}, allowed ${w.bound.toExponential(3)}`);
  }
  if (f.boundReason) lines.push(`  bound: ${f.boundReason}`);
  const cx = f.counterexample;
  if (cx) {
    if (cx.shape) lines.push(`  counterexample: ${cx.op ?? ''} ${cx.dtype ?? ''} shape [${cx.shape.join(', ')}], axis ${cx.axis}`);
    if (cx.requests && cx.requests.length > 1) {
      // every request of the case, in order: a two-call check's failure needs both to replay it
      cx.requests.forEach((r, k) => lines.push(`  request ${k + 1} of ${cx.requests!.length} (${r.op}): ${truncate(JSON.stringify(r.request), 600)}`));
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
  for (const r of report.results) {
    if (r.status === 'pass' && !opts.verbose) continue;
    const note = r.status === 'not-supported' || r.status === 'skipped' ? ` (${r.status}: ${r.reason ?? ''})` : '';
    out.push(`${symbol(r.status, color)} ${r.id}${note}${r.status === 'pass' ? ` ${r.durationMs} ms` : ''}`);
  }
  const failures = report.results.filter((r) => r.status === 'fail');
  if (failures.length) {
    out.push('', color ? pc.red(pc.bold('Failures')) : 'Failures', '');
    for (const r of failures) out.push(formatFailure(r, opts.replayPrefix), '');
  }
  const s = report.summary;
  out.push(
    '',
    `${report.ok ? 'PASS' : 'FAIL'}: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.notSupported} not supported (${s.total} checks, ${(report.durationMs / 1000).toFixed(1)} s)`,
  );
  return out.join('\n');
}

export function formatJson(report: ConformanceReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** JUnit XML: one suite per family, one test case per check ID. */
export function formatJunit(report: ConformanceReport, replayPrefix?: string): string {
  // CommonJS package: under Node's ESM loader the default import is the builder instance itself
  const builder = (junitModule as unknown as Builder).newBuilder();
  const families = new Map<string, CheckResult[]>();
  for (const r of report.results) families.set(r.family, [...(families.get(r.family) ?? []), r]);
  for (const [family, results] of families) {
    const suite = builder.testSuite().name(`bn-conformance ${report.implementation.name} ${family}`);
    suite.property('profile', report.profile.name).property('seed', String(report.options.seed));
    for (const [d, info] of Object.entries(report.implementation.accumulation ?? {})) suite.property(`accumulation.${d}`, info?.description ?? '');
    for (const r of results) {
      const tc = suite.testCase().className(`bn.${family}`).name(r.id).time(r.durationMs / 1000);
      if (r.status === 'fail') tc.failure(r.failure?.message ?? 'failed', r.failure?.fault ?? 'mismatch').standardOutput(formatFailure(r, replayPrefix));
      else if (r.status !== 'pass') tc.skipped().standardOutput(`${r.status}: ${r.reason ?? ''}`);
    }
  }
  return builder.build();
}
