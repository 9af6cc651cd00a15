/**
 * The float32 kernel's WebAssembly SIMD module: its source is ./bn-simd.wat (read that for what
 * each function does), assembled by wabt at build time into ./bn-simd.wasm.ts (base64 bytes), so
 * nothing here needs a toolchain, a file read or a download at run time. This file only decodes
 * and instantiates it.
 */
import { WASM_BASE64 } from './bn-simd.wasm.js';

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

/** The exports of bn-simd.wat (pointers and sizes in bytes of linear memory, except n: floats). */
export interface BnSimdExports {
  sums(ptr: number, runs: number, n: number, stride: number, K: number, out: number): void;
  affine(ptr: number, runs: number, n: number, stride: number, mh: number, ml: number, a: number, b: number): void;
  rowSums(px: number, rowBytes: number, pairs: number, acc: number, blocks: number): void;
  rowAffine(src: number, dst: number, rows: number, rowBytes: number, tab: number, blocks: number): void;
}

/** The module's bytes (atob: Node >= 16 and browsers alike). */
export function bnSimdModuleBytes(): Uint8Array {
  const text = atob(WASM_BASE64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

let compiled: object | null | undefined;

/** Instantiate synchronously (the module is about a kilobyte); undefined where SIMD is unsupported. */
export function instantiateBnSimd(memory: WasmMemory | undefined): BnSimdExports | undefined {
  if (!Wasm || !memory) return undefined;
  try {
    if (compiled === undefined) compiled = new Wasm.Module(bnSimdModuleBytes());
    if (compiled === null) return undefined;
    const instance = new Wasm.Instance(compiled, { env: { memory } });
    return instance.exports as unknown as BnSimdExports;
  } catch {
    compiled = null;
    return undefined;
  }
}
