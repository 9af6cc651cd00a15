/**
 * Built-in implementations, checkable without writing a module: `check --builtin NAME`.
 * Our own kernels go through the same door as everybody else's.
 */
import type { BatchNormImplementation, Profile, ProfileName } from './contract.js';
import { UsageError } from './errors.js';
import { createCpuF32 } from './kernels/cpu-f32/index.js';
import { createReference } from './reference/reference.js';

export interface Builtin {
  description: string;
  create(profile?: ProfileName | Profile): Promise<BatchNormImplementation>;
}

export const BUILTINS: Record<string, Builtin> = {
  reference: {
    description: 'the float64 compensated reference (float32 and float64)',
    create: async (p) => createReference(p),
  },
  'cpu-f32': {
    description: 'the optimized float32 CPU kernel, TypeScript engine',
    create: async (p) => createCpuF32(p, { engine: 'ts' }),
  },
  'cpu-f32-wasm': {
    description: 'the optimized float32 CPU kernel, WebAssembly SIMD engine',
    create: async (p) => createCpuF32(p, { engine: 'wasm' }),
  },
  gpu: {
    description: 'the gpu.js kernel in headless-gl (needs gpu.js, a built `gl` and an X display: xvfb-run -a)',
    create: async (p) => {
      const { createGpu, gpuAvailability } = await import('./kernels/gpu/index.js');
      const probe = await gpuAvailability('headlessgl');
      // never let a fallback pass as the GPU path
      if (!probe.available) throw new UsageError(`the gpu built-in cannot run here: ${probe.reason}`);
      return createGpu(p, { mode: 'headlessgl' });
    },
  },
  'tfjs-cpu': {
    description: 'TensorFlow.js tf.layers.batchNormalization on the CPU backend (keras profile, float32, channels last; needs @tensorflow/tfjs)',
    create: async (p) => (await import('./adapters/tfjs.js')).createTfjsAdapter('cpu', p),
  },
  'tfjs-wasm': {
    description: 'TensorFlow.js tf.layers.batchNormalization on the WASM backend (keras profile, float32, channels last; needs @tensorflow/tfjs-backend-wasm)',
    create: async (p) => (await import('./adapters/tfjs.js')).createTfjsAdapter('wasm', p),
  },
  onnxruntime: {
    description: 'onnxruntime-node, a one-node ONNX BatchNormalization, opset 15 (onnx profile, axis 1, no backward; needs onnxruntime-node)',
    create: async (p) => (await import('./adapters/onnxruntime.js')).createOnnxRuntimeAdapter(p),
  },
};

export async function createBuiltin(name: string, profile?: ProfileName | Profile): Promise<BatchNormImplementation> {
  const b = BUILTINS[name];
  if (!b) throw new UsageError(`unknown built-in "${name}"; available: ${Object.keys(BUILTINS).join(', ')} (see --builtin list)`);
  return b.create(profile);
}
