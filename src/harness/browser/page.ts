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
 * Arrays cross as their bytes (wire.ts), both ways. Every object argument is snapshot before the
 * call and compared after it with ../guard.ts (the one input-ownership check of every door); the
 * list of changes goes back, so the judge names an input mutation with the same words as for a
 * module in Node (input-mutated).
 *
 * No imports beyond wire.ts and guard.ts (neither imports anything): no Node, no framework.
 */
import { inputChanges, snapshotInputs, type InputSnapshot } from '../guard.js';
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

async function call(id: number): Promise<string> {
  const io = new URL(`io/${id}`, location()).href;
  const got = await g.fetch(io);
  if (!got.ok) throw new Error(`GET ${io}: HTTP ${got.status}`);
  const msg = decodeMessage(new Uint8Array(await got.arrayBuffer())) as { op: string; args: unknown[] };
  let answer: Record<string, unknown>;
  // the same ownership check as every door (../guard.ts), per object argument
  const before = msg.args.map((a) => (typeof a === 'object' && a !== null ? snapshotInputs(a) : undefined));
  const changes = (): string[][] => msg.args.map((a, i) => (before[i] ? inputChanges(a as object, before[i] as InputSnapshot) : []));
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
    answer!.changed = changes();
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
