/**
 * The conformance report: what `runConformance` returns and what `--format json` writes.
 * The schema is documented in docs/report-schema.md; bump REPORT_SCHEMA_VERSION on any
 * incompatible change.
 */
import type { ElementReport } from '../judge/compare.js';
import type { AccumulationInfo, AnyOp, DType, Profile } from '../contract/contract.js';
import type { Cause } from './causes.js';

export const REPORT_SCHEMA_VERSION = 1;

/**
 * 'inconclusive' (added in 0.3.0): the check ran, nothing failed, but none of the values it compared
 * had an informative bound (every bound was Infinity or no smaller than the value's own scale), so
 * it proved nothing; the run is not ok unless the user allows it (--allow-inconclusive).
 */
export type CheckStatus = 'pass' | 'fail' | 'inconclusive' | 'not-supported' | 'skipped';

/** Values compared and how many could not be bounded (src/judge/tally.ts); added in 0.3.0. */
export type { ComparisonCounts } from '../judge/tally.js';
import type { ComparisonCounts } from '../judge/tally.js';

/** Which channel axis a case exercises: 1, rank - 1, or any axis (including 0 and middle ones). */
export type AxisVariant = 'first' | 'last' | 'other';

export interface WorstElement extends ElementReport {
  /** The element's position as named indices, e.g. y[n=1,c=3,h=0,w=2]. */
  where: string;
}

export interface Counterexample {
  /** The op called, and the shrunk request (arrays as plain number lists). */
  op?: AnyOp;
  shape?: number[];
  axis?: number;
  dtype?: DType;
  /** Mixed precision only: the per-channel arrays' dtype. */
  paramDtype?: DType;
  request?: Record<string, unknown>;
  /**
   * Every request the case sent, in order, when it sent more than one (a two-call check shows
   * both; `op`/`request` above are the last of them). Added in 0.2.0.
   */
  requests?: Array<{ op: AnyOp; request: Record<string, unknown> }>;
  /** Free-form, for checks whose counterexample is a sequence (running statistics). */
  script?: string;
}

export interface CheckFailure {
  message: string;
  /** The named fault, for contract violations: threw, rejected, timeout, wrong-dtype, … */
  fault?: string;
  worst?: WorstElement;
  /** Why the bound is what it is (from the tolerance function). */
  boundReason?: string;
  counterexample?: Counterexample;
  /** fast-check replay coordinates. */
  seed?: number;
  path?: string;
  numShrinks?: number;
  /** A paste-ready command that replays only this failure. */
  replay?: string;
}

export interface CheckResult {
  id: string;
  family: string;
  title: string;
  status: CheckStatus;
  /** For not-supported and skipped: why. */
  reason?: string;
  durationMs: number;
  numRuns?: number;
  /** The check's own seed (derived from the run's seed and the ID). */
  seed?: number;
  failure?: CheckFailure;
  /** Values compared and how many of them could not be bounded (absent: the check compares no values, e.g. a refusal). */
  comparisons?: ComparisonCounts;
}

/**
 * Per declared dtype, the accumulation every bound of the run was derived from (added in 0.2.0;
 * schema version 1 unchanged, the field is new): the declared AccumulationInfo, or the
 * assumption (sequential sums in the dtype) with `declared: false`.
 */
export type AccumulationRecord = Partial<Record<DType, AccumulationInfo & { declared: boolean; description: string }>>;

/**
 * How much of the golden family a run covers (added in 0.3.0): the fixtures whose profile
 * semantics, dtype and axis apply, counted before --only / --skip / --shard, per source
 * directory (tensorflow, tfjs, keras-sync, pytorch, onnx). `note` says why when none applies.
 */
export interface GoldenCoverage {
  fixtures: number;
  sources: Record<string, number>;
  note?: string;
}

export interface ConformanceReport {
  schemaVersion: number;
  tool: { name: 'bn-conformance'; version: string };
  implementation: { name: string; dtypes: DType[]; axes: string; ops: AnyOp[]; accumulation?: AccumulationRecord };
  profile: Profile;
  options: { runs: number; seed: number; only: string[]; skip: string[]; timeoutMs: number; shard?: string; allowInconclusive?: boolean };
  startedAt: string;
  durationMs: number;
  summary: { total: number; passed: number; failed: number; notSupported: number; skipped: number; inconclusive: number };
  /** The run stopped early (Ctrl-C, SIGTERM): results holds what finished (added in 0.3.0). */
  interrupted?: boolean;
  /** The golden fixtures that apply to this implementation and profile (added in 0.3.0; src/harness/runner.ts). */
  golden?: GoldenCoverage;
  ok: boolean;
  /** The failures grouped by cause, most checks first (added in 0.3.0; written by formatJson: src/harness/causes.ts). */
  causes?: Cause[];
  results: CheckResult[];
}
