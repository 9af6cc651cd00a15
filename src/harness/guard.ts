/**
 * The contract's ownership rules, in one place for every door (in-process call, isolation worker;
 * the --exec child gets its own copies on the wire and cannot touch ours):
 *
 * - Inputs are never the implementation's to modify: `snapshotInputs` before a call and
 *   `inputChanges` after it name every array (and the shape) whose bytes changed.
 * - Outputs become the harness's when a call returns: `ownResult` copies every typed array of the
 *   result, so an implementation may reuse its output buffers on the next call (common in
 *   optimized kernels) and a two-call check compares two results, not one buffer with itself.
 *
 * `snapshotInputs` and `inputChanges` are self-contained on purpose (no imports, no inner
 * functions): the isolation worker is plain JS evaluated from a string, and it embeds these two
 * functions' source text (`Function.prototype.toString`), so the worker runs this very code.
 */

/** What a request looked like before a call: the bytes of each typed array, and the shape. */
export interface InputSnapshot {
  arrays: Record<string, Uint8Array>;
  shape: string;
}

export function snapshotInputs(req: object): InputSnapshot {
  const arrays: Record<string, Uint8Array> = {};
  const r = req as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (ArrayBuffer.isView(v)) arrays[k] = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  }
  return { arrays, shape: JSON.stringify(r.shape) };
}

/**
 * The inputs a call changed, each with a reason: `x (byte 12)`, `gamma (replaced or resized)`,
 * `shape (now [2,3])`. Empty when nothing changed.
 */
export function inputChanges(req: object, before: InputSnapshot): string[] {
  const out: string[] = [];
  const r = req as Record<string, unknown>;
  for (const k of Object.keys(before.arrays)) {
    const bytes = before.arrays[k]!;
    const v = r[k];
    if (!ArrayBuffer.isView(v) || v.byteLength !== bytes.length) {
      out.push(`${k} (replaced or resized)`);
      continue;
    }
    const now = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < now.length; i++) {
      if (now[i] !== bytes[i]) {
        out.push(`${k} (byte ${i})`);
        break;
      }
    }
  }
  const shapeNow = JSON.stringify(r.shape);
  if (shapeNow !== before.shape) out.push(`shape (was ${before.shape}, now ${shapeNow})`);
  return out;
}

/** The harness's own copy of a result: every typed array copied, everything else as it was. */
export function ownResult<T>(result: T): T {
  if (typeof result !== 'object' || result === null || Array.isArray(result) || ArrayBuffer.isView(result)) return result;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result as Record<string, unknown>)) {
    out[k] = v instanceof Float32Array || v instanceof Float64Array || v instanceof Uint16Array ? v.slice() : v;
  }
  return out as T;
}
