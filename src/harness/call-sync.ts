/**
 * The guarded call for the synchronized ops (forwardTrainSync, backwardSync): the one guardedCall
 * of src/harness/call.ts (watchdog for the synchronous part, time limit, restart budget, inputs
 * checked byte for byte, every shard included), then the nested result validated: an object, `replicas` an array with
 * one entry per shard in replica order, each output present, of its dtype (y, dx: dtype; the
 * statistics and parameter gradients: paramDtype) and its length (a replica's y / dx: its
 * shard's numel; the rest: C). The input snapshot and the result copy are guard.ts's (shards and
 * replicas included), so an implementation may reuse its output buffers between calls. Kept apart from call.ts so each door's additions merge cleanly.
 */
import type { AnySyncRequest, Arr, BatchNormImplementation, SyncOp } from '../contract/contract.js';
import { SYNC_OPS } from '../contract/contract.js';
import { shardLayout, typedArrayClassFor } from '../contract/layout-sync.js';
import { ContractFault, guardedCall, type CallOptions } from './call.js';

/** Per replica, then global, outputs of each synchronized op. */
export const SYNC_OUTPUTS: Record<SyncOp, { replica: readonly string[]; global: readonly string[] }> = {
  forwardTrainSync: { replica: ['y', 'runningMean', 'runningVar'], global: ['mean', 'variance'] },
  backwardSync: { replica: ['dx'], global: ['dgamma', 'dbeta'] },
};

const perElement = (name: string) => name === 'y' || name === 'dx';

export interface SyncResultArrays {
  replicas: Array<Record<string, Arr>>;
  [output: string]: Arr | Array<Record<string, Arr>>;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a plain Array(${v.length})`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  return typeof v;
}

function validateArray(op: SyncOp, where: string, v: unknown, dtype: string, length: number): Arr {
  const ctor = typedArrayClassFor(dtype) as (new (n: number) => ArrayBufferView) | undefined;
  if (v === undefined) throw new ContractFault('missing-output', `${op} result has no ${where}`);
  if (!ArrayBuffer.isView(v) || v instanceof DataView) throw new ContractFault('not-a-typed-array', `${op} result ${where} is ${describeValue(v)}, expected ${ctor?.name ?? dtype}`);
  if (!ctor || !(v instanceof ctor)) throw new ContractFault('wrong-dtype', `${op} result ${where} is ${v.constructor.name}, expected ${ctor?.name ?? dtype} (${dtype})`);
  const n = (v as unknown as ArrayLike<number>).length;
  if (n !== length) throw new ContractFault('wrong-length', `${op} result ${where} has length ${n}, expected ${length}`);
  return v as unknown as Arr;
}

/** Validate (and copy) a synchronized op's result; throws a ContractFault naming what is wrong. */
export function validateSyncResult(op: SyncOp, req: AnySyncRequest, result: unknown): SyncResultArrays {
  if (typeof result !== 'object' || result === null) throw new ContractFault('not-an-object', `${op} returned ${describeValue(result)}, expected an object`);
  const r = result as Record<string, unknown>;
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
      const v = (rep as Record<string, unknown>)[name];
      out[name] = validateArray(op, `replicas[${k}].${name}`, v, perElement(name) ? req.dtype : req.paramDtype, perElement(name) ? layouts[k]!.numel : C);
    }
    return out;
  });
  const validated: SyncResultArrays = { replicas };
  for (const name of outputs.global) validated[name] = validateArray(op, `"${name}"`, r[name], req.paramDtype, C);
  return validated;
}

/**
 * Call `impl[op](req)` for a synchronized op through the same guardedCall as every other op
 * (watchdog, time limit, restart budget, input check, result copy): the same rules and faults as
 * callImplementation; only the result's validation is the synchronized one.
 */
export async function callSyncImplementation(impl: BatchNormImplementation, op: SyncOp, req: AnySyncRequest, opts: CallOptions): Promise<SyncResultArrays> {
  const fn = impl[op] as ((r: AnySyncRequest) => unknown) | undefined;
  if (typeof fn !== 'function') throw new ContractFault('missing-output', `${op} is not implemented`);
  return validateSyncResult(op, req, await guardedCall(fn, impl, op, req, opts));
}

export function supportedSyncOps(impl: BatchNormImplementation): SyncOp[] {
  return SYNC_OPS.filter((op) => typeof impl[op] === 'function');
}
