/**
 * Page side of the built-ins `ort-web` and `ort-webgpu`: onnxruntime-web 1.30 running the
 * one-node BatchNormalization model of ../ort-core.ts (shared with the Node `onnxruntime`
 * built-in), on the wasm execution provider (one thread: results do not depend on the page's
 * core count) or the webgpu one.
 *
 * Declared: what the operator and the provider accept. Channel axis 1 (the operator's only
 * layout), any rank ≥ 2, float32 and float64 on wasm (ORT's CPU kernels, compiled to wasm,
 * register both), float32 on webgpu (its BatchNormalization and ReduceMean shaders are float32
 * or float16). No backward (no training ops in onnxruntime-web).
 *
 * With `graphOptimizationLevel: 'disabled'` and, on webgpu, ORT's own check that every node was
 * placed on webgpu (a node the provider lacks would silently run on the wasm CPU kernels
 * otherwise): see `webgpuPlacement`.
 */
import * as ort from 'onnxruntime-web';
import { ortBatchNormAdapter } from '../ort-core.js';

export async function createOrtWebAdapter(provider: 'wasm' | 'webgpu', wasmPaths: string) {
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const impl = ortBatchNormAdapter(ort as unknown as Parameters<typeof ortBatchNormAdapter>[0], {
    name: `onnxruntime-web ${ort.env.versions?.web ?? ort.env.versions?.common ?? ''} BatchNormalization (opset 15), ${provider} execution provider`,
    profile: 'onnx',
    dtypes: provider === 'wasm' ? ['float32', 'float64'] : ['float32'],
    sessionOptions: { executionProviders: [provider], graphOptimizationLevel: 'disabled' },
  });
  // fail at load, not per call, when the provider cannot start here
  await impl.forwardInfer!({
    x: new Float32Array([1, 2]),
    shape: [2, 1],
    axis: 1,
    gamma: new Float32Array([1]),
    beta: new Float32Array([0]),
    eps: 1e-5,
    runningMean: new Float32Array([0]),
    runningVar: new Float32Array([1]),
  });
  return impl;
}
