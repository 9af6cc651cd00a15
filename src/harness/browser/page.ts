/**
 * The browser door's page side (bundled by esbuild into the page as `runtime.js`; see door.ts).
 * It imports the implementation module, describes it, and runs one call at a time:
 *
 *   __bn.load()      import ./impl.mjs; return the description (every field that is not a
 *                    function, the names of the functions, and what this page offers: user
 *                    agent, WebGL renderer, WebGPU adapter)
 *   __bn.call(id)    GET io/<id> (a wire message: { op, args }), call impl[op](...args), POST
 *                    io/<id> with { kind: ok | threw | rejected, result | message, changed }
 *
 * Arrays cross as their bytes (wire.ts), both ways. The request's arrays are decoded as copies,
 * so the bytes received stay pristine: after the call every typed-array field and the shape are
 * compared with them and the changes sent back, so the judge in Node names an input mutation
 * exactly as it does for a module in Node (input-mutated).
 *
 * No imports beyond wire.ts: no Node, no framework.
 */
import { decodeMessage, encodeMessage } from './wire.js';

interface Page {
  fetch(url: string, init?: { method: string; body: Uint8Array }): Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;
  navigator: { userAgent: string; gpu?: { requestAdapter(o?: unknown): Promise<{ info?: Record<string, unknown>; features?: Iterable<string> } | null> } };
  document: { createElement(tag: string): { getContext(kind: string): WebGlLike | null } };
  __bn?: unknown;
}
interface WebGlLike {
  getExtension(name: string): unknown;
  getParameter(p: number): unknown;
  RENDERER: number;
  getSupportedExtensions(): string[] | null;
}

const g = globalThis as unknown as Page;
const errText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
/** Functions the door does not proxy: lifecycle, not contract ops. */
const NOT_OPS = new Set(['constructor', 'close', 'dispose', 'destroy', 'toString', 'toJSON']);

let impl: Record<string, unknown> | undefined;

function functionNames(o: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (NOT_OPS.has(k)) continue;
      try {
        if (typeof (o as Record<string, unknown>)[k] === 'function') names.add(k);
      } catch {
        // a throwing getter: not an op
      }
    }
  }
  return [...names];
}

async function environment(): Promise<Record<string, unknown>> {
  const env: Record<string, unknown> = { userAgent: g.navigator.userAgent };
  try {
    const gl = g.document.createElement('canvas').getContext('webgl2') ?? g.document.createElement('canvas').getContext('webgl');
    if (gl) {
      const dbg = gl.getExtension('WEBGL_debug_renderer_info') as { UNMASKED_RENDERER_WEBGL: number } | null;
      env.webgl = String(gl.getParameter(dbg ? dbg.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    } else env.webgl = null;
  } catch (e) {
    env.webgl = `error: ${errText(e)}`;
  }
  try {
    if (!g.navigator.gpu) env.webgpu = 'no navigator.gpu';
    else {
      const a = await g.navigator.gpu.requestAdapter();
      env.webgpu = a ? { ...(a.info ? Object.fromEntries(['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter'].map((k) => [k, a.info![k]])) : {}) } : 'requestAdapter() returned null';
    }
  } catch (e) {
    env.webgpu = `error: ${errText(e)}`;
  }
  return env;
}

async function load(): Promise<Record<string, unknown>> {
  const mod = (await import(/* @vite-ignore */ new URL('impl.mjs', location()).href)) as Record<string, unknown>;
  const got = await (mod.default ?? mod.implementation);
  if (!got || typeof got !== 'object') throw new Error('the module has no default export and no export named "implementation" (or it is not an object)');
  impl = got as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(impl)) if (typeof v !== 'function') fields[k] = v;
  return { fields: JSON.parse(JSON.stringify(fields)) as unknown, ops: functionNames(impl), env: await environment() };
}

function location(): string {
  return (globalThis as unknown as { location: { href: string } }).location.href;
}

type Snapshot = Array<{ fields: Record<string, Uint8Array>; shape?: string }>;

function snapshot(args: unknown[]): Snapshot {
  return args.map((a) => {
    const fields: Record<string, Uint8Array> = {};
    if (typeof a !== 'object' || a === null) return { fields };
    const r = a as Record<string, unknown>;
    for (const [k, v] of Object.entries(r)) if (ArrayBuffer.isView(v)) fields[k] = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    return { fields, ...(Array.isArray(r.shape) ? { shape: JSON.stringify(r.shape) } : {}) };
  });
}

/** What the call changed, per argument: field -> its bytes now (null when replaced or resized). */
function changes(args: unknown[], before: Snapshot): Array<Record<string, unknown>> {
  return args.map((a, i) => {
    const out: Record<string, unknown> = {};
    const b = before[i]!;
    if (typeof a !== 'object' || a === null) return out;
    const r = a as Record<string, unknown>;
    for (const [k, bytes] of Object.entries(b.fields)) {
      const v = r[k];
      if (!ArrayBuffer.isView(v) || v.byteLength !== bytes.length) {
        out[k] = null;
        continue;
      }
      const now = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (let j = 0; j < now.length; j++)
        if (now[j] !== bytes[j]) {
          out[k] = now.slice();
          break;
        }
    }
    if (b.shape !== undefined && JSON.stringify(r.shape) !== b.shape) out.shape = Array.isArray(r.shape) ? (r.shape as unknown[]).slice() : null;
    return out;
  });
}

async function call(id: number): Promise<string> {
  const io = new URL(`io/${id}`, location()).href;
  const got = await g.fetch(io);
  if (!got.ok) throw new Error(`GET ${io}: HTTP ${got.status}`);
  const msg = decodeMessage(new Uint8Array(await got.arrayBuffer())) as { op: string; args: unknown[] };
  let answer: Record<string, unknown>;
  const before = snapshot(msg.args);
  if (!impl) answer = { kind: 'threw', message: 'the module is not loaded', changed: [] };
  else {
    let pending: unknown;
    let threw = false;
    try {
      pending = (impl[msg.op] as (...a: unknown[]) => unknown).apply(impl, msg.args);
    } catch (e) {
      threw = true;
      answer = { kind: 'threw', message: errText(e) };
    }
    if (!threw) {
      try {
        answer = { kind: 'ok', result: await pending };
      } catch (e) {
        answer = { kind: 'rejected', message: errText(e) };
      }
    }
    answer!.changed = changes(msg.args, before);
  }
  let body: Uint8Array;
  try {
    body = encodeMessage(answer!);
  } catch (e) {
    body = encodeMessage({ kind: 'bad-result', message: `the result cannot be encoded: ${errText(e)}`, changed: answer!.changed });
  }
  const put = await g.fetch(io, { method: 'POST', body });
  if (!put.ok) throw new Error(`POST ${io}: HTTP ${put.status}`);
  return 'done';
}

g.__bn = { load, call };
