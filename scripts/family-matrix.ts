/**
 * The normalization family's matrix picture (README, docs/adapters.md): ops x runtimes, each cell
 * pass / fail (with the dtypes that fail) / not supported, from JSON reports.
 *
 *   npx tsx scripts/family-matrix.ts <reports-dir> [out.svg]     (default docs/plots/family-matrix.svg)
 *
 * <reports-dir> holds `<builtin>.json` (`bn-conformance check --builtin <builtin> --only <prefix>
 * --format json --out <reports-dir>/<builtin>.json`, any seed) and optionally `refused.json`,
 * `{ "<builtin>": { "op": "rmsNorm", "reason": "…" } }`, for a built-in that refused to load (its
 * op is then "not supported" with the reason in a footnote). A row per report, in file-name order;
 * a column per family op, forward and backward. A cell:
 *   pass            every check of the op that ran passed
 *   fail <dtypes>   a check of the op failed; the dtypes of the failing checks (f32, f64, f16, …)
 *   inconclusive    none failed, one proved nothing (docs/CONTRACT.md, no vacuous verdicts)
 *   not supported   the implementation lacks the op (its checks were planned: a sibling op exists)
 *   (empty)         no check of the op was planned: the built-in has none of that target's ops
 * A check counts for the backward op when its ID names `backward` or `gradients`, or (edge cases,
 * which run every op the implementation has) its failure message names the backward op.
 * Also prints the matrix as a Markdown table.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { escapeXml } from '../src/teach/svg.js';

interface Result {
  id: string;
  status: 'pass' | 'fail' | 'inconclusive' | 'not-supported' | 'skipped';
  reason?: string;
  failure?: { message: string };
}
interface Report {
  implementation: { name: string };
  results: Result[];
}

const OPS = [
  ['ln', 'layerNorm', false],
  ['ln', 'layerNormBackward', true],
  ['rms', 'rmsNorm', false],
  ['rms', 'rmsNormBackward', true],
  ['gn', 'groupNorm', false],
  ['gn', 'groupNormBackward', true],
  ['in', 'instanceNorm', false],
  ['in', 'instanceNormBackward', true],
] as const;
type Cell = { kind: 'pass' | 'fail' | 'inconclusive' | 'not-supported' | 'none'; dtypes: string[]; note?: string };

const SHORT: Record<string, string> = { float32: 'f32', float64: 'f64', float16: 'f16', bfloat16: 'bf16' };
const dtypeOf = (id: string) => {
  const m = /dtype=(\w+)(?:;params=(\w+))?/.exec(id);
  // golden replays (<prefix>:golden:<case>) carry no dtype in their ID
  return m ? (m[2] ? `${SHORT[m[1]!] ?? m[1]}/${SHORT[m[2]] ?? m[2]}` : (SHORT[m[1]!] ?? m[1]!)) : /:golden:/.test(id) ? 'golden' : '?';
};

function isBackward(r: Result, backwardOp: string): boolean {
  if (/:(backward|gradients)(:|$)/.test(r.id)) return true;
  if (/:edge:/.test(r.id) && r.failure && new RegExp(`\\b${backwardOp}\\b`).test(r.failure.message)) return true;
  return false;
}

export function cellOf(report: Report, prefix: string, op: string, backward: boolean): Cell {
  const backwardOp = backward ? op : `${op}Backward`;
  const mine = report.results.filter((r) => r.id.startsWith(`${prefix}:`) && isBackward(r, backwardOp) === backward && r.status !== 'skipped');
  if (!mine.length) return { kind: 'none', dtypes: [] };
  const ran = mine.filter((r) => r.status !== 'not-supported');
  if (!ran.length) return { kind: 'not-supported', dtypes: [] };
  const failed = ran.filter((r) => r.status === 'fail');
  if (failed.length) return { kind: 'fail', dtypes: [...new Set(failed.map((r) => dtypeOf(r.id)))] };
  if (ran.some((r) => r.status === 'inconclusive')) return { kind: 'inconclusive', dtypes: [] };
  return { kind: 'pass', dtypes: [...new Set(ran.map((r) => dtypeOf(r.id)))] };
}

const COLORS: Record<Cell['kind'], [string, string]> = {
  pass: ['#d9f2d9', '#1e6b1e'],
  fail: ['#f8d4d4', '#a31515'],
  inconclusive: ['#fff0c2', '#7a5a00'],
  'not-supported': ['#e8e8e8', '#555555'],
  none: ['#ffffff', '#999999'],
};
const label = (c: Cell) => (c.kind === 'pass' ? `pass ${c.dtypes.join(' ')}` : c.kind === 'fail' ? `fail ${c.dtypes.join(' ')}` : c.kind === 'not-supported' ? 'not supported' : c.kind === 'inconclusive' ? 'inconclusive' : '');

export function renderMatrix(rows: Array<{ name: string; title: string; cells: Cell[] }>, notes: string[]): string {
  const left = 210;
  const cw = 118;
  const rh = 22;
  const top = 58;
  const width = left + OPS.length * cw + 10;
  const height = top + rows.length * rh + 16 + notes.length * 14 + 26;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  o.push(`<text x="8" y="18" font-size="14" font-weight="bold">The normalization family in JS runtimes: ops x runtimes</text>`);
  o.push(`<text x="8" y="34" fill="#555555">pass / fail (dtypes of the failing checks) / not supported; empty: the built-in has none of that op's family</text>`);
  OPS.forEach(([, op], k) => o.push(`<text x="${left + k * cw + cw / 2}" y="${top - 8}" text-anchor="middle" font-weight="bold">${escapeXml(op.replace('Backward', ' bwd'))}</text>`));
  rows.forEach((r, i) => {
    const y = top + i * rh;
    o.push(`<text x="${left - 6}" y="${y + 15}" text-anchor="end"><title>${escapeXml(r.title)}</title>${escapeXml(r.name)}</text>`);
    r.cells.forEach((c, k) => {
      const [fill, ink] = COLORS[c.kind];
      o.push(`<rect x="${left + k * cw + 1}" y="${y + 1}" width="${cw - 2}" height="${rh - 2}" fill="${fill}" stroke="#cccccc"/>`);
      if (c.kind !== 'none') o.push(`<text x="${left + k * cw + cw / 2}" y="${y + 15}" text-anchor="middle" fill="${ink}">${escapeXml(label(c) + (c.note ? ` ${c.note}` : ''))}</text>`);
    });
  });
  notes.forEach((n, i) => o.push(`<text x="8" y="${top + rows.length * rh + 22 + i * 14}" fill="#555555">${escapeXml(n)}</text>`));
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

function main() {
  const dir = process.argv[2];
  const out = process.argv[3] ?? 'docs/plots/family-matrix.svg';
  if (!dir) {
    process.stderr.write('usage: npx tsx scripts/family-matrix.ts <reports-dir> [out.svg]\n');
    process.exit(2);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'refused.json').sort();
  let refused: Record<string, { op: string; reason: string }> = {};
  try {
    refused = JSON.parse(readFileSync(join(dir, 'refused.json'), 'utf8')) as typeof refused;
  } catch {
    /* none refused */
  }
  const rows: Array<{ name: string; title: string; cells: Cell[] }> = [];
  const notes: string[] = [];
  for (const f of files) {
    const report = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Report;
    if (!Array.isArray(report.results)) throw new Error(`${f} is not a bn-conformance JSON report`);
    rows.push({ name: basename(f, '.json'), title: report.implementation.name, cells: OPS.map(([p, op, b]) => cellOf(report, p, op, b)) });
  }
  for (const [name, r] of Object.entries(refused)) {
    notes.push(`* ${name}: ${r.reason}`);
    rows.push({ name, title: r.reason, cells: OPS.map(([, op]) => (op === r.op ? { kind: 'not-supported', dtypes: [], note: '*' } : { kind: 'none', dtypes: [] })) });
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  writeFileSync(out, renderMatrix(rows, notes));
  const md = ['| runtime | ' + OPS.map(([, op]) => op).join(' | ') + ' |', '| --- |' + OPS.map(() => ' --- |').join('')];
  for (const r of rows) md.push(`| \`${r.name}\` | ${r.cells.map((c) => label(c) + (c.note ?? '')).join(' | ')} |`);
  process.stdout.write(`${md.join('\n')}\n${notes.join('\n')}\nwrote ${out}\n`);
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) main();
