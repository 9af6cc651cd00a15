/**
 * Failures grouped by cause, for every report format (text, HTML, JSON `causes`): one planted bug
 * fails dozens of checks (every dtype, every axis, every golden fixture that exercises the wrong
 * output), and a first-time reader needs the few distinct things that are wrong, not 130 blocks.
 *
 * Two levels:
 * - a cause: failures that share a counterexample (a stable hash of the counterexample's
 *   request(s)) or the same symptom: the same named fault in the same op, or the same output of
 *   the same op disagreeing (forwardTrain's runningVar, backward's dx, ...; outputs computed
 *   from a wrong statistic go with it: joinDependents), or, when neither can be read, the same
 *   check and message shape (numbers blanked). Shared counterexamples and shared symptoms are
 *   joined transitively (union-find).
 * - an entry of a cause: one counterexample. Axis variants of one check (IDs differing only in
 *   `axis=...`) and checks whose counterexamples hash alike fold into one entry that lists them.
 *
 * A cause is what the failures have in common, not a diagnosis: two bugs that break the same
 * output share a cause, and one bug that breaks two outputs shows as two.
 *
 * Hints (part of a cause) name a declaration that would cure it: subnormals flushed to zero, or
 * float64 requests computed in float32.
 */
import { createHash } from 'node:crypto';
import type { AnyOp, DType } from '../contract/contract.js';
import { fieldDtype } from '../contract/dtypes.js';
import type { CheckResult, ConformanceReport, Counterexample } from './types.js';

export type HintKind = 'flush-to-zero' | 'float32-arithmetic';

export interface CauseHint {
  kind: HintKind;
  text: string;
}

/** One counterexample of a cause and the failing checks it explains. */
export interface CauseEntry {
  /** Check IDs, report order; the first is the representative whose details the reports print. */
  checks: string[];
  /** The channel-axis variants folded in (`first`, `last`, `other`), when there are several. */
  axes?: string[];
  /** Stable hash (16 hex digits) of the representative's counterexample; absent when it has none. */
  counterexample?: string;
}

export interface Cause {
  /** 1, 2, ...: most checks first. */
  id: number;
  /** What the failures share, e.g. `forwardTrain's runningVar`, `forwardTrain: input-mutated`. */
  symptom: string;
  /** Every failing check the cause explains, report order. */
  checks: string[];
  entries: CauseEntry[];
  hints?: CauseHint[];
}

/** The contract's output names (BN ops and the normalization family): what a symptom can name. */
const OUTPUTS = ['runningMean', 'runningVar', 'invStdDev', 'variance', 'dgamma', 'dbeta', 'mean', 'dx', 'y'];
const BACKWARD_OUTPUTS = new Set(['dx', 'dgamma', 'dbeta']);
/** Phrases of messages without a worst element (running statistics checks). */
const PHRASES: Array<[RegExp, string]> = [
  [/\brunning variance\b/i, 'runningVar'],
  [/\brunning mean\b/i, 'runningMean'],
];

const AXIS_RE = /;axis=(first|last|other)$/;
export const withoutAxis = (id: string) => id.replace(AXIS_RE, '');
const axisOf = (id: string) => AXIS_RE.exec(id)?.[1];
/** The check without its variant suffix (`bn:edge:m2`), golden fixtures as one (`bn:golden`). */
export const checkBase = (id: string) => (id.startsWith('bn:golden:') ? 'bn:golden' : id.replace(/:dtype=.*$/, ''));
const dtypeOfId = (id: string) => /:dtype=([a-z0-9]+)/.exec(id)?.[1] as DType | undefined;

/** Numbers blanked, a leading `[label]` and `step k` dropped: the shape of a message. */
export const messageShape = (m: string) =>
  m
    .replace(/^\[[^\]]*\]\s*/, '')
    .replace(/^step \d+ /, '')
    .replace(/[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/gi, '#')
    .replace(/\s+/g, ' ')
    .trim();

/** JSON with sorted keys and non-finite numbers spelled out, so equal requests hash alike. */
function canonical(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<unknown>, canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** A stable hash of the counterexample's request(s); undefined when it has none (e.g. a golden fixture's script). */
export function counterexampleHash(cx: Counterexample | undefined): string | undefined {
  if (!cx) return undefined;
  const requests = cx.requests?.length ? cx.requests : cx.request ? [{ op: cx.op, request: cx.request }] : undefined;
  // a script (running statistics' sequence) is its counterexample when no request was recorded;
  // the dtype keeps float32's and float64's apart as their requests would be
  const body = requests ?? (cx.script && !cx.script.startsWith('fixture ') ? { script: cx.script, dtype: cx.dtype, op: cx.op } : undefined);
  if (body === undefined) return undefined;
  return createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex').slice(0, 16);
}

/** The output a failure names: the worst element's, else one the message names. */
function outputOf(r: CheckResult): string | undefined {
  const f = r.failure!;
  const texts = [f.worst?.output, f.worst?.where, f.message].filter((t): t is string => typeof t === 'string');
  for (const t of texts) {
    if (OUTPUTS.includes(t)) return t;
    // `shift by [0] per channel: y[1]`, `mean[0]`, `runningVar[c=0] = ...`: an indexed name
    for (const m of t.matchAll(/([A-Za-z]+)\[/g)) if (OUTPUTS.includes(m[1]!)) return m[1];
    // `variance of y over channel 0`, `sum of dx over channel 0`
    const of = /\bof ([A-Za-z]+)\b/.exec(t);
    if (of && OUTPUTS.includes(of[1]!)) return of[1];
  }
  for (const t of texts) {
    for (const [re, name] of PHRASES) if (re.test(t)) return name;
    const word = t.split(/[^A-Za-z]+/).find((w) => OUTPUTS.includes(w));
    if (word) return word;
  }
  return undefined;
}

/** The op that produces `output`, from the counterexample's op where it can. */
function opFor(output: string, cxOp: AnyOp | undefined): string {
  const op = cxOp as string | undefined;
  const isBackward = (o: string) => /backward/i.test(o);
  if (BACKWARD_OUTPUTS.has(output)) {
    if (!op || isBackward(op)) return op ?? 'backward';
    if (op === 'forwardTrainSync') return 'backwardSync';
    if (op === 'forwardTrain' || op === 'forwardInfer') return 'backward';
    return `${op}Backward`;
  }
  return op && !isBackward(op) ? op : 'forwardTrain';
}

/** A named fault: the failure's own, or one a golden step's message carries (`threw: input-mutated: ...`). */
function faultOf(r: CheckResult): string | undefined {
  const f = r.failure!;
  if (f.fault) return f.fault;
  return /\b(?:threw|rejected): ([a-z]+(?:-[a-z]+)+): /.exec(f.message)?.[1];
}

interface Symptom {
  key: string;
  text: string;
  /** For a wrong output: the op and the output. */
  op?: string;
  output?: string;
}

/**
 * Outputs computed from others of the same op: y and the running statistics from the batch
 * statistics (mean, variance; the family's invStdDev), dx from the same two reductions as dgamma
 * and dbeta. When a statistic of an op is wrong, the op's wrong dependents are put with it (one
 * wrong mean makes y and runningMean wrong too); when only a dependent is wrong, it is a cause
 * of its own (a wrong running-variance update leaves y alone).
 */
const ROOTS = ['mean', 'variance', 'invStdDev', 'dgamma', 'dbeta'];
const DEPENDS: Record<string, readonly string[]> = { y: ['mean', 'variance', 'invStdDev'], runningMean: ['mean'], runningVar: ['variance'], dx: ['dgamma', 'dbeta'] };
const OUTPUT_ORDER = ['mean', 'variance', 'invStdDev', 'dgamma', 'dbeta', 'y', 'dx', 'runningMean', 'runningVar'];

/** `a`, `a and b`, `a, b and c`. */
const listing = (xs: string[]) => (xs.length < 2 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** Dependents of an op whose statistics also fail join the statistics' key. */
function joinDependents(symptoms: Symptom[]): Symptom[] {
  const roots = new Map<string, Set<string>>();
  for (const s of symptoms) if (s.op && s.output && ROOTS.includes(s.output)) roots.set(s.op, (roots.get(s.op) ?? new Set()).add(s.output));
  const rootKey = (op: string) => `output:${op}:${[...roots.get(op)!].sort().join('+')}`;
  return symptoms.map((s) => {
    if (!s.op || !s.output || !roots.has(s.op)) return s;
    const wrong = roots.get(s.op)!;
    if (ROOTS.includes(s.output) || (DEPENDS[s.output] ?? []).some((o) => wrong.has(o))) return { ...s, key: rootKey(s.op) };
    return s;
  });
}

/** The words for a cause's symptoms: `forwardTrain's mean and variance (and y, runningVar, computed from them)`. */
function describeSymptoms(symptoms: Symptom[]): string {
  const byOp = new Map<string, Set<string>>();
  const other: string[] = [];
  for (const s of symptoms) {
    if (s.op && s.output) byOp.set(s.op, (byOp.get(s.op) ?? new Set()).add(s.output));
    else if (!other.includes(s.text)) other.push(s.text);
  }
  const ops = [...byOp].map(([op, set]) => {
    const outs = OUTPUT_ORDER.filter((o) => set.has(o)).concat([...set].filter((o) => !OUTPUT_ORDER.includes(o)));
    const roots = outs.filter((o) => ROOTS.includes(o));
    const deps = outs.filter((o) => !ROOTS.includes(o));
    if (!roots.length || !deps.length) return `${op}'s ${listing(outs)}`;
    return `${op}'s ${listing(roots)} (and ${listing(deps)}, computed from ${roots.length > 1 ? 'them' : 'it'})`;
  });
  return [...ops, ...other].join('; ');
}

/** The symptom: a key (what joins failures) and the words a report shows. */
function symptomOf(r: CheckResult): Symptom {
  const f = r.failure!;
  const cxOp = f.counterexample?.op ?? (/\b(forwardTrain|forwardInfer|backward)\b/.exec(f.message)?.[1] as AnyOp | undefined);
  if (/internal error/i.test(f.message)) return { key: 'internal-error', text: 'an internal error of bn-conformance (please report it)' };
  const fault = faultOf(r);
  if (fault === 'threw' || fault === 'rejected') {
    // what was thrown tells causes apart (a refused m = 1 is not a crash on NaN)
    const said = messageShape(f.message.replace(/^.*?\b(?:threw|rejected):\s*/, ''));
    return { key: `fault:${fault}:${cxOp ?? ''}:${said}`, text: `${cxOp ?? 'a call'} ${fault}: ${truncate(said, 100)}` };
  }
  if (fault) return { key: `fault:${fault}:${cxOp ?? ''}`, text: `${cxOp ? `${cxOp}: ` : ''}${fault}` };
  const output = outputOf(r);
  if (output) {
    const op = opFor(output, cxOp);
    return { key: `output:${op}:${output}`, text: `${op}'s ${output}`, op, output };
  }
  const shape = messageShape(f.message);
  return { key: `message:${checkBase(r.id)}:${shape}`, text: `${checkBase(r.id)}: ${truncate(shape, 100)}` };
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

class UnionFind {
  private readonly parent: number[];
  constructor(n: number) {
    this.parent = Array.from({ length: n }, (_, k) => k);
  }
  find(a: number): number {
    while (this.parent[a] !== a) a = this.parent[a] = this.parent[this.parent[a]!]!;
    return a;
  }
  union(a: number, b: number): void {
    const [x, y] = [this.find(a), this.find(b)];
    // the smaller index stays the root: groups keep report order
    if (x !== y) this.parent[Math.max(x, y)] = Math.min(x, y);
  }
}

/** Indices grouped by union-find root, each group and the groups in first-index order. */
function groupsOf(n: number, keysOf: (k: number) => Array<string | undefined>): number[][] {
  const uf = new UnionFind(n);
  const first = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    for (const key of keysOf(k)) {
      if (key === undefined) continue;
      const j = first.get(key);
      if (j === undefined) first.set(key, k);
      else uf.union(j, k);
    }
  }
  const groups = new Map<number, number[]>();
  for (let k = 0; k < n; k++) {
    const root = uf.find(k);
    groups.set(root, [...(groups.get(root) ?? []), k]);
  }
  return [...groups.values()];
}

// ---- hints -------------------------------------------------------------------------------

/** Smallest normal number of each dtype: below it (and above 0) a value is subnormal. */
const SMALLEST_NORMAL: Record<DType, number> = { float32: 2 ** -126, float64: 2 ** -1022, float16: 2 ** -14, bfloat16: 2 ** -126 };
const isSubnormal = (v: unknown, d: DType) => typeof v === 'number' && v !== 0 && Math.abs(v) < SMALLEST_NORMAL[d];

/** Does the counterexample send a subnormal value, or expect one? */
function involvesSubnormals(r: CheckResult): boolean {
  const f = r.failure!;
  const cx = f.counterexample;
  const dtype = cx?.dtype ?? dtypeOfId(r.id);
  if (!dtype || !(dtype in SMALLEST_NORMAL)) return false;
  const p = { dtype, paramDtype: cx?.paramDtype ?? dtype };
  if (f.worst && isSubnormal(f.worst.expected, fieldDtype(f.worst.output, p))) return true;
  const requests = cx?.requests?.map((q) => q.request) ?? (cx?.request ? [cx.request] : []);
  for (const req of requests) {
    for (const [field, v] of Object.entries(req)) {
      const d = fieldDtype(field, p);
      if (Array.isArray(v) ? v.some((x) => isSubnormal(x, d)) : isSubnormal(v, d)) return true;
    }
  }
  return false;
}

/** Significant bits of a finite nonzero number's significand (1 for a power of two). */
function significantBits(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return 0;
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, v);
  let mant = (BigInt(b.getUint32(0) & 0xfffff) << 32n) | BigInt(b.getUint32(4));
  if (mant === 0n) return 1;
  let trailing = 0;
  while ((mant & 1n) === 0n) (mant >>= 1n, trailing++);
  return 53 - trailing;
}

/**
 * A float64 result that looks float32-rounded: exactly representable in float32 yet needing more
 * than 12 significant bits. A value of 12 bits or fewer (0.25, 3, 1.5) is a float32 number by
 * nature and proves nothing; an arbitrary float64 result with 13 to 24 significant bits turns up
 * with probability about 2^-29 (its last 29 significand bits all zero), so one such value is
 * evidence of float32 arithmetic.
 */
const looksFloat32 = (v: number) => Math.fround(v) === v && significantBits(v) > 12;

/** The float64 results that came straight from an output (not a relation the check computed from several). */
const rawGots = (failures: CheckResult[]) =>
  failures
    .filter((r) => r.failure!.worst && OUTPUTS.includes(r.failure!.worst.output))
    .map((r) => r.failure!.worst!.got)
    .filter((g) => Number.isFinite(g));

const dtypeOfFailure = (r: CheckResult) => r.failure?.counterexample?.dtype ?? dtypeOfId(r.id);

/** Only float64 fails: no float32 check fails, and some float32 check passes. */
const onlyFloat64Fails = (report: ConformanceReport) =>
  !report.results.some((r) => r.status === 'fail' && dtypeOfFailure(r) === 'float32') && report.results.some((r) => r.status === 'pass' && dtypeOfId(r.id) === 'float32');

/**
 * A float64 failure that float32 arithmetic explains: its raw result is a float32 number, or it is
 * off by a float32-sized error. Float32's unit roundoff is 2^-24; a result computed in float32, or
 * from float32-rounded parameters (an ONNX model's epsilon and momentum), is off by a few of those
 * relative to its value: 2^-20 (16 units) leaves room for the formula's few roundings. A larger
 * error is another bug.
 */
const FLOAT32_SIZED = 2 ** -20;
function float32Consistent(r: CheckResult): boolean {
  const w = r.failure!.worst;
  if (!w || !OUTPUTS.includes(w.output) || !Number.isFinite(w.got)) return true; // nothing to contradict
  if (Math.fround(w.got) === w.got) return true;
  return w.expected !== 0 && Math.abs(w.got - w.expected) <= FLOAT32_SIZED * Math.abs(w.expected);
}

interface RunEvidence {
  /** No float32 check fails and some passes. */
  only64: boolean;
  /** A float64 failure's raw result that looks float32-rounded (looksFloat32), if any: the run's evidence of float32 arithmetic. */
  float32Example: number | undefined;
}

function hintsFor(failures: CheckResult[], report: ConformanceReport, run: RunEvidence): CauseHint[] {
  const hints: CauseHint[] = [];
  const acc = report.implementation.accumulation ?? {};
  // (a) subnormals in every counterexample of the cause, and a result flushed to zero where the
  // answer is not zero; for float64, not when some float64 result of the run is float32-rounded
  // (float32 arithmetic underflows float64's subnormals too: no declaration cures that)
  const flushed = failures.find((r) => {
    const w = r.failure!.worst;
    return w !== undefined && w.got === 0 && w.expected !== 0;
  });
  const d = flushed && dtypeOfFailure(flushed);
  if (flushed && d && acc[d]?.subnormals !== 'flush-to-zero' && !(d === 'float64' && run.float32Example !== undefined) && failures.every(involvesSubnormals)) {
    const a = acc[d];
    const decl = a ? `{ dtype: '${a.dtype}', order: '${a.order}'${a.tile ? `, tile: ${a.tile}` : ''}, subnormals: 'flush-to-zero' }` : `{ …, subnormals: 'flush-to-zero' }`;
    const w = flushed.failure!.worst!;
    hints.push({
      kind: 'flush-to-zero',
      text: `every counterexample here has subnormal ${d} values, and ${w.where} came back 0 where ${w.expected} was expected: if your kernel flushes subnormals (GPU shaders may), declare \`accumulation: ${decl}\` (the bounds then allow the flush)`,
    });
  }
  // (b) only float64 fails (float32 passes), some float64 result of the run is float32-rounded
  // (the evidence: by chance, 2^-29), and every result of this cause is float32-rounded or off
  // by a float32-sized error
  if (run.only64 && run.float32Example !== undefined && failures.every((r) => dtypeOfFailure(r) === 'float64' && float32Consistent(r))) {
    const example = rawGots(failures).find(looksFloat32) ?? run.float32Example;
    hints.push({
      kind: 'float32-arithmetic',
      text: `only float64 fails (float32 passes), and its float64 results are float32 numbers (e.g. ${example}) or off by float32-sized errors (at most 2^-20 relative): the implementation seems to compute in float32, or with float32 parameters (as ONNX models do: their epsilon and momentum are float32 attributes); compute float64 in float64, or declare only float32`,
    });
  }
  return hints;
}

// ---- grouping -----------------------------------------------------------------------------

/** The report's failures grouped by cause; [] when nothing failed. */
export function findCauses(report: ConformanceReport): Cause[] {
  const failures = report.results.filter((r) => r.status === 'fail' && r.failure);
  const hashes = failures.map((r) => counterexampleHash(r.failure!.counterexample));
  const symptoms = joinDependents(failures.map(symptomOf));
  const groups = groupsOf(failures.length, (k) => [symptoms[k]!.key, hashes[k] && `cx:${hashes[k]}`]);
  const run: RunEvidence = {
    only64: onlyFloat64Fails(report),
    float32Example: rawGots(failures.filter((r) => dtypeOfFailure(r) === 'float64')).find(looksFloat32),
  };
  const causes = groups.map((idx) => {
    const rs = idx.map((k) => failures[k]!);
    // entries: one counterexample each (axis variants of one check, or a shared hash)
    const entries = groupsOf(idx.length, (j) => [`id:${withoutAxis(rs[j]!.id)}`, hashes[idx[j]!] && `cx:${hashes[idx[j]!]}`]).map((e): CauseEntry => {
      const checks = e.map((j) => rs[j]!.id);
      const axes = [...new Set(checks.map(axisOf).filter((a): a is string => a !== undefined))];
      const h = hashes[idx[e[0]!]!];
      return { checks, ...(axes.length > 1 ? { axes } : {}), ...(h ? { counterexample: h } : {}) };
    });
    const hints = hintsFor(rs, report, run);
    return { symptom: describeSymptoms(idx.map((k) => symptoms[k]!)), checks: rs.map((r) => r.id), entries, ...(hints.length ? { hints } : {}) };
  });
  // most checks first; ties in report order (the groups already are)
  return causes
    .map((c, k) => ({ c, k }))
    .sort((a, b) => b.c.checks.length - a.c.checks.length || a.k - b.k)
    .map(({ c }, k) => ({ id: k + 1, ...c }));
}

/** `bn:edge:m2 ×6, bn:agreement:forward-train ×2, bn:golden ×80`: a cause's checks, compactly. */
export function describeChecks(ids: string[], maxBases = 12): string {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(checkBase(id), (counts.get(checkBase(id)) ?? 0) + 1);
  const parts = [...counts].map(([base, n]) => (n > 1 ? `${base} ×${n}` : base));
  return parts.length > maxBases ? `${parts.slice(0, maxBases).join(', ')} and ${parts.length - maxBases} more` : parts.join(', ');
}

/** Check ID -> its cause's number, for the per-check listings. */
export function causeIndex(causes: Cause[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of causes) for (const id of c.checks) m.set(id, c.id);
  return m;
}

/**
 * Entries printed in full per cause: 3, fewer when there are many causes, so that a report
 * stays short (about a dozen detailed counterexamples at most; every one is in the JSON report).
 */
export const entriesPerCause = (causes: number) => (causes <= 4 ? 3 : causes <= 6 ? 2 : 1);

/**
 * The entries a report prints in full: up to `max`, one per check first (the first of each
 * check base, e.g. bn:edge:m2 before a second bn:edge:* of the same cause), then the rest in
 * order. The others are listed by ID (their details are in the JSON report).
 */
export function shownEntries(cause: Cause, max = 3): CauseEntry[] {
  const seen = new Set<string>();
  const first: CauseEntry[] = [];
  const rest: CauseEntry[] = [];
  for (const e of cause.entries) {
    const base = checkBase(e.checks[0]!);
    if (seen.has(base)) rest.push(e);
    else (seen.add(base), first.push(e));
  }
  const picked = new Set([...first, ...rest].slice(0, max));
  return cause.entries.filter((e) => picked.has(e));
}

/** The inconclusive fraction of a check's comparisons, when non-zero: `3 of 120 values (2.5%)`. */
export function inconclusiveFraction(r: CheckResult): string | undefined {
  const c = r.comparisons;
  if (!c || !(c.inconclusive > 0)) return undefined;
  const pct = c.values > 0 ? (100 * c.inconclusive) / c.values : 100;
  return `${c.inconclusive} of ${c.values} values (${pct >= 10 || pct === 0 ? pct.toFixed(0) : pct.toPrecision(2)}%)`;
}

/**
 * The verdict word: INTERRUPTED (a run stopped early proves nothing either way), FAIL,
 * INCONCLUSIVE (nothing failed, but a check proved nothing and the run did not allow it), PASS.
 */
export function verdictOf(report: ConformanceReport): 'PASS' | 'FAIL' | 'INCONCLUSIVE' | 'INTERRUPTED' {
  const s = report.summary;
  if (report.interrupted) return 'INTERRUPTED';
  if (s.failed > 0) return 'FAIL';
  if ((s.inconclusive ?? 0) > 0 && !report.options.allowInconclusive) return 'INCONCLUSIVE';
  return report.ok ? 'PASS' : 'FAIL';
}
