/**
 * The contract's ownership rules, in one place for every door (in-process call, isolation worker;
 * the --exec child gets its own copies on the wire and cannot touch ours):
 *
 * - Inputs are never the implementation's to modify: `snapshotInputs` before a call and
 *   `inputChanges` after it name every array whose bytes changed and every other field (shape,
 *   eps, momentum, ...) whose value changed; for the synchronized ops, every shard's too.
 * - Outputs become the harness's when a call returns: `ownResult` copies every typed array of the
 *   result (a synchronized result's per-replica objects too), so an implementation may reuse its output buffers on the next call (common in
 *   optimized kernels) and a two-call check compares two results, not one buffer with itself.
 *
 * `snapshotInputs` and `inputChanges` are self-contained on purpose (no imports, nothing outside
 * their own bodies): the isolation worker is plain JS evaluated from a string, and it embeds these two
 * functions' source text (`Function.prototype.toString`), so the worker runs this very code.
 */

/**
 * What a request looked like before a call: the bytes of each typed array, and every other field
 * (shape, axis, eps, momentum, training, dtype, ...) as JSON; for synchronized requests the same
 * per shard (keys `shards[r].<name>`) and the shard count. A changed scalar matters as much as a
 * changed array: the judge computes its expectation from the request after the call.
 */
export interface InputSnapshot {
  arrays: Record<string, Uint8Array>;
  fields: Record<string, string>;
}

export function snapshotInputs(req: object): InputSnapshot {
  const arrays: Record<string, Uint8Array> = {};
  const fields: Record<string, string> = {};
  const r = req as Record<string, unknown>;
  const shards = Array.isArray(r.shards) ? (r.shards as unknown[]) : undefined;
  const objects: Array<[string, Record<string, unknown>]> = [['', r]];
  if (shards) {
    fields['shards.length'] = String(shards.length);
    for (let i = 0; i < shards.length; i++) objects.push([`shards[${i}].`, (typeof shards[i] === 'object' && shards[i] !== null ? shards[i] : {}) as Record<string, unknown>]);
  }
  for (const [prefix, o] of objects) {
    for (const k of Object.keys(o)) {
      const v = o[k];
      if (ArrayBuffer.isView(v)) arrays[prefix + k] = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
      else if (!(prefix === '' && k === 'shards') && typeof v !== 'function') {
        let text: string;
        try {
          text = String(JSON.stringify(v));
        } catch {
          text = String(v);
        }
        fields[prefix + k] = text;
      }
    }
  }
  return { arrays, fields };
}

/**
 * The inputs a call changed, each with a reason: `x (byte 12)`, `gamma (replaced or resized)`,
 * `shape (was [2,3], now [3,2])`, `eps (was 0.001, now 0)`. Empty when nothing changed.
 */
export function inputChanges(req: object, before: InputSnapshot): string[] {
  const out: string[] = [];
  const r = req as Record<string, unknown>;
  // every value now, under the snapshot's keys (`name`, `shards[r].name`, `shards.length`)
  const shards = Array.isArray(r.shards) ? (r.shards as unknown[]) : undefined;
  const objects: Array<[string, Record<string, unknown>]> = [['', r]];
  if (shards) for (let i = 0; i < shards.length; i++) objects.push([`shards[${i}].`, (typeof shards[i] === 'object' && shards[i] !== null ? shards[i] : {}) as Record<string, unknown>]);
  const now: Record<string, unknown> = {};
  for (const [prefix, o] of objects) for (const k of Object.keys(o)) if (!(prefix === '' && k === 'shards')) now[prefix + k] = o[k];
  if (shards) now['shards.length'] = shards.length;
  for (const k of Object.keys(before.arrays)) {
    const bytes = before.arrays[k]!;
    const v = now[k];
    if (!ArrayBuffer.isView(v) || v.byteLength !== bytes.length) {
      out.push(`${k} (replaced or resized)`);
      continue;
    }
    const bytesNow = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < bytesNow.length; i++) {
      if (bytesNow[i] !== bytes[i]) {
        out.push(`${k} (byte ${i})`);
        break;
      }
    }
  }
  for (const k of Object.keys(before.fields)) {
    const v = now[k];
    let text: string;
    try {
      text = String(JSON.stringify(v));
    } catch {
      text = String(v);
    }
    if (text !== before.fields[k]) out.push(`${k} (was ${before.fields[k]}, now ${text})`);
  }
  return out;
}

/** The harness's own copy of a result: every typed array copied, everything else as it was. */
export function ownResult<T>(result: T): T {
  if (typeof result !== 'object' || result === null || Array.isArray(result) || ArrayBuffer.isView(result)) return result;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result as Record<string, unknown>)) {
    // a synchronized result's `replicas`: a list of per-replica results, each owned the same way
    out[k] = v instanceof Float32Array || v instanceof Float64Array || v instanceof Uint16Array ? v.slice() : Array.isArray(v) ? v.map((e) => ownResult(e)) : v;
  }
  return out as T;
}
