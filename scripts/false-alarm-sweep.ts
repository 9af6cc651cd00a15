/**
 * The false-alarm campaign: correct implementations, every profile they claim, many seeds, far
 * more runs than CI. A false alarm (a failure on correct code) is the worst defect a judge can
 * have; this is where the claim "zero in N runs" comes from (docs/false-alarms.md).
 *
 * Every unit is one `bn-conformance check` through the CLI (the door users take: worker
 * isolation, --exec wire), written as JSON; the campaign keeps a record (one JSON file) of the
 * finished units, so it resumes where it stopped and shards across machines or cores.
 *
 *   npm run sweep -- --plan campaign [--shard 1/2] [--record /tmp/fa.json]   the campaign
 *   npm run sweep -- --plan ci                                               a small fixed slice
 *   npm run sweep -- --plan campaign --list                                  print the units
 *   npm run sweep -- --plan campaign --stratum reference-10k --record f      one stratum only
 *   npm run sweep -- --plan gaps --impl numpy,torch --record f               some implementations only
 *   npm run sweep -- --plan campaign --claims DIR --record w1.json            workers sharing the
 *       plan through claim files (start several; --done rec.json,… marks units finished elsewhere)
 *   npm run sweep -- --summarize rec1.json rec2.json …                       totals as markdown
 *
 * Plans (seeds: fixed 1..20 plus random ones, drawn once per record and printed):
 * - reference-full: `check --builtin reference --runs 1000 --seed S`, S = 1..20, every family.
 * - seeds: each implementation x each profile it claims x seeds, 1000 runs per property, every
 *   family but bn:scale (its own stratum below).
 * - reference-10k: the reference at 10,000 runs per property.
 * - large-m: bn:scale alone at --runs 1000 (4 runs per case, each up to m = 1056784).
 * Plan `gaps`: what the first campaign did not reach (the reference at 10k under onnx and paper,
 * more seeds for every CPU implementation with the half precisions, large m on the split engine).
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PYTHON = process.env.BN_PYTHON ?? '/work/venv-torch/bin/python';
const ALL_PROFILES = ['keras', 'tensorflow-fused', 'pytorch', 'onnx', 'paper'] as const;
const FIXED_SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);

interface Implementation {
  label: string;
  /** CLI arguments naming the implementation ({profile}: the unit's profile). */
  args: string[];
  /** Profiles it claims (the CLI's --profile for those that take any). */
  profiles: readonly string[];
  /** Run under xvfb-run (headless-gl). */
  xvfb?: boolean;
  available(): string | undefined;
}

function python(module: string): string | undefined {
  if (!existsSync(PYTHON)) return `no python at ${PYTHON} (BN_PYTHON)`;
  try {
    // find_spec, not import: importing torch costs tens of CPU seconds on a loaded machine
    execFileSync(PYTHON, ['-c', `import importlib.util, sys; sys.exit(importlib.util.find_spec('${module}') is None)`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `python at ${PYTHON} lacks ${module}`;
  }
}

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const IMPLEMENTATIONS: Implementation[] = [
  { label: 'reference', args: ['--builtin', 'reference'], profiles: ALL_PROFILES, available: () => undefined },
  { label: 'cpu-f32', args: ['--builtin', 'cpu-f32'], profiles: ALL_PROFILES, available: () => undefined },
  { label: 'cpu-f32-wasm', args: ['--builtin', 'cpu-f32-wasm'], profiles: ALL_PROFILES, available: () => undefined },
  { label: 'cpu-f32-ts', args: ['--builtin', 'cpu-f32-ts'], profiles: ALL_PROFILES, available: () => undefined },
  // the default engine with its split over the worker pool forced on every shape it can take
  { label: 'cpu-f32-threads', args: ['--builtin', 'cpu-f32-threads'], profiles: ALL_PROFILES, available: () => undefined },
  { label: 'gpu-cpu-mode', args: ['--builtin', 'gpu', '--gpu-mode', 'cpu'], profiles: ALL_PROFILES, available: () => undefined },
  {
    label: 'gpu-headlessgl',
    args: ['--builtin', 'gpu', '--gpu-mode', 'headlessgl'],
    profiles: ALL_PROFILES,
    xvfb: true,
    available: () => (which('xvfb-run') ? undefined : 'no xvfb-run'),
  },
  // a module claims one profile (its default export's); `--profile P` would hold it to another
  // convention, not reconfigure it (a first plan did that: 6 correct failures, dropped)
  { label: 'plain-js', args: ['examples/plain-bn.mjs'], profiles: ['keras'], available: () => undefined },
  {
    label: 'numpy',
    args: ['--exec', `${PYTHON} examples/numpy_adapter.py --profile {profile}`],
    profiles: ALL_PROFILES,
    available: () => python('numpy'),
  },
  { label: 'torch', args: ['--exec', `${PYTHON} examples/torch_adapter.py`], profiles: ['pytorch'], available: () => python('torch') },
];

interface Unit {
  stratum: string;
  impl: string;
  profile: string;
  seed: number;
  runs: number;
  only?: string;
  skip?: string;
}

const keyOf = (u: Unit) => `${u.stratum}|${u.impl}|${u.profile}|${u.seed}|${u.runs}|${u.only ?? ''}|${u.skip ?? ''}`;

interface UnitRecord extends Unit {
  key: string;
  passed: number;
  failed: number;
  skipped: number;
  notSupported: number;
  /** Property runs: the sum of numRuns over every case that ran (examples count one each). */
  runsTotal: number;
  /** Problems checked at m >= 2^20 (bn:scale runs on the implementation's first axis variant). */
  largeM: number;
  seconds: number;
  failures: Array<{ id: string; message: string; replay?: string }>;
  finishedAt: string;
  error?: string;
}

interface CampaignRecord {
  plan: string;
  randomSeeds: number[];
  started: string;
  units: Record<string, UnitRecord>;
  unavailable: Record<string, string>;
}

/** Each implementation's units: its claimed profiles cycle over the seeds, so each profile gets several. */
function plan(name: string, randomSeeds: number[]): Unit[] {
  const available = IMPLEMENTATIONS.filter((i) => !i.available());
  const seeds = [...FIXED_SEEDS, ...randomSeeds];
  const units: Unit[] = [];
  const has = (label: string) => available.some((i) => i.label === label);
  if (name === 'ci') {
    // a small fixed slice: a few seconds, every door type once
    // (half precisions, 0.2.0, are skipped here to keep CI time: spec/gallery runs them for the
    // reference and cpu-f32, scripts/half-sweep.ts at scale; the campaign below includes them)
    units.push({ stratum: 'ci', impl: 'reference', profile: 'keras', seed: 2, runs: 50, only: 'bn:gradients', skip: '*float16*' });
    units.push({ stratum: 'ci', impl: 'cpu-f32', profile: 'pytorch', seed: 6, runs: 50, skip: 'bn:scale,*float16*' });
    return units;
  }
  if (name === 'gaps') {
    // what the first campaign (docs/false-alarms.md) did not reach, in priority order: the
    // reference at 10,000 runs under onnx and paper (float32/float64), then more seeds for every
    // CPU implementation (half precisions included: the first campaign predates them), large m on
    // the split engine, then gpu.js in cpu mode (at 1000 runs since its first 21 units, at 100)
    for (const [k, profile] of (['onnx', 'paper'] as const).entries()) units.push({ stratum: 'reference-10k', impl: 'reference', profile, seed: 103 + k, runs: 10000, skip: 'bn:scale,*float16*' });
    if (has('cpu-f32-threads')) units.push({ stratum: 'large-m', impl: 'cpu-f32-threads', profile: 'pytorch', seed: 201, runs: 1000, only: 'bn:scale' });
    const fresh = [...randomSeeds, ...Array.from({ length: 17 }, (_, i) => i + 4)];
    for (let round = 0; round < fresh.length; round++) {
      for (const label of ['cpu-f32', 'cpu-f32-threads', 'plain-js', 'cpu-f32-wasm', 'cpu-f32-ts']) {
        if (!has(label)) continue;
        const impl = implementation(label);
        units.push({ stratum: 'seeds', impl: label, profile: impl.profiles[(round + 1) % impl.profiles.length]!, seed: fresh[round]!, runs: 1000, skip: 'bn:scale' });
      }
      // gpu.js in cpu mode, at 1000 runs like the others: without bn:scale a unit takes about as
      // long as a CPU kernel's (the first 21 gpu units of this plan ran at 100 runs; records kept)
      if (has('gpu-cpu-mode')) units.push({ stratum: 'seeds', impl: 'gpu-cpu-mode', profile: ALL_PROFILES[(round + 3) % 5]!, seed: fresh[round]!, runs: 1000, skip: 'bn:scale' });
      // the --exec adapters: one process call per request, 3-4 minutes a unit
      if (has('numpy')) units.push({ stratum: 'seeds', impl: 'numpy', profile: ALL_PROFILES[(round + 2) % 5]!, seed: fresh[round]!, runs: 1000, skip: 'bn:scale' });
      // torch's half precisions fail for real (docs/adapters.md: backward, pure half): not false alarms
      if (has('torch')) units.push({ stratum: 'seeds', impl: 'torch', profile: 'pytorch', seed: fresh[round]!, runs: 1000, skip: 'bn:scale,*float16*' });
    }
    return units;
  }
  if (name !== 'campaign') throw new Error(`unknown plan ${name} (campaign, gaps, ci)`);
  // In priority order, so that a campaign cut short has done the mandated parts first.
  // 1. the issue's acceptance: the full default check of the reference at 1000 runs, S = 1..20
  for (const seed of FIXED_SEEDS) units.push({ stratum: 'reference-full', impl: 'reference', profile: 'keras', seed, runs: 1000 });
  // 2. 10,000 runs per property on the reference
  units.push({ stratum: 'reference-10k', impl: 'reference', profile: 'keras', seed: 100, runs: 10000, skip: 'bn:scale' });
  // 3. rounds over every other implementation, each round one more (profile, seed) per
  //    implementation: profiles cycle through those it claims, seeds alternate random and fixed
  const others = available.filter((i) => i.label !== 'reference');
  const roundSeeds = seeds.flatMap((s, k) => (k < randomSeeds.length ? [randomSeeds[k]!, FIXED_SEEDS[k]!] : [])).concat(FIXED_SEEDS.slice(randomSeeds.length));
  const ROUNDS = 20;
  for (let round = 0; round < ROUNDS; round++) {
    for (const impl of others) {
      // gpu.js outside a GPU is ~100x slower than the CPU kernels (270 s for one full check at 100
      // runs on the loaded 2-core machine): 100 runs per property there, and fewer rounds
      const slow = impl.label.startsWith('gpu-');
      if (slow && round >= (impl.xvfb ? 1 : 3)) continue;
      units.push({ stratum: 'seeds', impl: impl.label, profile: impl.profiles[round % impl.profiles.length]!, seed: roundSeeds[round % roundSeeds.length]!, runs: slow ? 100 : 1000, skip: 'bn:scale' });
    }
    if (round === 0) {
      // 4. large m: the scale family alone at --runs 1000 (4 runs per case, each up to m = 1056784)
      for (const impl of ['cpu-f32', 'cpu-f32-ts', 'cpu-f32-wasm', 'cpu-f32-threads', 'plain-js']) {
        if (!has(impl)) continue;
        const claimed = implementation(impl).profiles;
        units.push({ stratum: 'large-m', impl, profile: claimed.includes('pytorch') ? 'pytorch' : claimed[0]!, seed: 200, runs: 1000, only: 'bn:scale' });
      }
    }
    // 5. the reference under the profiles it does not claim by default, random seeds first
    if (round < 8) units.push({ stratum: 'seeds', impl: 'reference', profile: ALL_PROFILES[1 + (round % 4)]!, seed: roundSeeds[round % roundSeeds.length]!, runs: 1000 });
    if (round >= 1 && round <= 4) units.push({ stratum: 'reference-10k', impl: 'reference', profile: ALL_PROFILES[round]!, seed: 100 + round, runs: 10000, skip: 'bn:scale' });
  }
  return units;
}

function implementation(label: string): Implementation {
  const impl = IMPLEMENTATIONS.find((i) => i.label === label);
  if (!impl) throw new Error(`unknown implementation ${label}`);
  return impl;
}

/** Run one unit through the CLI; resolves with the JSON report (or the error). */
async function runUnit(u: Unit): Promise<UnitRecord> {
  const impl = implementation(u.impl);
  const dir = mkdtempSync(join(tmpdir(), 'bn-sweep-'));
  const out = join(dir, 'report.json');
  const cli = ['tsx', 'src/cli/main.ts', 'check', ...impl.args.map((a) => a.replaceAll('{profile}', u.profile)), '--profile', u.profile, '--runs', String(u.runs), '--seed', String(u.seed), '--format', 'json', '--out', out];
  if (u.only) cli.push('--only', u.only);
  if (u.skip) cli.push('--skip', u.skip);
  const [cmd, args] = impl.xvfb ? ['xvfb-run', ['-a', 'npx', ...cli]] : ['npx', cli];
  const t0 = Date.now();
  const stderr: string[] = [];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    child.on('close', (c) => resolve(c ?? -1));
  });
  const seconds = (Date.now() - t0) / 1000;
  const base = { ...u, key: keyOf(u), seconds, finishedAt: new Date().toISOString() };
  try {
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      summary: { passed: number; failed: number; skipped: number; notSupported: number };
      results: Array<{ id: string; status: string; numRuns?: number; failure?: { message: string; replay?: string } }>;
    };
    const ran = report.results.filter((r) => r.status === 'pass' || r.status === 'fail');
    const largeM = ran.filter((r) => r.id.startsWith('bn:scale:') && r.id.endsWith('axis=first')).reduce((a, r) => a + (r.numRuns ?? 0), 0);
    return {
      ...base,
      passed: report.summary.passed,
      failed: report.summary.failed,
      skipped: report.summary.skipped,
      notSupported: report.summary.notSupported,
      runsTotal: ran.reduce((a, r) => a + (r.numRuns ?? 0), 0),
      largeM,
      failures: report.results.filter((r) => r.status === 'fail').map((r) => ({ id: r.id, message: r.failure?.message ?? '', ...(r.failure?.replay ? { replay: r.failure.replay } : {}) })),
    };
  } catch (e) {
    return { ...base, passed: 0, failed: 0, skipped: 0, notSupported: 0, runsTotal: 0, largeM: 0, failures: [], error: `exit ${code}: ${String(e)}; ${stderr.join('').slice(-2000)}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Take a unit: true when this call created its claim file. */
function claim(dir: string, key: string): boolean {
  try {
    closeSync(openSync(join(dir, key.replace(/[^A-Za-z0-9=.,-]+/g, '_')), 'wx'));
    return true;
  } catch {
    return false;
  }
}

function save(path: string, rec: CampaignRecord): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(rec, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}

interface Totals {
  units: number;
  runs: number;
  largeM: number;
  failed: number;
  errors: number;
  seconds: number;
  seeds: Set<number>;
}

function totals(units: UnitRecord[]): Totals {
  const t: Totals = { units: 0, runs: 0, largeM: 0, failed: 0, errors: 0, seconds: 0, seeds: new Set() };
  for (const u of units) {
    t.units++;
    t.runs += u.runsTotal;
    t.largeM += u.largeM;
    t.failed += u.failed;
    t.errors += u.error ? 1 : 0;
    t.seconds += u.seconds;
    t.seeds.add(u.seed);
  }
  return t;
}

/** Markdown: totals per stratum and per implementation, then every failure (there should be none). */
function summarize(records: CampaignRecord[]): string {
  const units = records.flatMap((r) => Object.values(r.units));
  const lines: string[] = [];
  const row = (name: string, t: Totals) =>
    `| ${name} | ${t.units} | ${[...t.seeds].sort((a, b) => a - b).join(', ')} | ${t.runs.toLocaleString('en-US')} | ${t.largeM} | ${t.failed} | ${t.errors} | ${(t.seconds / 60).toFixed(1)} |`;
  const header = ['| | units | seeds | property runs | problems at m ≥ 2^20 | failures | errors | minutes |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  lines.push('By stratum:', '', ...header);
  for (const s of [...new Set(units.map((u) => u.stratum))]) lines.push(row(s, totals(units.filter((u) => u.stratum === s))));
  lines.push(row('**all**', totals(units)), '', 'By implementation (profiles):', '', ...header);
  for (const i of [...new Set(units.map((u) => u.impl))]) {
    const mine = units.filter((u) => u.impl === i);
    lines.push(row(`${i} (${[...new Set(mine.map((u) => u.profile))].join(', ')})`, totals(mine)));
  }
  const unavailable = Object.assign({}, ...records.map((r) => r.unavailable)) as Record<string, string>;
  if (Object.keys(unavailable).length) lines.push('', 'Not run here: ' + Object.entries(unavailable).map(([k, v]) => `${k} (${v})`).join('; '));
  const bad = units.filter((u) => u.failed || u.error);
  lines.push('', bad.length ? 'Failures:' : 'Failures: none.');
  for (const u of bad) {
    lines.push(`- ${u.key}: ${u.error ?? ''}`);
    for (const f of u.failures) lines.push(`  - ${f.id}: ${f.message}${f.replay ? ` (replay: ${f.replay})` : ''}`);
  }
  lines.push('', `Random seeds: ${[...new Set(records.flatMap((r) => r.randomSeeds))].join(', ')}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes('--summarize')) {
    const files = argv.slice(argv.indexOf('--summarize') + 1);
    console.log(summarize(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CampaignRecord)));
    return;
  }
  const planName = opt('--plan') ?? 'campaign';
  const [shardIndex, shardCount] = (opt('--shard') ?? '1/1').split('/').map(Number) as [number, number];
  if (!(shardCount >= 1 && shardIndex >= 1 && shardIndex <= shardCount)) throw new Error(`--shard i/n with 1 <= i <= n, got ${opt('--shard')}`);
  const recordPath = opt('--record') ?? join(tmpdir(), `bn-false-alarms-${planName}-${shardIndex}of${shardCount}.json`);
  const rec: CampaignRecord = existsSync(recordPath)
    ? (JSON.parse(readFileSync(recordPath, 'utf8')) as CampaignRecord)
    : {
        plan: planName,
        // random seeds: drawn once per record, so a resumed campaign keeps its plan
        randomSeeds: Array.from({ length: 4 }, () => 1000 + Math.floor(Math.random() * 2 ** 30)),
        started: new Date().toISOString(),
        units: {},
        unavailable: {},
      };
  if (opt('--random-seeds')) rec.randomSeeds = opt('--random-seeds')!.split(',').map(Number);
  for (const i of IMPLEMENTATIONS) {
    const why = i.available();
    if (why) rec.unavailable[i.label] = why;
  }
  // --stratum S: only that stratum's units; --skip-stratum S: all but that one
  const stratum = opt('--stratum');
  // --impl a,b: only those implementations' units (a worker per kind of door)
  const impls = opt('--impl')?.split(',');
  const skipStratum = opt('--skip-stratum');
  const all = plan(planName, rec.randomSeeds).filter((u) => (!stratum || u.stratum === stratum) && u.stratum !== skipStratum && (!impls || impls.includes(u.impl)));
  const mine = all.filter((_, k) => k % shardCount === shardIndex - 1);
  console.log(`plan ${planName}: ${all.length} units, shard ${shardIndex}/${shardCount}: ${mine.length}; random seeds ${rec.randomSeeds.join(', ')}; record ${recordPath}`);
  for (const [k, v] of Object.entries(rec.unavailable)) console.log(`  not run: ${k} (${v})`);
  if (argv.includes('--list')) {
    for (const u of mine) console.log(`  ${rec.units[keyOf(u)] ? 'done' : 'todo'} ${keyOf(u)}`);
    return;
  }
  save(recordPath, rec);
  let failed = 0;
  // --claims DIR: any number of workers share the plan; a worker takes a unit by creating its
  // claim file (exclusively), so none runs twice. --done a.json,b.json: units finished elsewhere.
  const claims = opt('--claims');
  if (claims) {
    mkdirSync(claims, { recursive: true });
    for (const f of (opt('--done') ?? '').split(',').filter(Boolean)) {
      for (const k of Object.keys((JSON.parse(readFileSync(f, 'utf8')) as CampaignRecord).units)) claim(claims, k);
    }
  }
  for (const u of mine) {
    const key = keyOf(u);
    if (rec.units[key] && !rec.units[key]!.error) {
      failed += rec.units[key]!.failed;
      continue;
    }
    if (claims && !claim(claims, key)) continue;
    const r = await runUnit(u);
    rec.units[key] = r;
    save(recordPath, rec);
    failed += r.failed + (r.error ? 1 : 0);
    console.log(
      `${new Date().toISOString().slice(11, 19)} ${key}: ${r.error ? `ERROR ${r.error.slice(0, 300)}` : `${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped, ${r.runsTotal} runs, ${r.largeM} at m >= 2^20`} (${r.seconds.toFixed(0)} s)`,
    );
    for (const f of r.failures) console.log(`  ✗ ${f.id}: ${f.message}${f.replay ? `\n    ${f.replay}` : ''}`);
  }
  console.log(summarize([rec]));
  process.exitCode = failed ? 1 : 0;
}

await main();
