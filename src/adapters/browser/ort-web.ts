/**
 * Page side of the built-ins `ort-web` and `ort-webgpu`: onnxruntime-web 1.30 running the
 * one-node BatchNormalization model of ../ort-core.ts (shared with the Node `onnxruntime`
 * built-in), on the wasm execution provider (one thread: results do not depend on the page's
 * core count) or the webgpu one.
 *
 * Declared: what the operator and the provider accept. Channel axis 1 (the operator's only
 * layout), any rank ≥ 2; on wasm ORT's CPU kernels, compiled to wasm: float32, float64, and
 * float16 with float32 or float16 parameters, as onnxruntime-node; float32 on webgpu (its BatchNormalization shader is float32 or float16), inference
 * only on webgpu (training mode is refused). No backward (no training ops in onnxruntime-web).
 *
 * `graphOptimizationLevel: 'disabled'`: the model runs as written (no fusions). On webgpu the
 * BatchNormalization node runs on the provider's own WGSL kernel (its errors name "[WebGPU]
 * Kernel"); ORT may still place a node the provider lacks on its wasm CPU kernels, which for this
 * one-node inference model does not happen (docs/adapters.md).
 */
import * as ort from 'onnxruntime-web';
import { ORT_CPU_PRECISIONS, ortBatchNormAdapter } from '../ort-core.js';

export async function createOrtWebAdapter(provider: 'wasm' | 'webgpu', wasmPaths: string) {
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const impl = ortBatchNormAdapter(ort as unknown as Parameters<typeof ortBatchNormAdapter>[0], {
    name: `onnxruntime-web ${ort.env.versions?.web ?? ort.env.versions?.common ?? ''} BatchNormalization (opset 15), ${provider} execution provider`,
    profile: 'onnx',
    // wasm: ORT's CPU kernels, as onnxruntime-node; webgpu: float32 here (its float16 shaders need
    // the shader-f16 feature, which SwiftShader's adapter lacks)
    precisions: provider === 'wasm' ? ORT_CPU_PRECISIONS : [{ dtype: 'float32', paramDtype: 'float32' }],
    provider: `onnxruntime-web's ${provider} BatchNormalization`,
    sessionOptions: { executionProviders: [provider], graphOptimizationLevel: 'disabled' },
  });
  // The webgpu provider refuses training mode ("[WebGPU] Kernel BatchNormalization failed. Error:
  // BatchNormalization trainingMode is not supported yet", onnxruntime-web 1.30): not an op it has.
  if (provider === 'webgpu') delete (impl as { forwardTrain?: unknown }).forwardTrain;
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
