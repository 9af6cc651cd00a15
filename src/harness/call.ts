/**
 * Calling an implementation under the contract's rules: every call is timed out, its inputs are
 * checked byte for byte afterwards, and its result is validated (object, every output present,
 * the declared dtype, the right length). Each broken rule is a named fault.
 */
import type { AnyOp, AnyRequest, AnySyncRequest, Arr, BatchNormImplementation, DType, FamilyOp, FamilyRequest, Op, Precision, SyncOp } from '../contract/contract.js';
import { FAMILY_OPS, SYNC_OPS } from '../contract/contract.js';
import { shardLayout } from '../contract/layout-sync.js';
import { fieldDtype, storageOf, toContractRequest, toNumbers } from '../contract/dtypes.js';
import vm from 'node:vm';
import { layoutOf } from '../contract/layout.js';
import { FAMILY, groupingFor, isFamilyOp, outputLength as groupedLength } from '../contract/grouping.js';
import { inputChanges, ownResult, snapshotInputs } from './guard.js';
import { DEFAULT_MAX_RESTARTS, RestartBudget } from './restarts.js';

/** Faults of the contract's rules, checked on every call. */
export type CallFault =
  | 'threw'
  | 'rejected'
  | 'timeout'
  | 'input-mutated'
  | 'not-an-object'
  | 'missing-output'
  | 'not-a-typed-array'
  | 'wrong-dtype'
  | 'wrong-length';

/** Faults of the --exec door's wire (src/harness/exec.ts). */
export type ExecFaultName =
  | 'exec-died'
  | 'exec-stdout-closed'
  | 'exec-bad-json'
  | 'exec-wrong-id'
  | 'exec-line-too-long'
  | 'exec-bad-array'
  | 'exec-timeout'
  | 'exec-gave-up';

/** Faults of the worker that isolates a module (src/harness/isolate.ts). */
export type IsolationFaultName = 'worker-died' | 'worker-gave-up' | 'not-cloneable';

/** The in-process door's give-up (src/harness/restarts.ts): too many calls timed out. */
export type InProcessFaultName = 'in-process-gave-up';

/** Faults of the browser door (src/harness/browser/door.ts); a call past its limit is 'timeout'. */
export type BrowserFaultName =
  | 'browser-crashed'
  | 'browser-navigated'
  | 'browser-uncaught-error'
  | 'browser-console-error'
  | 'browser-bad-result'
  | 'browser-gave-up';

export type Fault = CallFault | ExecFaultName | IsolationFaultName | InProcessFaultName | BrowserFaultName;

/** A contract violation by the implementation (not a numerical disagreement). */
export class ContractFault extends Error {
  constructor(
    readonly fault: Fault,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(`${fault}: ${message}`);
    this.name = 'ContractFault';
  }
}

export const OUTPUTS: Record<Op, readonly string[]> = {
  forwardTrain: ['y', 'mean', 'variance', 'runningMean', 'runningVar'],
  forwardInfer: ['y'],
  backward: ['dx', 'dgamma', 'dbeta'],
};

function outputLength(op: Op | FamilyOp, output: string, req: AnyRequest | FamilyRequest): number {
  // the family's outputs: per element, per statistics group or per parameter of the op's grouping
  if (isFamilyOp(op)) return groupedLength(groupingFor(op, req as FamilyRequest & { groups?: number }), output);
  const L = layoutOf(req.shape, req.axis);
  return output === 'y' || output === 'dx' ? L.numel : L.channels;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a plain Array(${v.length})`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  return typeof v;
}

const asPrecision = (p: DType | Precision): Precision => (typeof p === 'string' ? { dtype: p, paramDtype: p } : p);

/**
 * Validate a result: an object with every output, each a typed array of its dtype (y, dx: the
 * request's dtype; the per-channel outputs: its paramDtype; half dtypes as Uint16Array) and the
 * right length. Half outputs come back decoded to float64 numbers, so checks read numbers only.
 * The family's optional outputs (mean, invStdDev) are held to the same rules when present
 * (undefined is absent).
 */
export function validateResult(op: Op | FamilyOp, req: AnyRequest | FamilyRequest, precision: DType | Precision, result: unknown): Record<string, Arr> {
  if (typeof result !== 'object' || result === null) throw new ContractFault('not-an-object', `${op} returned ${describeValue(result)}, expected an object`);
  const p = asPrecision(precision);
  const r = result as Record<string, unknown>;
  const out: Record<string, Arr> = { ...(r as Record<string, Arr>) };
  const required = isFamilyOp(op) ? FAMILY[op].outputs : OUTPUTS[op];
  const optional = isFamilyOp(op) ? FAMILY[op].optionalOutputs : [];
  for (const name of [...required, ...optional.filter((o) => r[o] !== undefined)]) {
    out[name] = validateOutput(op, `"${name}"`, name, r[name], p, outputLength(op, name, req));
  }
  return out;
}

/**
 * One output of any op, plain or synchronized: present, a typed array of its field's dtype
 * (y, dx: dtype; the rest: paramDtype; half as Uint16Array bit patterns) and of `length`; half
 * outputs decoded to float64 numbers. `where` names it in the fault ("mean", replicas[2].y).
 */
function validateOutput(op: AnyOp, where: string, name: string, v: unknown, p: Precision, length: number): Arr {
  const dtype = fieldDtype(name, p);
  const ctor = storageOf(dtype);
  const what = `${ctor.name}${ctor === Uint16Array ? ` of ${dtype} bit patterns` : ''}`;
  if (v === undefined) throw new ContractFault('missing-output', `${op} result has no ${where}`);
  if (!(v instanceof Float32Array || v instanceof Float64Array || v instanceof Uint16Array)) {
    throw new ContractFault('not-a-typed-array', `${op} result ${where} is ${describeValue(v)}, expected ${what}`);
  }
  if (!(v instanceof ctor)) throw new ContractFault('wrong-dtype', `${op} result ${where} is ${v.constructor.name}, expected ${what} (the request's ${name === 'y' || name === 'dx' ? 'dtype' : 'paramDtype'})`);
  if (v.length !== length) throw new ContractFault('wrong-length', `${op} result ${where} has length ${v.length}, expected ${length}`);
  return v instanceof Uint16Array ? toNumbers(v, dtype) : v;
}

/** Per replica, then global, outputs of each synchronized op. */
export const SYNC_OUTPUTS: Record<SyncOp, { replica: readonly string[]; global: readonly string[] }> = {
  forwardTrainSync: { replica: ['y', 'runningMean', 'runningVar'], global: ['mean', 'variance'] },
  backwardSync: { replica: ['dx'], global: ['dgamma', 'dbeta'] },
};

export interface SyncResultArrays {
  replicas: Array<Record<string, Arr>>;
  [output: string]: Arr | Array<Record<string, Arr>>;
}

/**
 * Validate a synchronized op's result: an object, `replicas` an array with one entry per shard in
 * replica order, each output present, of its dtype and length (a replica's y / dx: its shard's
 * numel; the rest: C), by the same validateOutput as every other op.
 */
export function validateSyncResult(op: SyncOp, req: AnySyncRequest, result: unknown): SyncResultArrays {
  if (typeof result !== 'object' || result === null) throw new ContractFault('not-an-object', `${op} returned ${describeValue(result)}, expected an object`);
  const r = result as Record<string, unknown>;
  const p: Precision = { dtype: req.dtype, paramDtype: req.paramDtype };
  const layouts = req.shards.map((s, k) => shardLayout(s.shape, req.axis, `shards[${k}]`));
  const C = layouts[0]!.channels;
  const reps = r.replicas;
  if (reps === undefined) throw new ContractFault('missing-output', `${op} result has no "replicas"`);
  if (!Array.isArray(reps)) throw new ContractFault('not-an-object', `${op} result "replicas" is ${describeValue(reps)}, expected an array with one entry per replica`);
  if (reps.length !== req.shards.length) {
    throw new ContractFault('wrong-length', `${op} result "replicas" has ${reps.length} entries, expected ${req.shards.length} (one per shard, in replica order)`);
  }
  const outputs = SYNC_OUTPUTS[op];
  const replicas = reps.map((rep: unknown, k) => {
    if (typeof rep !== 'object' || rep === null) throw new ContractFault('not-an-object', `${op} result replicas[${k}] is ${describeValue(rep)}, expected an object`);
    const out: Record<string, Arr> = {};
    for (const name of outputs.replica) {
      const length = name === 'y' || name === 'dx' ? layouts[k]!.numel : C;
      out[name] = validateOutput(op, `replicas[${k}].${name}`, name, (rep as Record<string, unknown>)[name], p, length);
    }
    return out;
  });
  const validated: SyncResultArrays = { replicas };
  for (const name of outputs.global) validated[name] = validateOutput(op, `"${name}"`, name, r[name], p, C);
  return validated;
}

export interface CallOptions {
  timeoutMs: number;
  /**
   * The give-up rule for an object called in process (runConformance makes one per run): each
   * timed-out call leaves the object in an unknown state and counts as a restart; past the
   * limit, calls fail at once with 'in-process-gave-up'. Absent for the proxies of the worker
   * and --exec doors, which apply the same rule to their own process.
   */
  budget?: RestartBudget;
}

/** Budgets with a pending restart: a call timed out, the next call spends it. */
const needsRestart = new WeakSet<RestartBudget>();

/** The in-process door's budget for one run: DEFAULT_MAX_RESTARTS timed-out calls, then in-process-gave-up. */
export function inProcessBudget(): RestartBudget {
  return new RestartBudget('in-process implementation', DEFAULT_MAX_RESTARTS, (m) => new ContractFault('in-process-gave-up', m), 'continued with');
}

/** A timeout fault, noted in the budget so the next call counts a restart. */
function timedOut(budget: RestartBudget | undefined, message: string): ContractFault {
  const f = new ContractFault('timeout', message);
  if (budget) {
    budget.note(f.message);
    needsRestart.add(budget);
  }
  return f;
}

/**
 * The in-process watchdog: an op's synchronous part runs as `fn.call(self, req)` inside a vm
 * script with `timeout`, so V8 interrupts a synchronous busy loop (JavaScript or WebAssembly) in
 * the implementation's own module when the limit passes, and the call fails with fault
 * 'timeout' instead of hanging the run. Verified (spec/harness/watchdog.spec.ts): the loop is
 * stopped even though the function was defined outside the context; the interruption cannot be
 * caught by the implementation and its `finally` blocks do not run, so its own state may be left
 * half-updated (the report says so). Not covered: code that runs after an `await` (a continuation
 * runs from the microtask queue, outside any vm call) and native code (a native addon, a GL
 * driver) until it returns to JavaScript; the isolation worker (a module path) covers those.
 */
const WATCHDOG = new vm.Script('fn.call(self, req)', { filename: 'bn-conformance-watchdog.js' });
const watchdogContext = vm.createContext(Object.create(null) as Record<string, unknown>);

function runWatched(fn: (r: never) => unknown, self: unknown, req: object, timeoutMs: number): unknown {
  const c = watchdogContext as Record<string, unknown>;
  const saved = [c.fn, c.self, c.req]; // a kernel that calls another guarded kernel re-enters
  c.fn = fn;
  c.self = self;
  c.req = req;
  try {
    return WATCHDOG.runInContext(watchdogContext, { timeout: Math.max(1, Math.ceil(timeoutMs)) });
  } finally {
    [c.fn, c.self, c.req] = saved;
  }
}

const isWatchdogTimeout = (e: unknown) => typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';

/**
 * The one guarded call behind every op, plain and synchronized (callImplementation here,
 * callSyncImplementation below): the budget's pending restart spent (or
 * in-process-gave-up), the inputs snapshotted, `fn.call(self, req)` run under the watchdog, a
 * returned promise raced against what is left of the time limit, the inputs compared afterwards
 * (input-mutated outranks every other outcome), and the result copied (guard.ts ownResult).
 * Resolves with that copy, not yet validated: each op's caller validates its own result shape.
 */
export async function guardedCall(fn: (r: never) => unknown, self: unknown, op: AnyOp, req: object, opts: CallOptions): Promise<unknown> {
  const budget = opts.budget;
  if (budget && needsRestart.has(budget)) {
    // the last call timed out: this one goes on with the same object (nothing can be reloaded)
    budget.restart(); // in-process-gave-up past the limit, and from then on for every call
    needsRestart.delete(budget);
  }
  const before = snapshotInputs(req);
  let result: unknown;
  let timer: NodeJS.Timeout | undefined;
  const t0 = Date.now();
  try {
    let pending: unknown;
    try {
      pending = runWatched(fn, self, req, opts.timeoutMs);
    } catch (e) {
      // (a kernel's own vm timeout, far shorter than ours, stays its own error)
      if (isWatchdogTimeout(e) && Date.now() - t0 >= 0.9 * opts.timeoutMs) {
        throw timedOut(
          budget,
          `${op} ran synchronously past ${opts.timeoutMs} ms (a busy loop?) and was interrupted; its finally blocks did not run, so its state may be inconsistent for later calls`,
        );
      }
      throw new ContractFault('threw', `${op} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, e);
    }
    if (pending && typeof (pending as Promise<unknown>).then === 'function') {
      const left = Math.max(1, opts.timeoutMs - (Date.now() - t0));
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut(budget, `${op} did not settle within ${opts.timeoutMs} ms`)), left);
      });
      try {
        result = await Promise.race([pending as Promise<unknown>, timeout]);
      } catch (e) {
        if (e instanceof ContractFault) throw e;
        throw new ContractFault('rejected', `${op} rejected with ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, e);
      }
    } else result = pending;
  } finally {
    if (timer) clearTimeout(timer);
    const changed = inputChanges(req, before);
    // A mutation outranks whatever else happened: the user's data was changed.
    if (changed.length) throw new ContractFault('input-mutated', `${op} modified its input ${changed.join(', ')}`);
  }
  // copied before anything reads it: the implementation keeps its buffers, the harness its result
  return ownResult(result);
}

/**
 * Call `impl[op](req)`, `req` given as numbers and sent in `precision` (src/contract/dtypes.ts
 * toContractRequest: half arrays as bit patterns, dtype and paramDtype named; a float32 or
 * float64 request travels as it is), through guardedCall. Resolves with the validated result,
 * which the harness owns (every array copied: the implementation may reuse its buffers
 * afterwards; half outputs decoded); rejects with a ContractFault for any broken rule; an error
 * the implementation throws on purpose comes back as fault 'threw' or 'rejected' with the
 * original error as `cause`.
 */
export async function callImplementation(
  impl: BatchNormImplementation,
  op: Op | FamilyOp,
  numericReq: AnyRequest | FamilyRequest,
  precision: DType | Precision,
  opts: CallOptions,
): Promise<Record<string, Arr>> {
  const fn = impl[op] as ((r: AnyRequest | FamilyRequest) => unknown) | undefined;
  const dtype = asPrecision(precision);
  // the request in the implementation's dtypes (half as bit patterns), dtype and paramDtype named
  const req = toContractRequest(numericReq, dtype);
  if (typeof fn !== 'function') throw new ContractFault('missing-output', `${op} is not implemented`);
  return validateResult(op, req, dtype, await guardedCall(fn, impl, op, req, opts));
}

export function supportedOps(impl: BatchNormImplementation): Op[] {
  return (['forwardTrain', 'forwardInfer', 'backward'] as Op[]).filter((op) => typeof impl[op] === 'function');
}

/**
 * Call `impl[op](req)` for a synchronized op through the same guardedCall as every other op
 * (watchdog, time limit, restart budget, input check, result copy); its result validated by
 * validateSyncResult.
 */
export async function callSyncImplementation(impl: BatchNormImplementation, op: SyncOp, req: AnySyncRequest, opts: CallOptions): Promise<SyncResultArrays> {
  const fn = impl[op] as ((r: AnySyncRequest) => unknown) | undefined;
  if (typeof fn !== 'function') throw new ContractFault('missing-output', `${op} is not implemented`);
  return validateSyncResult(op, req, await guardedCall(fn, impl, op, req, opts));
}

export function supportedSyncOps(impl: BatchNormImplementation): SyncOp[] {
  return SYNC_OPS.filter((op) => typeof impl[op] === 'function');
}

/** The normalization family's ops the implementation defines (0.3.0; called through callImplementation like BN's). */
export function supportedFamilyOps(impl: BatchNormImplementation): FamilyOp[] {
  return FAMILY_OPS.filter((op) => typeof impl[op] === 'function');
}
