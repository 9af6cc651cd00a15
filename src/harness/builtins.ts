/**
 * Built-in implementations, checkable without writing a module: `check --builtin NAME`.
 * Our own kernels go through the same door as everybody else's.
 */
import type { BatchNormImplementation, Profile, ProfileName } from '../contract/contract.js';
import { UsageError } from '../contract/errors.js';
import { createCpuF32 } from '../kernels/cpu-f32/index.js';
import type { OrtFamilyVariant } from '../adapters/ort-family.js';
import { createReference } from '../reference/reference.js';
import { BROWSER_DOOR_PEERS, installedPeer, requirePeers, type PeerNeeds, type PeerResolver } from './peers.js';

export interface Builtin {
  description: string;
  /** Optional peers (and Chromium) it needs, checked all at once before create (src/harness/peers.ts). */
  needs?(): PeerNeeds;
  create(profile?: ProfileName | Profile): Promise<BatchNormImplementation>;
}

/** A built-in that runs in headless Chromium through the browser door: its packages, then the door's. */
const inBrowser = (...peers: string[]): PeerNeeds => ({ peers: [...peers, ...BROWSER_DOOR_PEERS], chromium: true });

/** Modes of the gpu built-in (--gpu-mode / BN_GPU_MODE); 'cpu' is gpu.js's JS backend and is labelled NOT a GPU. */
export const GPU_BUILTIN_MODES = ['headlessgl', 'webgl2', 'webgl', 'webgpu', 'cpu'] as const;

export const BUILTINS: Record<string, Builtin> = {
  reference: {
    description: 'the float64 compensated reference (float32, float64 and half; BN, synchronized BN and the normalization family: layerNorm, rmsNorm, groupNorm, instanceNorm)',
    create: async (p) => createReference(p),
  },
  'cpu-f32': {
    description: 'the optimized float32 CPU kernel, default (auto) engine: WebAssembly SIMD, tiny-tensor loops, large tensors over every core',
    create: async (p) => createCpuF32(p),
  },
  'cpu-f32-ts': {
    description: 'the optimized float32 CPU kernel, TypeScript engine (one thread)',
    create: async (p) => createCpuF32(p, { engine: 'ts' }),
  },
  'cpu-f32-sync': {
    description: 'the float32 CPU kernel with its synchronized ops: each replica on a worker thread of its own, statistics all-reduced through shared memory',
    create: async (p) => createCpuF32(p, { engine: 'ts', synchronized: true }),
  },
  'cpu-f32-wasm': {
    description: 'the optimized float32 CPU kernel, WebAssembly SIMD engine (one thread)',
    create: async (p) => createCpuF32(p, { engine: 'wasm' }),
  },
  'cpu-f32-threads': {
    description: 'the optimized float32 CPU kernel, default engine with the split over the worker pool forced on every shape it can take (for checking that path; slow)',
    create: async (p) => createCpuF32(p, { threads: 'always' }),
  },
  gpu: {
    // the browser modes run in headless Chromium, through the browser door
    needs: () => (['webgl2', 'webgl', 'webgpu'].includes(process.env.BN_GPU_MODE ?? '') ? inBrowser('gpu.js') : { peers: ['gpu.js'] }),
    description:
      'the gpu.js kernel; mode from --gpu-mode / BN_GPU_MODE: headlessgl (default; needs a built `gl` and an X display: xvfb-run -a), webgl2, webgl, webgpu (in headless Chromium, through the browser door), cpu (gpu.js JS backend: NOT a GPU)',
    create: async (p) => {
      const { createGpu, gpuAvailability } = await import('../kernels/gpu/index.js');
      const mode = (process.env.BN_GPU_MODE || 'headlessgl') as (typeof GPU_BUILTIN_MODES)[number];
      if (!GPU_BUILTIN_MODES.includes(mode)) throw new UsageError(`unknown gpu mode "${mode}" (--gpu-mode / BN_GPU_MODE); known: ${GPU_BUILTIN_MODES.join(', ')}`);
      // the browser modes run the same kernel in headless Chromium, through the browser door
      if (mode === 'webgl2' || mode === 'webgl' || mode === 'webgpu') return (await import('../adapters/browser/index.js')).createGpuBrowserBuiltin(mode, p);
      const probe = await gpuAvailability(mode);
      // never let a fallback pass as the named mode (the kernel also checks the class after every run)
      if (!probe.available) throw new UsageError(`the gpu built-in cannot run in mode ${mode} here: ${probe.reason}`);
      // the CLI calls dispose() (the GL context and compiled kernels) when the run ends
      return createGpu(p, { mode });
    },
  },
  'tfjs-cpu': {
    needs: () => ({ peers: ['@tensorflow/tfjs'] }),
    description: 'TensorFlow.js tf.layers.batchNormalization and (family) tf.layers.layerNormalization with its gradients, on the CPU backend (keras profile, float32, any axis as the layers accept; needs @tensorflow/tfjs)',
    create: async (p) => (await import('../adapters/tfjs.js')).createTfjsAdapter('cpu', p),
  },
  'tfjs-wasm': {
    needs: () => ({ peers: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'] }),
    description: 'TensorFlow.js tf.layers.batchNormalization and tf.layers.layerNormalization on the WASM backend (keras profile, float32, any axis as the layers accept; needs @tensorflow/tfjs-backend-wasm)',
    create: async (p) => (await import('../adapters/tfjs.js')).createTfjsAdapter('wasm', p),
  },
  'tfjs-webgl': {
    needs: () => inBrowser('@tensorflow/tfjs'),
    description: 'TF.js tf.layers.batchNormalization and tf.layers.layerNormalization on the WebGL backend in headless Chromium (SwiftShader); keras, float32, any axis (needs @tensorflow/tfjs, playwright-core, esbuild, Chromium)',
    create: async (p) => (await import('../adapters/browser/index.js')).createTfjsWebBuiltin('webgl', p),
  },
  'tfjs-webgpu': {
    needs: () => inBrowser('@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'),
    description: 'TF.js tf.layers.batchNormalization and tf.layers.layerNormalization on the WebGPU backend in headless Chromium (SwiftShader); keras, float32, any axis (needs @tensorflow/tfjs-backend-webgpu too)',
    create: async (p) => (await import('../adapters/browser/index.js')).createTfjsWebBuiltin('webgpu', p),
  },
  'ort-web': {
    needs: () => inBrowser('onnxruntime-web'),
    description: 'onnxruntime-web, one-node BatchNormalization, wasm execution provider, in headless Chromium (onnx profile, axis 1, no backward; needs onnxruntime-web)',
    create: async (p) => (await import('../adapters/browser/index.js')).createOrtWebBuiltin('wasm', p),
  },
  'ort-webgpu': {
    needs: () => inBrowser('onnxruntime-web'),
    description: 'onnxruntime-web, one-node BatchNormalization, webgpu execution provider, in headless Chromium (SwiftShader WebGPU; onnx profile, axis 1, float32)',
    create: async (p) => (await import('../adapters/browser/index.js')).createOrtWebBuiltin('webgpu', p),
  },
  onnxruntime: {
    needs: () => ({ peers: ['onnxruntime-node'] }),
    description: 'onnxruntime-node, a one-node ONNX BatchNormalization, opset 15 (onnx profile, axis 1, no backward; needs onnxruntime-node)',
    create: async (p) => (await import('../adapters/onnxruntime.js')).createOnnxRuntimeAdapter(p),
  },
};

/**
 * The normalization family through onnxruntime (0.3.0): one built-in per operator form
 * (src/adapters/ort-family.ts), on onnxruntime-node (`ort-<variant>`) and onnxruntime-web in
 * headless Chromium (`ort-web-<variant>` on wasm, `ort-webgpu-<variant>` on webgpu).
 */
const ORT_FAMILY_FORMS: Record<OrtFamilyVariant, string> = {
  layernorm: 'a one-node LayerNormalization-17, stash_type 1 (float32 statistics)',
  'layernorm-stash0': 'a one-node LayerNormalization-17, stash_type 0 (statistics in the input type)',
  'layernorm-decomposed': 'the pre-opset-17 exporters\' decomposed LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add, opset 15)',
  rmsnorm: 'a one-node RMSNormalization-23',
  'rmsnorm-decomposed': 'the pre-opset-23 exporters\' decomposed RMSNorm (Pow/ReduceMean/Add/Sqrt/Div/Mul, opset 15)',
  groupnorm: 'a one-node GroupNormalization-21 (per-channel scale), axis 1',
  'groupnorm-18': 'a one-node GroupNormalization-18 (per-group scale; per-channel gamma applied after it unless constant within each group), axis 1',
  instancenorm: 'a one-node InstanceNormalization-6, axis 1',
};
for (const [variant, form] of Object.entries(ORT_FAMILY_FORMS) as Array<[OrtFamilyVariant, string]>) {
  BUILTINS[`ort-${variant}`] = {
    needs: () => ({ peers: ['onnxruntime-node'] }),
    description: `onnxruntime-node running ${form}; onnx profile, forward only (needs onnxruntime-node)`,
    create: async (p) => (await import('../adapters/onnxruntime-family.js')).createOnnxRuntimeFamilyAdapter(variant, p),
  };
  for (const provider of ['wasm', 'webgpu'] as const) {
    BUILTINS[`${provider === 'wasm' ? 'ort-web' : 'ort-webgpu'}-${variant}`] = {
      needs: () => inBrowser('onnxruntime-web'),
      description: `onnxruntime-web running ${form}, ${provider} execution provider${provider === 'webgpu' ? ' (refuses to load where ORT would run the op on its CPU provider)' : ''}, in headless Chromium; forward only (needs onnxruntime-web)`,
      create: async (p) => (await import('../adapters/browser/index.js')).createOrtWebFamilyBuiltin(provider, variant, p),
    };
  }
}

/** `resolvePeer` decides which optional peers are installed (a stub in the specs). */
export async function createBuiltin(name: string, profile?: ProfileName | Profile, resolvePeer: PeerResolver = installedPeer): Promise<BatchNormImplementation> {
  const b = BUILTINS[name];
  if (!b) throw new UsageError(`unknown built-in "${name}"; available: ${Object.keys(BUILTINS).join(', ')} (see --builtin list)`);
  if (b.needs) requirePeers(`the ${name} built-in`, b.needs(), resolvePeer);
  return b.create(profile);
}
