/**
 * `check --format html`: a self-contained HTML report of a conformance run (no scripts, no
 * external resources): the summary, every check's verdict, each failure's counterexample, and
 * the distribution of the implementation's errors relative to the tolerance bound as inline SVG.
 *
 * The report itself carries only each failing check's worst element, so the error distribution
 * comes from `sampleErrorRatios` (the CLI samples the implementation directly and passes it in).
 */
import { type Cause, causeIndex, describeChecks, entriesPerCause, findCauses, inconclusiveFraction, shownEntries, verdictOf } from '../harness/causes.js';
import { accumulationLine, exp3, foldedNote, formatFailure } from '../harness/format.js';
import type { CheckResult, ConformanceReport } from '../harness/types.js';
import { type ErrorRatioSample, errorRatioPlot } from './error-ratios.js';
import { escapeXml as esc } from './svg.js';

export interface HtmlOptions {
  /** Sampled error/bound ratios of the implementation (from sampleErrorRatios). */
  errorSamples?: ErrorRatioSample[];
  /** Shown when no sample could be taken (e.g. the implementation has no forwardTrain). */
  samplingNote?: string;
  replayPrefix?: string;
}

const STATUS_LABEL: Record<CheckResult['status'], string> = { pass: '✓ pass', fail: '✗ fail', inconclusive: '? inconclusive', 'not-supported': '– not supported', skipped: '○ skipped' };

const CSS = `
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px}
.verdict{display:inline-block;padding:6px 14px;border-radius:4px;font-weight:bold;color:#fff;margin:10px 0}
.verdict.ok{background:#2e7d32}.verdict.fail{background:#c62828}.verdict.inconclusive{background:#8e24aa}.verdict.interrupted{background:#ef6c00}
.interrupted{background:#fff3e0;border-left:4px solid #ef6c00;padding:6px 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
td.id,table.checks td:first-child{font-family:Menlo,Consolas,monospace;font-size:12px}table.checks td:nth-child(3){white-space:nowrap}
tr.fail td{background:#fdecea}tr.inconclusive td{background:#f3e5f5}tr.not-supported td,tr.skipped td{color:#777}
.status-pass,tr.pass td:nth-child(2){color:#2e7d32}.status-fail,tr.fail td:nth-child(2){color:#c62828;font-weight:bold}
.status-inconclusive,tr.inconclusive td:nth-child(2){color:#8e24aa;font-weight:bold}
.summary td{font-size:15px}
ol.causes li{margin-bottom:8px}.hint{background:#e3f2fd;border-left:4px solid #1565c0;padding:4px 8px;margin:4px 0;font-size:13px}
section.cause{border-top:2px solid #c62828;margin-top:18px}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}
.plot svg{max-width:100%;height:auto;border:1px solid #eee}
`;

/** At most this many characters of a failing check's message in the checks table (every one is in the JSON report). */
const NOTE_CHARS = 60;
const clip = (t: string, n: number) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);

/**
 * A check's note in the table: why, for one not run; for a failure, its worst element and how far
 * over the bound (the message is in its cause's details and the JSON report: 300 messages would
 * make the page too long to read).
 */
function noteOf(r: CheckResult): string {
  if (r.status !== 'fail') return r.reason ?? '';
  const w = r.failure?.worst;
  if (w && typeof w.error === 'number' && typeof w.bound === 'number' && w.bound > 0 && Number.isFinite(w.error / w.bound)) return `${clip(w.where, 40)}: error ${(w.error / w.bound).toPrecision(2)}× the bound`;
  return clip(r.failure?.message ?? '', NOTE_CHARS);
}

/** Text inside an element: &, <, > escaped; quotes stay as they are (readable, and 5 characters shorter each). */
const text = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function formatHtml(report: ConformanceReport, opts: HtmlOptions = {}): string {
  const s = report.summary;
  const impl = report.implementation;
  const p = report.profile;
  const o = report.options;
  const causes = findCauses(report);
  const causeOf = causeIndex(causes);
  const shown = new Map(causes.map((c) => [c.id, shownEntries(c, entriesPerCause(causes.length))]));
  // a failing check links to its own details when they are shown, else to its cause
  const detailed = new Set([...shown.values()].flat().map((e) => e.checks[0]!));
  // the unbounded column only where some check has a fraction to show (300 empty cells otherwise)
  const anyUnbounded = report.results.some((r) => inconclusiveFraction(r) !== undefined);
  // checks not run, one row per reason listing their IDs (a BN-only kernel has dozens alike)
  const notRun = new Map<string, CheckResult[]>();
  for (const r of report.results) {
    if (r.status !== 'not-supported' && r.status !== 'skipped') continue;
    const key = `${r.status}\u0000${r.reason ?? ''}`;
    notRun.set(key, [...(notRun.get(key) ?? []), r]);
  }
  const rows = report.results
    .map((r) => {
      if (r.status === 'not-supported' || r.status === 'skipped') {
        const group = notRun.get(`${r.status}\u0000${r.reason ?? ''}`)!;
        if (group[0] !== r) return '';
        const empty = anyUnbounded ? '<td></td><td></td>' : '<td></td>';
        return `<tr class="${r.status}"><td>${group.map((x) => esc(x.id)).join('<br>')}</td><td>${STATUS_LABEL[r.status]}${group.length > 1 ? ` (${group.length})` : ''}</td><td></td>${empty}<td>${esc(r.reason ?? '')}</td></tr>`;
      }
      const cause = causeOf.get(r.id);
      const id = detailed.has(r.id) ? `<a href="#${esc(anchor(r.id))}">${esc(r.id)}</a>` : esc(r.id);
      const fraction = anyUnbounded ? `<td>${inconclusiveFraction(r) ?? ''}</td>` : '';
      return `<tr class="${r.status}"><td>${id}</td><td>${STATUS_LABEL[r.status]}</td><td>${r.durationMs} ms</td>${fraction}<td>${cause ? `<a href="#cause-${cause}">${cause}</a>` : ''}</td><td>${esc(noteOf(r))}</td></tr>`;
    })
    .filter(Boolean)
    .join('\n');
  const failureBlock = (r: CheckResult, folded?: string) => {
    const w = r.failure?.worst;
    const ratio = w && typeof w.error === 'number' && typeof w.bound === 'number' && Number.isFinite(w.error / w.bound) ? (w.error / w.bound).toPrecision(3) : 'not finite';
    const worst = w ? `<p>Worst element <code>${esc(w.where)}</code>: expected ${w.expected}, got ${w.got}, error ${exp3(w.error)}, allowed ${exp3(w.bound)} (error/bound ${ratio}).</p>` : '';
    const also = folded ? `<p>Also: ${esc(folded)}.</p>` : '';
    return `<section class="failure" id="${esc(anchor(r.id))}"><h4>${esc(r.id)}</h4><p>${esc(r.title)}</p>${worst}${also}<pre>${text(formatFailure(r, opts.replayPrefix))}</pre></section>`;
  };
  const hintsHtml = (c: Cause) => (c.hints ?? []).map((h) => `<div class="hint">hint: ${esc(h.text)}</div>`).join('');
  const causeList = causes.length
    ? `<p>${s.failed} failure${s.failed === 1 ? '' : 's'}, ${causes.length} distinct cause${causes.length === 1 ? '' : 's'}:</p>
<ol class="causes" id="causes">
${causes.map((c) => `<li><a href="#cause-${c.id}"><b>${esc(c.symptom)}</b></a>: ${c.checks.length} check${c.checks.length === 1 ? '' : 's'} (${esc(describeChecks(c.checks, 8))})${hintsHtml(c)}</li>`).join('\n')}
</ol>`
    : '';
  const causeSections = causes
    .map((c) => {
      const entries = shown.get(c.id)!;
      const blocks = entries.map((e) => failureBlock(report.results.find((x) => x.id === e.checks[0])!, foldedNote(e))).join('\n');
      const restEntries = c.entries.filter((e) => !entries.includes(e));
      const rest = restEntries.flatMap((e) => e.checks);
      const more = rest.length
        ? `<p>… ${rest.length} more check${rest.length === 1 ? '' : 's'} with this cause, ${restEntries.length} more counterexample${restEntries.length === 1 ? '' : 's'} (marked ${c.id} in the cause column of the table below; details in the JSON report): ${esc(describeChecks(rest, 8))}</p>`
        : '';
      return `<section class="cause" id="cause-${c.id}"><h3>Cause ${c.id} of ${causes.length}: ${esc(c.symptom)} (${c.checks.length} check${c.checks.length === 1 ? '' : 's'}, ${c.entries.length} counterexample${c.entries.length === 1 ? '' : 's'})</h3>${hintsHtml(c)}\n${blocks}\n${more}</section>`;
    })
    .join('\n');
  const plot = opts.errorSamples?.length
    ? `<div class="plot">${errorRatioPlot(opts.errorSamples, `Errors of ${impl.name} relative to the tolerance bound`).replace(/^<\?xml[^>]*>/, '')}</div>
<p class="meta">Sampled directly: ${opts.errorSamples.map((e) => `${e.requests} random forwardTrain requests (${e.dtype}, |mean|/std from 1 to 1e5), ${e.ratios.length} output elements, ${e.over} over the bound, largest error/bound ${e.max.toPrecision(3)}${e.errors ? `, ${e.errors} calls threw` : ''}`).join('; ')}.</p>`
    : `<p class="meta">${esc(opts.samplingNote ?? 'No error sample was taken.')}</p>`;
  const verdict = verdictOf(report);
  const verdictClass = verdict === 'PASS' ? 'ok' : verdict.toLowerCase();
  const word = report.interrupted ? `INTERRUPTED (partial results${s.failed ? `, ${s.failed} failed` : ''})` : verdict;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bn-conformance: ${esc(impl.name)} — ${esc(word)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>bn-conformance report: ${esc(impl.name)}</h1>
<div class="meta">bn-conformance ${esc(report.tool.version)} · started ${esc(report.startedAt)} · ${(report.durationMs / 1000).toFixed(1)} s</div>
<div class="verdict ${verdictClass}" id="verdict">${esc(word)}</div>
${report.interrupted ? `<p class="interrupted" id="interrupted">Interrupted: the run stopped early; these results are partial (${report.results.length} checks finished).</p>\n` : ''}<h2>Summary</h2>
<table class="summary"><tr><th>checks</th><th>passed</th><th>failed</th><th>inconclusive</th><th>skipped</th><th>not supported</th></tr>
<tr><td>${s.total}</td><td class="status-pass">${s.passed}</td><td class="status-fail">${s.failed}</td><td class="status-inconclusive">${s.inconclusive ?? 0}${o.allowInconclusive ? ' (allowed)' : ''}</td><td>${s.skipped}</td><td>${s.notSupported}</td></tr></table>
${causeList}
<table>
<tr><th>implementation</th><td>${esc(impl.name)} [${esc(impl.dtypes.join(', '))}; axes ${esc(impl.axes)}; ops ${esc(impl.ops.join(', ') || 'none')}]</td></tr>
<tr><th>profile</th><td>${esc(p.name)} (momentum ${esc(p.momentum)}, default ${p.defaultMomentum}; running variance ${esc(p.runningVar)}; eps ${p.defaultEps}; m = 1 ${esc(p.singleValue)})</td></tr>
<tr><th>accumulation</th><td id="accumulation">${esc(accumulationLine(report))}</td></tr>
<tr><th>run</th><td>seed ${o.seed}, ${o.runs} runs per property, call time limit ${o.timeoutMs} ms${o.shard ? `, shard ${esc(o.shard)}` : ''}${o.only.length ? `, only ${esc(o.only.join(','))}` : ''}${o.skip.length ? `, skip ${esc(o.skip.join(','))}` : ''}</td></tr>
</table>
<h2>Error distribution</h2>
${plot}
<h2>Failures (${s.failed}), by cause</h2>
${causeSections || '<p>None.</p>'}
<h2>Checks</h2>
${anyUnbounded ? '<p class="meta">unbounded: the values a check compared whose bound was uninformative (Infinity, or no smaller than the value itself), where there were any.</p>\n' : ''}<table class="checks"><tr><th>check ID</th><th>verdict</th><th>time</th>${anyUnbounded ? '<th>unbounded</th>' : ''}<th>cause</th><th>note</th></tr>
${rows}
</table>
</body>
</html>
`;
}

const anchor = (id: string) => `fail-${id.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
