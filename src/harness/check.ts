/**
 * What a check is, and the helpers every property family uses: a property over generated
 * problems (run with fast-check, shrunk, replayable by seed and path) or a list of named examples.
 * A failing predicate throws a Mismatch that carries the worst element and the bound's reason.
 */
import fc from 'fast-check';
import type { Comparison } from '../judge/compare.js';
import type { AnyOp, AnyRequest, AnySyncRequest, BatchNormImplementation, DType, Op, Profile, SyncOp } from '../contract/contract.js';
import { layoutOf } from '../contract/layout.js';
import { plainRequest } from '../arbitraries/problem.js';
import { callImplementation, callSyncImplementation, ContractFault, type SyncResultArrays } from './call.js';
import type { AxisVariant, CheckFailure, CheckResult, Counterexample, WorstElement } from './types.js';
import type { AccumulationInfo } from '../contract/contract.js';

export interface CheckContext {
  impl: BatchNormImplementation;
  profile: Profile;
  /** Activations' dtype (x, dy, y, dx). */
  dtype: DType;
  /** Per-channel arrays' dtype (gamma, beta, statistics, dgamma, dbeta); = dtype unless mixed. */
  paramDtype: DType;
  axis: AxisVariant;
  accumulation: AccumulationInfo;
  runs: number;
  seed: number;
  timeoutMs: number;
  /**
   * Replay coordinates, when replaying one failure: fast-check's path, and for a model-based
   * check (fc.commands) `;commands=` and the commands' replayPath (see replayCoordinates).
   */
  path?: string;
  /** The run's interruption (Ctrl-C, runConformance's `signal`): a property stops at once when it fires. */
  signal?: AbortSignal;
  /**
   * Call an op under the contract's rules (timeouts, mutation, validation). The request holds
   * numbers exactly representable in each field's dtype; the call sends them in (dtype,
   * paramDtype) and hands back numbers (half outputs decoded).
   */
  call<O extends Op>(op: O, req: AnyRequest): Promise<ResultOf[O]>;
  /**
   * The synchronized ops' guarded call (src/harness/call.ts callSyncImplementation), refusing an op the check does
   * not declare exactly like `call`. Optional so contexts built by hand (specs) still type-check;
   * a check falls back to the guarded call itself when it is absent.
   */
  callSync?(op: SyncOp, req: AnySyncRequest): Promise<SyncResultArrays>;
}

type A = Float32Array | Float64Array;
export interface ResultOf {
  forwardTrain: { y: A; mean: A; variance: A; runningMean: A; runningVar: A };
  forwardInfer: { y: A };
  backward: { dx: A; dgamma: A; dbeta: A };
}

export interface CheckDef {
  /** Stable ID: bn:<family>:<check>:dtype=…;axis=… */
  id: string;
  family: string;
  title: string;
  /** Ops the check requires; any absent one makes it "not supported". */
  needs: AnyOp[];
  /**
   * Ops the check also calls when the implementation has them (edge and hygiene cases run every
   * op present). ctx.call refuses any op in neither list with an InternalError.
   */
  uses?: AnyOp[];
  /** A reason to skip for this implementation, or undefined to run. */
  skip?(ctx: CheckContext): string | undefined;
  run(ctx: CheckContext): Promise<Omit<CheckResult, 'id' | 'family' | 'title' | 'durationMs'>>;
}

/** A numerical or semantic disagreement found by a check, with what a report needs. */
export class Mismatch extends Error {
  constructor(
    message: string,
    readonly details: { worst?: WorstElement; boundReason?: string; counterexample?: Counterexample; fault?: string } = {},
  ) {
    super(message);
    this.name = 'Mismatch';
  }
}

/** Name an element by its indices: y[d0=1,c=3,d2=0]. */
export function whereOf(output: string, index: number, shape: number[], axis: number): string {
  if (!(output === 'y' || output === 'dx')) return `${output}[c=${index}]`;
  const parts: string[] = [];
  let rest = index;
  const idx = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = rest % shape[k]!;
    rest = Math.floor(rest / shape[k]!);
  }
  idx.forEach((v, k) => parts.push(`${k === axis ? 'c' : `d${k}`}=${v}`));
  return `${output}[${parts.join(',')}]`;
}

/** Throw a Mismatch when a comparison failed, naming the worst element. */
export function expectAgreement(cmp: Comparison, req: AnyRequest, what: string): void {
  if (cmp.ok) return;
  const w = cmp.worst!;
  const worst: WorstElement = { ...w, where: whereOf(w.output, w.index, req.shape, req.axis) };
  throw new Mismatch(
    `${what}: ${worst.where} = ${w.got} but expected ${w.expected} (error ${fmt(w.error)} > allowed ${fmt(w.bound)})`,
    { worst, boundReason: cmp.reason },
  );
}

export const fmt = (v: number) => (Number.isFinite(v) ? v.toExponential(3) : String(v));

/** Stable 32-bit FNV-1a hash, to derive each check's seed from the run's seed and its ID. */
export function hashId(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function checkSeed(runSeed: number, id: string): number {
  return (runSeed ^ hashId(id)) | 0;
}

/** Turn whatever a predicate threw into the report's failure record. */
export function failureOf(err: unknown): CheckFailure {
  if (err instanceof Mismatch) {
    return {
      message: err.message,
      ...(err.details.fault ? { fault: err.details.fault } : {}),
      ...(err.details.worst ? { worst: err.details.worst } : {}),
      ...(err.details.boundReason ? { boundReason: err.details.boundReason } : {}),
      ...(err.details.counterexample ? { counterexample: err.details.counterexample } : {}),
    };
  }
  if (err instanceof ContractFault) return { message: err.message, fault: err.fault };
  if (err instanceof Error) return { message: `${err.name}: ${err.message}` };
  return { message: String(err) };
}

const isSyncRequest = (req: AnyRequest | AnySyncRequest): req is AnySyncRequest => Array.isArray((req as AnySyncRequest).shards);

/**
 * Records every request one run of a property (or one example) sent, plain and synchronized ops
 * alike, so the counterexample shows them all.
 */
export class Recorder {
  calls: Array<{ op: AnyOp; req: AnyRequest | AnySyncRequest }> = [];
  get last(): { op: AnyOp; req: AnyRequest | AnySyncRequest } | undefined {
    return this.calls.at(-1);
  }
  reset(): void {
    this.calls = [];
  }
  wrap(ctx: CheckContext): CheckContext {
    return {
      ...ctx,
      call: <O extends Op>(op: O, req: AnyRequest) => {
        this.calls.push({ op, req });
        return ctx.call(op, req);
      },
      // a hand-built context without callSync gets the guarded call itself, as the sync checks would
      callSync: (op: SyncOp, req: AnySyncRequest) => {
        this.calls.push({ op, req });
        return ctx.callSync ? ctx.callSync(op, req) : callSyncImplementation(ctx.impl, op, req, { timeoutMs: ctx.timeoutMs });
      },
    };
  }
  /** The counterexample of the recorded calls (by default this run's; a failing run's own list when given). */
  counterexample(dtype: DType, paramDtype: DType = dtype, calls = this.calls): Counterexample | undefined {
    const last = calls.at(-1);
    if (!last) return undefined;
    const { op, req } = last;
    const requests = calls.length > 1 ? { requests: calls.map((c) => ({ op: c.op, request: plainRequest(c.req) })) } : {};
    if (isSyncRequest(req)) {
      // the first shard's shape stands for the case's; the script names every shard
      return {
        op,
        axis: req.axis,
        dtype: req.dtype,
        ...(req.paramDtype !== req.dtype ? { paramDtype: req.paramDtype } : {}),
        ...(req.shards[0] ? { shape: req.shards[0].shape } : {}),
        request: plainRequest(req),
        ...requests,
        script: `${op} over ${req.shards.length} replica(s), shard shapes ${req.shards.map((s) => `[${s.shape.join(',')}]`).join(' ')}`,
      };
    }
    return {
      op,
      shape: req.shape,
      axis: req.axis,
      dtype,
      ...(paramDtype !== dtype ? { paramDtype } : {}),
      request: plainRequest(req),
      ...requests,
    };
  }
}

/**
 * Replay coordinates as printed after `--replay`: fast-check's path (digits and ':'), and for a
 * model-based check the commands' replayPath after `;commands=`. fast-check's path alone cannot
 * replay fc.commands: walking the shrink tree without running the property, the commands
 * arbitrary does not know which commands ran at each step (it shrinks only those), so it needs
 * the replayPath it recorded while shrinking (fc.commands(…, { replayPath })).
 */
export interface ReplayCoordinates {
  path: string;
  commands?: string;
}

const COMMANDS_MARK = ';commands=';

export function parseReplay(text: string): ReplayCoordinates {
  const at = text.indexOf(COMMANDS_MARK);
  if (at < 0) return { path: text };
  return { path: text.slice(0, at), commands: text.slice(at + COMMANDS_MARK.length) };
}

export function formatReplay(c: ReplayCoordinates): string {
  return c.commands !== undefined ? `${c.path}${COMMANDS_MARK}${c.commands}` : c.path;
}

/**
 * The constraints a model-based check passes to fc.commands so a printed failure replays:
 * `fc.commands(arbs, { maxCommands, ...commandsReplay(ctx) })`. Empty unless replaying.
 */
export function commandsReplay(ctx: Pick<CheckContext, 'path'>): { replayPath?: string } {
  const commands = ctx.path ? parseReplay(ctx.path).commands : undefined;
  return commands !== undefined ? { replayPath: commands } : {};
}

/**
 * The commands' replayPath in a counterexample, as fast-check prints it (CommandsIterable's
 * toString: `/*replayPath="…"*\/`); undefined when the value holds no commands. Only the commands
 * are printed (found by walking arrays and objects; lists of numbers, a problem's data, are not
 * walked, nor printed). One commands arbitrary per property (more would need one replayPath each).
 */
function commandsReplayPathOf(value: unknown, depth = 0): string | undefined {
  if (typeof value !== 'object' || value === null || depth > 4 || ArrayBuffer.isView(value)) return undefined;
  if (typeof (value as { metadataForReplay?: unknown }).metadataForReplay === 'function') {
    return /replayPath="([^"]*)"/.exec(String(value))?.[1];
  }
  const items = Array.isArray(value) ? value : Object.values(value);
  if (items.length > 64 && typeof items[0] === 'number') return undefined;
  for (const v of items) {
    const found = commandsReplayPathOf(v, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Faults after which a property stops (every later run passes at once, so shrinking ends):
 * - a call past its time limit: the implementation is left in an unknown state and each further
 *   call may cost the whole limit again; shrinking on would trade the input that timed out for
 *   one that merely failed after it (or whose call no longer times out), and the printed replay
 *   would then pass. The counterexample is the first input that timed out.
 * - a door's give-up: from then on every call fails at once whatever its input, so shrinking
 *   would walk down to the smallest input, which replays as a pass. The counterexample stays the
 *   last input that failed before it (or, when nothing had, the give-up itself).
 */
const TIMEOUT_FAULTS = new Set<string>(['timeout', 'exec-timeout']);
const GAVE_UP_FAULTS = new Set<string>(['in-process-gave-up', 'exec-gave-up', 'worker-gave-up', 'browser-gave-up']);

/** The named fault behind what a predicate threw: a ContractFault, or a Mismatch that carries one. */
function faultOf(e: unknown): string | undefined {
  if (e instanceof ContractFault) return e.fault;
  if (e instanceof Mismatch) return e.details.fault;
  return undefined;
}

/**
 * A property over `arb`: fast-check runs it `ctx.runs` times from the check's seed, shrinks a
 * failure, and the result carries seed and replay coordinates. The counterexample, its error
 * and its requests are those of the last failing run (fast-check's counterexample is always the
 * last value that failed), recorded as it failed: nothing is run again afterwards.
 */
export async function runProperty<T>(
  ctx: CheckContext,
  arb: fc.Arbitrary<T>,
  predicate: (value: T, ctx: CheckContext) => Promise<void>,
  runsOverride?: number,
): Promise<Omit<CheckResult, 'id' | 'family' | 'title' | 'durationMs'>> {
  const recorder = new Recorder();
  const inner = recorder.wrap(ctx);
  let failed: { error: unknown; calls: Recorder['calls'] } | undefined;
  /** Set by a timeout, a give-up or the run's interruption: every later run passes at once. */
  let stopped = false;
  const prop = fc.asyncProperty(arb, async (v) => {
    if (stopped || ctx.signal?.aborted) return;
    recorder.reset();
    try {
      await predicate(v, inner);
    } catch (e) {
      const fault = faultOf(e);
      if (fault && GAVE_UP_FAULTS.has(fault)) {
        stopped = true;
        if (failed) return; // the earlier failure stays the counterexample
      } else if (fault && TIMEOUT_FAULTS.has(fault)) stopped = true;
      failed = { error: e, calls: recorder.calls };
      throw e;
    }
  });
  const numRuns = runsOverride ?? ctx.runs;
  const replay = ctx.path ? parseReplay(ctx.path) : undefined;
  const details = await fc.check(prop, {
    seed: ctx.seed,
    numRuns,
    ...(replay ? { path: replay.path, endOnFailure: true } : {}),
  });
  if (!details.failed) return { status: 'pass', numRuns: details.numRuns, seed: ctx.seed };
  const failure = failureOf(failed?.error ?? details.errorInstance);
  const cx = failure.counterexample ?? recorder.counterexample(ctx.dtype, ctx.paramDtype, failed?.calls ?? []);
  const path = details.counterexamplePath ?? undefined;
  const commands = details.counterexample ? commandsReplayPathOf(details.counterexample) : undefined;
  return {
    status: 'fail',
    numRuns: details.numRuns,
    seed: ctx.seed,
    failure: {
      ...failure,
      ...(cx ? { counterexample: cx } : {}),
      seed: details.seed,
      path: path !== undefined ? formatReplay({ path, ...(commands !== undefined ? { commands } : {}) }) : undefined,
      numShrinks: details.numShrinks,
    } as CheckFailure,
  };
}

/** A fixed list of named examples; the first failure is reported with its name. */
export async function runExamples<T extends { name: string }>(
  ctx: CheckContext,
  examples: T[],
  predicate: (example: T, ctx: CheckContext) => Promise<void>,
): Promise<Omit<CheckResult, 'id' | 'family' | 'title' | 'durationMs'>> {
  const recorder = new Recorder();
  const inner = recorder.wrap(ctx);
  for (const ex of examples) {
    recorder.reset();
    try {
      await predicate(ex, inner);
    } catch (e) {
      const failure = failureOf(e);
      const cx = failure.counterexample ?? recorder.counterexample(ctx.dtype, ctx.paramDtype);
      return {
        status: 'fail',
        numRuns: examples.length,
        failure: { ...failure, message: `[${ex.name}] ${failure.message}`, ...(cx ? { counterexample: cx } : {}) },
      };
    }
  }
  return { status: 'pass', numRuns: examples.length };
}

/**
 * The ID suffix shared by every case: dtype (and paramDtype when it differs: mixed precision) and
 * axis variant. Same-dtype IDs are unchanged from 0.1: dtype=float32;axis=first.
 */
export const caseSuffix = (dtype: DType, axis: AxisVariant, paramDtype: DType = dtype) =>
  paramDtype === dtype ? `dtype=${dtype};axis=${axis}` : `dtype=${dtype};params=${paramDtype};axis=${axis}`;

/** Whether the implementation's declared axes cover a variant. */
export function axisSupported(impl: BatchNormImplementation, variant: AxisVariant): boolean {
  const axes = impl.axes ?? 'any';
  if (axes === 'any') return true;
  return axes === variant;
}

export function channelCount(req: AnyRequest): number {
  return layoutOf(req.shape, req.axis).channels;
}

export { callImplementation };
