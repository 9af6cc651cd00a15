/**
 * Calling an implementation under the contract's rules: every call is timed out, its inputs are
 * checked byte for byte afterwards, and its result is validated (object, every output present,
 * the declared dtype, the right length). Each broken rule is a named fault.
 */
import type { AnyRequest, Arr, BatchNormImplementation, DType, Op } from '../contract.js';
import { layoutOf } from '../layout.js';

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

/** Faults of the browser door (src/harness/browser/door.ts); a call past its limit is 'timeout'. */
export type BrowserFaultName =
  | 'browser-crashed'
  | 'browser-navigated'
  | 'browser-uncaught-error'
  | 'browser-console-error'
  | 'browser-bad-result'
  | 'browser-gave-up';

export type Fault = CallFault | ExecFaultName | IsolationFaultName | BrowserFaultName;

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

function outputLength(output: string, req: AnyRequest): number {
  const L = layoutOf(req.shape, req.axis);
  return output === 'y' || output === 'dx' ? L.numel : L.channels;
}

function snapshot(req: AnyRequest): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  for (const [k, v] of Object.entries(req)) {
    if (ArrayBuffer.isView(v)) out.push([k, new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))]);
  }
  out.push(['shape', new Uint8Array(Float64Array.from(req.shape).buffer)]);
  return out;
}

function mutated(req: AnyRequest, before: Array<[string, Uint8Array]>): string | undefined {
  for (const [k, bytes] of before) {
    const v = k === 'shape' ? Float64Array.from(req.shape) : (req as unknown as Record<string, ArrayBufferView>)[k];
    if (!v) return k;
    const now = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (now.length !== bytes.length) return k;
    for (let i = 0; i < now.length; i++) if (now[i] !== bytes[i]) return `${k} (byte ${i})`;
  }
  return undefined;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a plain Array(${v.length})`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  return typeof v;
}

export function validateResult(op: Op, req: AnyRequest, dtype: DType, result: unknown): Record<string, Arr> {
  if (typeof result !== 'object' || result === null) throw new ContractFault('not-an-object', `${op} returned ${describeValue(result)}, expected an object`);
  const r = result as Record<string, unknown>;
  const ctor = dtype === 'float32' ? Float32Array : Float64Array;
  for (const name of OUTPUTS[op]) {
    const v = r[name];
    if (v === undefined) throw new ContractFault('missing-output', `${op} result has no "${name}"`);
    if (!(v instanceof Float32Array || v instanceof Float64Array)) {
      throw new ContractFault('not-a-typed-array', `${op} result "${name}" is ${describeValue(v)}, expected ${ctor.name}`);
    }
    if (!(v instanceof ctor)) throw new ContractFault('wrong-dtype', `${op} result "${name}" is ${v.constructor.name}, expected ${ctor.name} (the request's dtype)`);
    const n = outputLength(name, req);
    if (v.length !== n) throw new ContractFault('wrong-length', `${op} result "${name}" has length ${v.length}, expected ${n}`);
  }
  return r as Record<string, Arr>;
}

export interface CallOptions {
  timeoutMs: number;
}

/**
 * Call `impl[op](req)`. Resolves with the validated result; rejects with a ContractFault for any
 * broken rule; an error the implementation throws on purpose comes back as fault 'threw' or
 * 'rejected' with the original error as `cause`.
 */
export async function callImplementation(
  impl: BatchNormImplementation,
  op: Op,
  req: AnyRequest,
  dtype: DType,
  opts: CallOptions,
): Promise<Record<string, Arr>> {
  const fn = impl[op] as ((r: AnyRequest) => unknown) | undefined;
  if (typeof fn !== 'function') throw new ContractFault('missing-output', `${op} is not implemented`);
  const before = snapshot(req);
  let result: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    let pending: unknown;
    try {
      pending = fn.call(impl, req);
    } catch (e) {
      throw new ContractFault('threw', `${op} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, e);
    }
    if (pending && typeof (pending as Promise<unknown>).then === 'function') {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ContractFault('timeout', `${op} did not settle within ${opts.timeoutMs} ms`)), opts.timeoutMs);
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
    const which = mutated(req, before);
    // A mutation outranks whatever else happened: the user's data was changed.
    if (which) throw new ContractFault('input-mutated', `${op} modified its input ${which}`);
  }
  return validateResult(op, req, dtype, result);
}

export function supportedOps(impl: BatchNormImplementation): Op[] {
  return (['forwardTrain', 'forwardInfer', 'backward'] as Op[]).filter((op) => typeof impl[op] === 'function');
}
