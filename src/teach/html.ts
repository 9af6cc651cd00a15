/**
 * `check --format html`: a self-contained HTML report of a conformance run (no scripts, no
 * external resources): the summary, every check's verdict, each failure's counterexample, and
 * the distribution of the implementation's errors relative to the tolerance bound as inline SVG.
 *
 * The report itself carries only each failing check's worst element, so the error distribution
 * comes from `sampleErrorRatios` (the CLI samples the implementation directly and passes it in).
 */
import { accumulationLine, formatFailure } from '../harness/format.js';
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
.verdict.ok{background:#2e7d32}.verdict.fail{background:#c62828}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
td.id{font-family:Menlo,Consolas,monospace;font-size:12px}td.time{white-space:nowrap}
tr.fail td{background:#fdecea}tr.not-supported td,tr.skipped td{color:#777}
.status-pass{color:#2e7d32}.status-fail{color:#c62828;font-weight:bold}
.summary td{font-size:15px}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}
.plot svg{max-width:100%;height:auto;border:1px solid #eee}
`;

export function formatHtml(report: ConformanceReport, opts: HtmlOptions = {}): string {
  const s = report.summary;
  const impl = report.implementation;
  const p = report.profile;
  const o = report.options;
  const failures = report.results.filter((r) => r.status === 'fail');
  const rows = report.results
    .map((r) => {
      const note = r.status === 'fail' ? (r.failure?.message ?? '') : (r.reason ?? '');
      const link = r.status === 'fail' ? `<a href="#${esc(anchor(r.id))}">${esc(r.id)}</a>` : esc(r.id);
      return `<tr class="${r.status}"><td class="id">${link}</td><td class="status-${r.status}">${STATUS_LABEL[r.status]}</td><td class="time">${r.durationMs} ms</td><td>${esc(note)}</td></tr>`;
    })
    .join('\n');
  const failureBlocks = failures
    .map((r) => {
      const w = r.failure?.worst;
      const worst = w
        ? `<p>Worst element <code>${esc(w.where)}</code>: expected ${w.expected}, got ${w.got}, error ${w.error.toExponential(3)}, allowed ${w.bound.toExponential(3)} (error/bound ${Number.isFinite(w.error / w.bound) ? (w.error / w.bound).toPrecision(3) : 'not finite'}).</p>`
        : '';
      return `<section class="failure" id="${esc(anchor(r.id))}"><h3>${esc(r.id)}</h3><p>${esc(r.title)}</p>${worst}<pre>${esc(formatFailure(r, opts.replayPrefix))}</pre></section>`;
    })
    .join('\n');
  const plot = opts.errorSamples?.length
    ? `<div class="plot">${errorRatioPlot(opts.errorSamples, `Errors of ${impl.name} relative to the tolerance bound`).replace(/^<\?xml[^>]*>/, '')}</div>
<p class="meta">Sampled directly: ${opts.errorSamples.map((e) => `${e.requests} random forwardTrain requests (${e.dtype}, |mean|/std from 1 to 1e5), ${e.ratios.length} output elements, ${e.over} over the bound, largest error/bound ${e.max.toPrecision(3)}${e.errors ? `, ${e.errors} calls threw` : ''}`).join('; ')}.</p>`
    : `<p class="meta">${esc(opts.samplingNote ?? 'No error sample was taken.')}</p>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bn-conformance: ${esc(impl.name)} — ${report.ok ? 'PASS' : 'FAIL'}</title>
<style>${CSS}</style>
</head>
<body>
<h1>bn-conformance report: ${esc(impl.name)}</h1>
<div class="meta">bn-conformance ${esc(report.tool.version)} · started ${esc(report.startedAt)} · ${(report.durationMs / 1000).toFixed(1)} s</div>
<div class="verdict ${report.ok ? 'ok' : 'fail'}" id="verdict">${report.ok ? 'PASS' : 'FAIL'}</div>
<h2>Summary</h2>
<table class="summary"><tr><th>checks</th><th>passed</th><th>failed</th><th>skipped</th><th>not supported</th></tr>
<tr><td>${s.total}</td><td class="status-pass">${s.passed}</td><td class="status-fail">${s.failed}</td><td>${s.skipped}</td><td>${s.notSupported}</td></tr></table>
<table>
<tr><th>implementation</th><td>${esc(impl.name)} [${esc(impl.dtypes.join(', '))}; axes ${esc(impl.axes)}; ops ${esc(impl.ops.join(', ') || 'none')}]</td></tr>
<tr><th>profile</th><td>${esc(p.name)} (momentum ${esc(p.momentum)}, default ${p.defaultMomentum}; running variance ${esc(p.runningVar)}; eps ${p.defaultEps}; m = 1 ${esc(p.singleValue)})</td></tr>
<tr><th>accumulation</th><td id="accumulation">${esc(accumulationLine(report))}</td></tr>
<tr><th>run</th><td>seed ${o.seed}, ${o.runs} runs per property, call time limit ${o.timeoutMs} ms${o.shard ? `, shard ${esc(o.shard)}` : ''}${o.only.length ? `, only ${esc(o.only.join(','))}` : ''}${o.skip.length ? `, skip ${esc(o.skip.join(','))}` : ''}</td></tr>
</table>
<h2>Error distribution</h2>
${plot}
<h2>Failures (${failures.length})</h2>
${failureBlocks || '<p>None.</p>'}
<h2>Checks</h2>
<table class="checks"><tr><th>check ID</th><th>verdict</th><th>time</th><th>note</th></tr>
${rows}
</table>
</body>
</html>
`;
}

const anchor = (id: string) => `fail-${id.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
