/**
 * The browser door's wire format, used on both sides (Node and the page bundle): one message is
 * one binary body
 *
 *   [u32 little-endian: header length H][H bytes: UTF-8 JSON header][zero padding to 8][payload]
 *
 * The header is the message's value with every typed array replaced by
 * `{"$ta": "<constructor name>", "o": <byte offset in payload>, "n": <element count>}`; the
 * payload holds the arrays' bytes (little-endian, as the platform's typed arrays are), each
 * starting at a multiple of 8. So arrays cross as their exact bytes, never as number lists, and
 * Uint16Array (the half-precision dtypes' bit patterns) crosses like any other.
 *
 * Values JSON cannot carry are tagged so the other side sees what the implementation returned:
 * undefined, NaN and ±Infinity, and things no wire can carry (functions, symbols, bigints), which
 * decode to a `Unencodable` marker naming their type. Plain arrays stay plain arrays (so the judge
 * still says "a plain Array(n), expected Float32Array", as it would in Node).
 *
 * No imports and no Node or DOM APIs beyond TextEncoder/TextDecoder: this file is bundled into
 * the page.
 */

const TYPED = {
  Float32Array,
  Float64Array,
  Uint16Array,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedName = keyof typeof TYPED;
type AnyTyped = InstanceType<(typeof TYPED)[TypedName]>;

/** A value the wire cannot carry (a function, symbol, bigint); `what` is its type. */
export class Unencodable {
  constructor(readonly what: string) {}
  toString(): string {
    return `<${this.what}>`;
  }
}

const align8 = (n: number) => (n + 7) & ~7;

function typedName(v: ArrayBufferView): TypedName | undefined {
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name && name in TYPED ? (name as TypedName) : undefined;
}

/** Encode a value (objects, arrays, typed arrays, primitives) as one binary message. */
export function encodeMessage(value: unknown): Uint8Array {
  const parts: Array<{ bytes: Uint8Array; offset: number }> = [];
  let payloadBytes = 0;
  const seen = new Set<unknown>();
  const walk = (v: unknown): unknown => {
    if (v === undefined) return { $undef: 1 };
    if (typeof v === 'number') return Number.isFinite(v) ? v : { $num: String(v) };
    if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
    if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') return { $unenc: typeof v };
    if (ArrayBuffer.isView(v)) {
      const name = typedName(v);
      if (!name) return { $unenc: (v as { constructor?: { name?: string } }).constructor?.name ?? 'ArrayBufferView' };
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const offset = payloadBytes;
      parts.push({ bytes, offset });
      payloadBytes = align8(offset + bytes.length);
      return { $ta: name, o: offset, n: (v as AnyTyped).length };
    }
    if (typeof v === 'object') {
      if (seen.has(v)) return { $unenc: 'circular reference' };
      seen.add(v);
      try {
        if (Array.isArray(v)) return v.map(walk);
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = walk(x);
        return out;
      } finally {
        seen.delete(v);
      }
    }
    return { $unenc: typeof v };
  };
  const header = new TextEncoder().encode(JSON.stringify(walk(value)));
  const start = align8(4 + header.length);
  const out = new Uint8Array(start + payloadBytes);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  for (const p of parts) out.set(p.bytes, start + p.offset);
  return out;
}

/** A message that is not in this format (a truncated or foreign body). */
export class WireError extends Error {
  override name = 'WireError';
}

/**
 * Decode a message. Typed arrays are fresh copies (own, aligned buffers), so a callee that
 * modifies them cannot touch `bytes`.
 */
export function decodeMessage(bytes: Uint8Array): unknown {
  if (bytes.length < 4) throw new WireError(`a message of ${bytes.length} bytes has no header`);
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + h > bytes.length) throw new WireError(`header length ${h} exceeds the message (${bytes.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + h)));
  } catch (e) {
    throw new WireError(`the header is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const start = align8(4 + h);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    const o = v as Record<string, unknown>;
    if (o.$undef === 1) return undefined;
    if (typeof o.$num === 'string') return Number(o.$num);
    if (typeof o.$unenc === 'string') return new Unencodable(o.$unenc);
    if (typeof o.$ta === 'string') {
      const ctor = TYPED[o.$ta as TypedName];
      const n = o.n as number;
      const off = o.o as number;
      if (!ctor || !Number.isInteger(n) || !Number.isInteger(off) || n < 0 || off < 0) throw new WireError(`bad array descriptor ${JSON.stringify(o)}`);
      const len = n * ctor.BYTES_PER_ELEMENT;
      if (start + off + len > bytes.length) throw new WireError(`array ${o.$ta}(${n}) at ${off} runs past the message`);
      const buf = new ArrayBuffer(len);
      new Uint8Array(buf).set(bytes.subarray(start + off, start + off + len));
      return new ctor(buf);
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = walk(x);
    return out;
  };
  return walk(header);
}
