/**
 * Joining sharded runs (`check --shard i/n --format json --out shard-i.json` on n CI jobs) into one
 * report: `bn-conformance merge shard-*.json [--junit all.xml]`. The shards must come from the same
 * implementation, seed, profile and schema version; when they carry shard coordinates, every
 * shard 1..n must be present exactly once (a missing shard is an error, never a silent pass).
 * Results come back in the order an unsharded run would list them.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../contract/errors.js';
import { REPORT_SCHEMA_VERSION, type CheckResult, type ConformanceReport } from './types.js';

export function readReportFile(path: string): ConformanceReport {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read report ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not JSON (write it with check --format json --out ${path}): ${e instanceof Error ? e.message : String(e)}`);
  }
  const rep = r as Partial<ConformanceReport>;
  if (typeof rep !== 'object' || rep === null || !Array.isArray(rep.results) || typeof rep.schemaVersion !== 'number' || !rep.options || !rep.implementation) {
    throw new UsageError(`${path} is not a bn-conformance JSON report`);
  }
  if (rep.schemaVersion !== REPORT_SCHEMA_VERSION) throw new UsageError(`${path} has report schema version ${rep.schemaVersion}; this tool reads ${REPORT_SCHEMA_VERSION}`);
  return rep as ConformanceReport;
}

function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  const m = s ? /^(\d+)\/(\d+)$/.exec(s) : null;
  return m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
}

export function mergeReports(reports: ConformanceReport[]): ConformanceReport {
  if (!reports.length) throw new UsageError('merge needs at least one report');
  const first = reports[0]!;
  for (const r of reports.slice(1)) {
    const diffs: string[] = [];
    if (r.implementation.name !== first.implementation.name) diffs.push(`implementation "${r.implementation.name}" vs "${first.implementation.name}"`);
    if (r.options.seed !== first.options.seed) diffs.push(`seed ${r.options.seed} vs ${first.options.seed} (give every shard the same --seed)`);
    if (r.profile.name !== first.profile.name) diffs.push(`profile ${r.profile.name} vs ${first.profile.name}`);
    if (r.options.runs !== first.options.runs) diffs.push(`runs ${r.options.runs} vs ${first.options.runs}`);
    if (diffs.length) throw new UsageError(`these reports are not shards of one run: ${diffs.join('; ')}`);
  }
  const shards = reports.map((r) => parseShard(r.options.shard));
  let results: CheckResult[];
  if (shards.every((s) => s !== undefined)) {
    const count = shards[0]!.count;
    if (shards.some((s) => s!.count !== count)) throw new UsageError(`the reports split the run differently: ${reports.map((r) => r.options.shard).join(', ')}`);
    const byIndex = new Map<number, ConformanceReport>();
    shards.forEach((s, k) => {
      if (byIndex.has(s!.index)) throw new UsageError(`shard ${s!.index}/${count} appears twice`);
      byIndex.set(s!.index, reports[k]!);
    });
    const missing = Array.from({ length: count }, (_, k) => k + 1).filter((i) => !byIndex.has(i));
    if (missing.length) throw new UsageError(`missing shard(s) ${missing.map((i) => `${i}/${count}`).join(', ')}: the merged verdict would be incomplete`);
    // shard i holds the cases at positions i-1, i-1+n, i-1+2n, … of the unsharded order
    const total = [...byIndex.values()].reduce((a, r) => a + r.results.length, 0);
    results = new Array<CheckResult>(total);
    for (const [i, r] of byIndex) r.results.forEach((res, j) => (results[j * count + i - 1] = res));
    if (results.some((r) => r === undefined)) results = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, r]) => r.results);
  } else {
    results = reports.flatMap((r) => r.results);
  }
  const seen = new Set<string>();
  for (const r of results) {
    if (seen.has(r.id)) throw new UsageError(`check ${r.id} appears in more than one report`);
    seen.add(r.id);
  }
  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  const summary = { total: results.length, passed: count('pass'), failed: count('fail'), notSupported: count('not-supported'), skipped: count('skipped'), inconclusive: count('inconclusive') };
  const { shard: _shard, ...options } = first.options;
  return {
    ...first,
    options,
    startedAt: reports.map((r) => r.startedAt).sort()[0]!,
    durationMs: reports.reduce((a, r) => a + r.durationMs, 0),
    summary,
    ok: summary.failed === 0 && (summary.inconclusive === 0 || first.options.allowInconclusive === true),
    results,
  };
}
