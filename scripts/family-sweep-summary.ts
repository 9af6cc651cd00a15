/**
 * Tables of the normalization family's false-alarm sweep (scripts/family-sweep.sh): per unit
 * (op, seed) and per check family, every check's status, property runs, values compared and the
 * inconclusive share of them (src/judge/tally.ts), and every failure or inconclusive check with its
 * replay line.
 *
 *   npx tsx scripts/family-sweep-summary.ts OUT
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Result {
  id: string;
  status: string;
  numRuns?: number;
  comparisons?: { values: number; inconclusive: number };
  failure?: { message?: string; replay?: string };
}
interface Report {
  summary: { total: number; passed: number; failed: number; skipped: number; inconclusive: number };
  durationMs: number;
  options: { seed: number; runs: number };
  results: Result[];
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: npx tsx scripts/family-sweep-summary.ts OUT');
const files = readdirSync(dir).filter((f) => /^(ln|rms|gn|in)-\d+\.json$/.test(f)).sort();
type Row = { checks: number; pass: number; fail: number; inconclusive: number; skipped: number; runs: number; values: number; vague: number; minutes: number; seeds: Set<number> };
const blank = (): Row => ({ checks: 0, pass: 0, fail: 0, inconclusive: 0, skipped: 0, runs: 0, values: 0, vague: 0, minutes: 0, seeds: new Set() });
const byFamily = new Map<string, Row>();
/** The check family across the four ops (agreement, edge, …). */
const byKind = new Map<string, Row>();
const byOp = new Map<string, Row>();
const problems: string[] = [];
for (const f of files) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Report;
  const op = f.split('-')[0]!;
  const o = byOp.get(op) ?? blank();
  byOp.set(op, o);
  o.minutes += r.durationMs / 60000;
  o.seeds.add(r.options.seed);
  for (const x of r.results) {
    const fam = x.id.split(':').slice(0, 2).join(':');
    const row = byFamily.get(fam) ?? blank();
    byFamily.set(fam, row);
    const kind = byKind.get(fam.split(':')[1]!) ?? blank();
    byKind.set(fam.split(':')[1]!, kind);
    for (const t of [row, o, kind]) {
      t.checks++;
      t.pass += x.status === 'pass' ? 1 : 0;
      t.fail += x.status === 'fail' ? 1 : 0;
      t.inconclusive += x.status === 'inconclusive' ? 1 : 0;
      t.skipped += x.status === 'skipped' ? 1 : 0;
      t.runs += x.numRuns ?? 0;
      t.values += x.comparisons?.values ?? 0;
      t.vague += x.comparisons?.inconclusive ?? 0;
      t.seeds.add(r.options.seed);
    }
    if (x.status === 'fail' || x.status === 'inconclusive') problems.push(`- ${f}: ${x.status} ${x.id}: ${x.failure?.message ?? ''} ${x.failure?.replay ?? ''}`);
  }
}
const n = (v: number) => v.toLocaleString('en-US');
const pct = (r: Row) => `${n(r.vague)} (${((100 * r.vague) / Math.max(r.values, 1)).toFixed(3)}%)`;
console.log(`${files.length} units\n`);
console.log('| op | units (seeds) | checks run | pass | fail | inconclusive | skipped | property runs | values compared | inconclusive values | minutes |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [op, r] of byOp) console.log(`| ${op} | ${r.seeds.size} | ${n(r.checks)} | ${n(r.pass)} | ${r.fail} | ${r.inconclusive} | ${r.skipped} | ${n(r.runs)} | ${n(r.values)} | ${pct(r)} | ${r.minutes.toFixed(1)} |`);
console.log('\n| family | checks run | pass | fail | inconclusive | property runs | values compared | inconclusive values |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [fam, r] of [...byFamily].sort()) console.log(`| \`${fam}\` | ${n(r.checks)} | ${n(r.pass)} | ${r.fail} | ${r.inconclusive} | ${n(r.runs)} | ${n(r.values)} | ${pct(r)} |`);
console.log('\n| family (four ops) | checks run | pass | fail | inconclusive | property runs | values compared | inconclusive values |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [k, r] of [...byKind].sort()) console.log(`| ${k} | ${n(r.checks)} | ${n(r.pass)} | ${r.fail} | ${r.inconclusive} | ${n(r.runs)} | ${n(r.values)} | ${pct(r)} |`);
console.log(problems.length ? `\n${problems.join('\n')}` : '\nno failure, no inconclusive check');
