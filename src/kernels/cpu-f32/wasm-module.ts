/**
 * A tiny WebAssembly SIMD module, assembled here from its instructions (no toolchain, nothing
 * prebuilt): the two inner loops the float32 kernel spends its time in.
 *
 *   sums(ptr, n, K, out):  out[0] = Σ (x - K), out[1] = Σ (x - K)² over n float32 at ptr,
 *                          in float64 (each f32x4 is promoted to two f64x2; 4 interleaved lanes).
 *   affine(ptr, n, mh, ml, a, b):  in place, x := ((x - mh) - ml)·a + b in float32.
 *                          mean = mh + ml (a float32 pair): x - mh is exact when x is near the
 *                          mean (Sterbenz), so the large-offset case loses no accuracy to the
 *                          rounding of the mean.
 *   rowSums / rowAffine:   the same two loops for the rows ("channels-last") layout, sweeping
 *                          each row's W lanes four at a time with per-lane tables.
 * Memory is imported, so the engine can grow it and keep its own views.
 */

const enc = {
  u32(v: number): number[] {
    const out: number[] = [];
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    return out;
  },
  i32(v: number): number[] {
    const out: number[] = [];
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return [...out, b];
      out.push(b | 0x80);
    }
  },
  str(s: string): number[] {
    const b = [...new TextEncoder().encode(s)];
    return [...enc.u32(b.length), ...b];
  },
  vec(items: number[][]): number[] {
    return [...enc.u32(items.length), ...items.flat()];
  },
  section(id: number, body: number[]): number[] {
    return [id, ...enc.u32(body.length), ...body];
  },
};

const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;

// Opcodes used (core and SIMD, 0xfd-prefixed).
const op = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b,
  get: 0x20, set: 0x21, tee: 0x22,
  i32const: 0x41, i32add: 0x6a, i32sub: 0x6b, i32geU: 0x4f, i32ltU: 0x49, i32and: 0x71,
  f32load: 0x2a, f32store: 0x38, f64store: 0x39,
  f32add: 0x92, f32sub: 0x93, f32mul: 0x94,
  f64add: 0xa0, f64sub: 0xa1, f64mul: 0xa2, f64promote: 0xbb,
};
const simd = (code: number, ...imm: number[]) => [0xfd, ...enc.u32(code), ...imm];
const v128load = (offset = 0) => simd(0x00, 4, ...enc.u32(offset));
const v128store = (offset = 0) => simd(0x0b, 4, ...enc.u32(offset));
/** Loads/stores at addresses with no alignment promise (rows of odd width). */
const v128load0 = () => simd(0x00, 0, 0);
const v128store0 = () => simd(0x0b, 0, 0);
const f32x4splat = simd(0x13), f64x2splat = simd(0x14);
const f32x4add = simd(0xe4), f32x4sub = simd(0xe5), f32x4mul = simd(0xe6);
const f64x2add = simd(0xf0), f64x2sub = simd(0xf1), f64x2mul = simd(0xf2);
const promoteLow = simd(0x5f);
const extractF64 = (lane: number) => simd(0x21, lane);
/** Move the high two f32 lanes down (i8x16.shuffle v, v). */
const highToLow = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
const get = (i: number) => [op.get, ...enc.u32(i)];
const set = (i: number) => [op.set, ...enc.u32(i)];
const tee = (i: number) => [op.tee, ...enc.u32(i)];
const i32c = (v: number) => [op.i32const, ...enc.i32(v)];
const memarg = (align: number, offset = 0) => [align, ...enc.u32(offset)];

function body(locals: Array<[number, number]>, code: number[]): number[] {
  const decl = enc.vec(locals.map(([count, type]) => [...enc.u32(count), type]));
  const fn = [...decl, ...code, op.end];
  return [...enc.u32(fn.length), ...fn];
}

/** sums(ptr i32, n i32, K f64, out i32). */
function sumsBody(): number[] {
  // params 0 ptr, 1 n, 2 K, 3 out; locals 4 end4 (i32), 5 end (i32), 6 Kv, 7 s1a, 8 s1b, 9 s2a,
  // 10 s2b, 11 v, 12 d (v128); 13 s1 (f64), 14 s2 (f64), 15 ds (f64)
  const code = [
    ...get(2), ...f64x2splat, ...set(6),
    // end = ptr + 4n; end4 = ptr + 16·(n >> 2)
    ...get(0), ...get(1), ...i32c(2), 0x74 /* i32.shl */, op.i32add, ...set(5),
    ...get(0), ...get(1), ...i32c(-4), op.i32and, ...i32c(2), 0x74, op.i32add, ...set(4),
    op.block, 0x40, op.loop, 0x40,
    ...get(0), ...get(4), op.i32geU, op.brIf, 1,
    ...get(0), ...v128load(), ...tee(11),
    ...promoteLow, ...get(6), ...f64x2sub, ...tee(12),
    ...get(7), ...f64x2add, ...set(7),
    ...get(12), ...get(12), ...f64x2mul, ...get(9), ...f64x2add, ...set(9),
    ...get(11), ...get(11), ...highToLow, ...promoteLow, ...get(6), ...f64x2sub, ...tee(12),
    ...get(8), ...f64x2add, ...set(8),
    ...get(12), ...get(12), ...f64x2mul, ...get(10), ...f64x2add, ...set(10),
    ...get(0), ...i32c(16), op.i32add, ...set(0),
    op.br, 0, op.end, op.end,
    // fold lanes
    ...get(7), ...get(8), ...f64x2add, ...tee(7), ...extractF64(0), ...get(7), ...extractF64(1), op.f64add, ...set(13),
    ...get(9), ...get(10), ...f64x2add, ...tee(9), ...extractF64(0), ...get(9), ...extractF64(1), op.f64add, ...set(14),
    // scalar tail
    op.block, 0x40, op.loop, 0x40,
    ...get(0), ...get(5), op.i32geU, op.brIf, 1,
    ...get(0), op.f32load, ...memarg(2), op.f64promote, ...get(2), op.f64sub, ...tee(15),
    ...get(13), op.f64add, ...set(13),
    ...get(15), ...get(15), op.f64mul, ...get(14), op.f64add, ...set(14),
    ...get(0), ...i32c(4), op.i32add, ...set(0),
    op.br, 0, op.end, op.end,
    ...get(3), ...get(13), op.f64store, ...memarg(3, 0),
    ...get(3), ...get(14), op.f64store, ...memarg(3, 8),
  ];
  return body([[2, I32], [7, V128], [3, F64]], code);
}

/** affine(ptr i32, n i32, mh f32, ml f32, a f32, b f32), in place. */
function affineBody(): number[] {
  // params 0 ptr, 1 n, 2 mh, 3 ml, 4 a, 5 b; locals 6 end4, 7 end (i32); 8 MH, 9 ML, 10 A, 11 B (v128)
  const code = [
    ...get(2), ...f32x4splat, ...set(8), ...get(3), ...f32x4splat, ...set(9),
    ...get(4), ...f32x4splat, ...set(10), ...get(5), ...f32x4splat, ...set(11),
    ...get(0), ...get(1), ...i32c(2), 0x74, op.i32add, ...set(7),
    ...get(0), ...get(1), ...i32c(-4), op.i32and, ...i32c(2), 0x74, op.i32add, ...set(6),
    op.block, 0x40, op.loop, 0x40,
    ...get(0), ...get(6), op.i32geU, op.brIf, 1,
    ...get(0),
    ...get(0), ...v128load(), ...get(8), ...f32x4sub, ...get(9), ...f32x4sub,
    ...get(10), ...f32x4mul, ...get(11), ...f32x4add,
    ...v128store(),
    ...get(0), ...i32c(16), op.i32add, ...set(0),
    op.br, 0, op.end, op.end,
    op.block, 0x40, op.loop, 0x40,
    ...get(0), ...get(7), op.i32geU, op.brIf, 1,
    ...get(0),
    ...get(0), op.f32load, ...memarg(2), ...get(2), op.f32sub, ...get(3), op.f32sub,
    ...get(4), op.f32mul, ...get(5), op.f32add,
    op.f32store, ...memarg(2),
    ...get(0), ...i32c(4), op.i32add, ...set(0),
    op.br, 0, op.end, op.end,
  ];
  return body([[2, I32], [4, V128]], code);
}


/**
 * rowSums(px i32, rowBytes i32, pairs i32, acc i32, blocks i32): the lane sums of the rows
 * ("channels-last") path. The data is rows of W lanes (rowBytes = 4W apart); lanes are taken
 * four at a time (`blocks` = ceil(W/4)), and each 4-lane block owns 96 bytes at acc + 96·b:
 * K (2 f64x2), s1 (2 f64x2), s2 (2 f64x2). Each call adds `pairs` pairs of rows:
 * d = f64(x) - K, s1 += d0 + d1, s2 += d0² + d1² (float64, one accumulator per lane).
 * The last block may read up to 3 floats past a row (into the next row, or the caller's slack);
 * those padding lanes accumulate garbage that is never read.
 */
function rowSumsBody(): number[] {
  // params 0 px, 1 rowBytes, 2 pairs, 3 acc, 4 blocks; locals 5 p, 6 pa, 7 pend (i32);
  // 8 x0, 9 x1, 10 d0, 11 d1 (v128)
  const half = (xv: number, k: number[], hi: boolean) => [
    ...get(xv), ...(hi ? [...get(xv), ...highToLow] : []), ...promoteLow, ...k, ...f64x2sub,
  ];
  const accumulate = (kOff: number, s1Off: number, s2Off: number, hi: boolean) => [
    ...half(8, [...get(6), ...v128load(kOff)], hi), ...set(10),
    ...half(9, [...get(6), ...v128load(kOff)], hi), ...set(11),
    ...get(6), ...get(6), ...v128load(s1Off), ...get(10), ...get(11), ...f64x2add, ...f64x2add, ...v128store(s1Off),
    ...get(6), ...get(6), ...v128load(s2Off),
    ...get(10), ...get(10), ...f64x2mul, ...get(11), ...get(11), ...f64x2mul, ...f64x2add, ...f64x2add,
    ...v128store(s2Off),
  ];
  const code = [
    op.block, 0x40, op.loop, 0x40,
    ...get(2), 0x45 /* i32.eqz */, op.brIf, 1,
    ...get(0), ...set(5), ...get(3), ...set(6),
    ...get(0), ...get(4), ...i32c(4), 0x74, op.i32add, ...set(7),
    op.block, 0x40, op.loop, 0x40,
    ...get(5), ...get(7), op.i32geU, op.brIf, 1,
    ...get(5), ...v128load0(), ...set(8),
    ...get(5), ...get(1), op.i32add, ...v128load0(), ...set(9),
    ...accumulate(0, 32, 64, false),
    ...accumulate(16, 48, 80, true),
    ...get(5), ...i32c(16), op.i32add, ...set(5),
    ...get(6), ...i32c(96), op.i32add, ...set(6),
    op.br, 0, op.end, op.end,
    ...get(0), ...get(1), ...i32c(1), 0x74, op.i32add, ...set(0),
    ...get(2), ...i32c(1), op.i32sub, ...set(2),
    op.br, 0, op.end, op.end,
  ];
  return body([[3, I32], [4, V128]], code);
}

/**
 * rowAffine(src i32, dst i32, rows i32, rowBytes i32, tab i32, blocks i32): per lane,
 * dst = (src - MH)·A + B in float32, with 48 bytes of table per 4-lane block at tab + 48·b:
 * MH, A, B (f32x4 each). Out of place: the padding lanes of a row's last block write up to
 * 3 floats into the next row of dst, which that row's own pass then overwrites (rows go in
 * order), and past the last row into the caller's slack.
 */
function rowAffineBody(): number[] {
  // params 0 src, 1 dst, 2 rows, 3 rowBytes, 4 tab, 5 blocks; locals 6 p, 7 q, 8 pt, 9 pend (i32)
  const code = [
    op.block, 0x40, op.loop, 0x40,
    ...get(2), 0x45, op.brIf, 1,
    ...get(0), ...set(6), ...get(1), ...set(7), ...get(4), ...set(8),
    ...get(0), ...get(5), ...i32c(4), 0x74, op.i32add, ...set(9),
    op.block, 0x40, op.loop, 0x40,
    ...get(6), ...get(9), op.i32geU, op.brIf, 1,
    ...get(7),
    ...get(6), ...v128load0(), ...get(8), ...v128load(0), ...f32x4sub,
    ...get(8), ...v128load(16), ...f32x4mul, ...get(8), ...v128load(32), ...f32x4add,
    ...v128store0(),
    ...get(6), ...i32c(16), op.i32add, ...set(6),
    ...get(7), ...i32c(16), op.i32add, ...set(7),
    ...get(8), ...i32c(48), op.i32add, ...set(8),
    op.br, 0, op.end, op.end,
    ...get(0), ...get(3), op.i32add, ...set(0),
    ...get(1), ...get(3), op.i32add, ...set(1),
    ...get(2), ...i32c(1), op.i32sub, ...set(2),
    op.br, 0, op.end, op.end,
  ];
  return body([[4, I32]], code);
}

/** The module's bytes: imports env.memory, exports sums, affine, rowSums and rowAffine. */
export function bnSimdModuleBytes(): Uint8Array {
  const types = enc.vec([
    [0x60, ...enc.vec([[I32], [I32], [F64], [I32]]), ...enc.vec([])],
    [0x60, ...enc.vec([[I32], [I32], [F32], [F32], [F32], [F32]]), ...enc.vec([])],
    [0x60, ...enc.vec([[I32], [I32], [I32], [I32], [I32]]), ...enc.vec([])],
    [0x60, ...enc.vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...enc.vec([])],
  ]);
  const imports = enc.vec([[...enc.str('env'), ...enc.str('memory'), 0x02, 0x00, ...enc.u32(1)]]);
  const funcs = enc.vec([enc.u32(0), enc.u32(1), enc.u32(2), enc.u32(3)]);
  const exports = enc.vec([
    [...enc.str('sums'), 0x00, ...enc.u32(0)],
    [...enc.str('affine'), 0x00, ...enc.u32(1)],
    [...enc.str('rowSums'), 0x00, ...enc.u32(2)],
    [...enc.str('rowAffine'), 0x00, ...enc.u32(3)],
  ]);
  const code = enc.vec([sumsBody(), affineBody(), rowSumsBody(), rowAffineBody()]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...enc.section(1, types),
    ...enc.section(2, imports),
    ...enc.section(3, funcs),
    ...enc.section(7, exports),
    ...enc.section(10, code),
  ]);
}

/** The slice of the WebAssembly JS API used here (the project's lib settings carry no DOM types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
export const Wasm: WasmApi | undefined = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

export interface BnSimdExports {
  sums(ptr: number, n: number, K: number, out: number): void;
  affine(ptr: number, n: number, mh: number, ml: number, a: number, b: number): void;
  rowSums(px: number, rowBytes: number, pairs: number, acc: number, blocks: number): void;
  rowAffine(src: number, dst: number, rows: number, rowBytes: number, tab: number, blocks: number): void;
}

/** Instantiate synchronously (the module is a few hundred bytes); undefined where unsupported. */
export function instantiateBnSimd(memory: WasmMemory | undefined): BnSimdExports | undefined {
  if (!Wasm || !memory) return undefined;
  try {
    const module = new Wasm.Module(bnSimdModuleBytes());
    const instance = new Wasm.Instance(module, { env: { memory } });
    return instance.exports as unknown as BnSimdExports;
  } catch {
    return undefined;
  }
}
