/**
 * Page side of the built-ins `ort-web-<variant>` and `ort-webgpu-<variant>`: onnxruntime-web 1.30
 * running the family's one-node models of ../ort-family.ts (shared with onnxruntime-node's
 * `ort-<variant>`), on the wasm execution provider (one thread) or the webgpu one.
 *
 * Declared: wasm is ORT's CPU kernels compiled to wasm, so the same precisions as onnxruntime-node;
 * webgpu: float32, and float16 only where the adapter has the `shader-f16` feature (SwiftShader's
 * has not). Sessions keep ORT's default graph optimizations, as on onnxruntime-node.
 *
 * Where the webgpu provider really runs the op: ORT places a node the provider has no kernel for
 * on its wasm CPU kernels without a word, and it places shape arithmetic (the Div and Concat of an
 * expanded GroupNormalization function body) on the CPU on purpose. So at load the adapter runs
 * the op once with ORT's verbose log and reads ORT's own "Node placements": when every node is on
 * the CPU provider (RMSNormalization-23: no webgpu kernel), the built-in refuses to load and
 * quotes ORT, because a pass would be the wasm CPU kernel's; otherwise the name lists the nodes
 * ORT left on the CPU. Subnormal flushing is measured on webgpu too (flushesSubnormals) and, where
 * found, declared.
 */
import * as ort from 'onnxruntime-web';
import type { Precision } from '../../contract/contract.js';
import { mulModel } from '../onnx-family.js';
import { ORT_FAMILY_VARIANTS, ortFamilyAdapter, type OrtFamilyOptions, type OrtFamilyVariant } from '../ort-family.js';

async function hasShaderF16(): Promise<boolean> {
  const gpu = (globalThis as unknown as { navigator?: { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } } }).navigator?.gpu;
  const adapter = await gpu?.requestAdapter();
  return !!adapter?.features.has('shader-f16');
}

/** ORT's "Node placements" (session_state.cc VerifyEachNodeIsAssignedToAnEp), provider -> op types, from its verbose log. */
export function parsePlacements(lines: string[]): Map<string, string[]> | undefined {
  const start = lines.findIndex((l) => l.includes('Node placements'));
  if (start < 0) return undefined;
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const l of lines.slice(start + 1)) {
    const all = /All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(l);
    const some = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(l);
    if (all) out.set(all[1]!, [`all ${all[2]} nodes`]);
    else if (some) out.set(some[1]!, (current = []));
    else if (current && /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\w+) \(/.test(l)) current.push(/\]\s{3}(\w+) \(/.exec(l)![1]!);
    else if (!/VerifyEachNodeIsAssignedToAnEp/.test(l)) break;
  }
  return out;
}

/** Run the op once on a tiny request with ORT's verbose log captured; the placements ORT logged. */
async function placementsOf(variant: OrtFamilyVariant, opts: OrtFamilyOptions): Promise<Map<string, string[]> | undefined> {
  const lines: string[] = [];
  const kinds = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const saved = kinds.map((k) => console[k]);
  const level = ort.env.logLevel;
  for (const k of kinds) console[k] = (...a: unknown[]) => void lines.push(a.map(String).join(' '));
  ort.env.logLevel = 'verbose';
  const probe = ortFamilyAdapter(ort as unknown as Parameters<typeof ortFamilyAdapter>[0], variant, { ...opts, sessionOptions: { ...opts.sessionOptions, logSeverityLevel: 0, logVerbosityLevel: 1 } });
  try {
    const op = ORT_FAMILY_VARIANTS[variant].op;
    const perChannel = op === 'groupNorm' || op === 'instanceNorm';
    const f = (n: number, v: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => v(i));
    const req = { x: f(12, (i) => i % 5), shape: [2, 2, 3], axis: 1, groups: 2, gamma: f(perChannel ? 2 : 6, () => 1), beta: f(perChannel ? 2 : 6, () => 0), eps: 1e-3, dtype: 'float32' as const, paramDtype: 'float32' as const };
    await (probe[op] as (r: typeof req) => Promise<unknown>)(req);
  } finally {
    kinds.forEach((k, i) => (console[k] = saved[i]!));
    ort.env.logLevel = level;
    await probe.close();
  }
  return parsePlacements(lines);
}

/**
 * Does the provider's arithmetic flush subnormals? One Mul through it: 1e-40 · 1 and 2^-126 · 0.25
 * (subnormal results in float32). SwiftShader's WGSL flushes (allowed by WGSL); declared, so the
 * tolerance's underflow unit is the smallest normal (as the TF.js browser built-ins do).
 */
async function flushesSubnormals(provider: 'wasm' | 'webgpu'): Promise<{ flushes: boolean; detail: string }> {
  const s = await ort.InferenceSession.create(mulModel(4), { executionProviders: [provider] });
  try {
    const r = await s.run({ X: new ort.Tensor('float32', Float32Array.of(1e-40, 2 ** -126, 1e-40, 2 ** -126), [4]), S: new ort.Tensor('float32', Float32Array.of(1, 0.25, 1, 0.25), [4]) });
    const y = r.Y!.data as Float32Array;
    return { flushes: y[0] === 0 || y[1] === 0, detail: `1e-40*1 = ${y[0]}, 2^-126*0.25 = ${y[1]}` };
  } finally {
    await s.release();
  }
}

export async function createOrtWebFamilyAdapter(provider: 'wasm' | 'webgpu', variant: OrtFamilyVariant, wasmPaths: string) {
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const v = ORT_FAMILY_VARIANTS[variant];
  const f16 = provider === 'webgpu' && (await hasShaderF16());
  const precisions: Precision[] = provider === 'wasm' ? v.cpuPrecisions : v.cpuPrecisions.filter((p) => p.dtype === 'float32' || (f16 && p.dtype === 'float16'));
  const opts: OrtFamilyOptions = {
    name: `onnxruntime-web ${ort.env.versions?.web ?? ort.env.versions?.common ?? ''} ${v.form}, ${provider} execution provider${f16 ? ' (shader-f16)' : ''}`,
    profile: 'onnx',
    precisions,
    // wasm: the same CPU kernels as onnxruntime-node, so the same measured accumulation
    ...(provider === 'wasm' && v.cpuAccumulation ? { accumulation: v.cpuAccumulation } : {}),
    provider: `onnxruntime-web's ${provider} ${v.form}`,
    // ORT's default graph optimizations, as a deployed model gets them (its fusions rewrite the
    // decomposed graphs, as on onnxruntime-node)
    sessionOptions: { executionProviders: [provider] },
  };
  if (provider === 'webgpu') {
    const placed = await placementsOf(variant, opts);
    if (!placed) throw new Error(`onnxruntime-web did not log its node placements for ${v.form}: cannot tell whether the webgpu provider runs it`);
    const gpu = [...placed.keys()].filter((k) => k !== 'CPUExecutionProvider');
    const cpu = placed.get('CPUExecutionProvider');
    if (gpu.length === 0) {
      throw new Error(`onnxruntime-web's webgpu provider does not run ${v.form}: ORT placed ${cpu?.join(', ') ?? 'every node'} on the CPU execution provider (its wasm kernels), so this would not check WebGPU`);
    }
    opts.name += cpu ? ` [ORT placed ${cpu.join(', ')} on the CPU provider, the rest on ${gpu.join(', ')}]` : ` [every node on ${gpu.join(', ')}]`;
    const probe = await flushesSubnormals(provider);
    opts.name += probe.flushes ? ` [flushes subnormals: ${probe.detail}]` : ` [gradual underflow: ${probe.detail}]`;
    if (probe.flushes) opts.accumulation = Object.fromEntries(precisions.map((p) => [p.dtype, { dtype: 'float32', order: 'sequential', subnormals: 'flush-to-zero' }]));
  }
  return ortFamilyAdapter(ort as unknown as Parameters<typeof ortFamilyAdapter>[0], variant, opts);
}
