/**
 * Built-in adapter `onnxruntime`: onnxruntime-node running a one-node ONNX BatchNormalization
 * (./ort-core.ts, shared with the browser built-ins ort-web and ort-webgpu). Profile onnx,
 * channel axis 1 (the operator's only layout), float32 and float64, and float16 (contract 0.2.0)
 * with float32 or float16 parameters (ORT's CPU provider has no bfloat16 BatchNormalization).
 * No backward (BatchNormalizationGrad exists only in ORT training builds).
 */
import { createRequire } from 'node:module';
import type { BatchNormImplementation, Profile, ProfileName } from '../contract/contract.js';
import { UsageError } from '../contract/errors.js';
import { ORT_CPU_PRECISIONS, ortBatchNormAdapter } from './ort-core.js';

type Ort = typeof import('onnxruntime-node');

async function loadOrt(): Promise<Ort> {
  try {
    // CommonJS package with a native addon
    return createRequire(import.meta.url)('onnxruntime-node') as Ort;
  } catch (e) {
    throw new UsageError(`the onnxruntime built-in needs the onnxruntime-node package (npm i -D onnxruntime-node): ${e instanceof Error ? e.message : String(e)}`);
  }
}

export async function createOnnxRuntimeAdapter(profile: ProfileName | Profile = 'onnx'): Promise<BatchNormImplementation & { close(): Promise<void> }> {
  const ort = await loadOrt();
  return ortBatchNormAdapter(ort as unknown as Parameters<typeof ortBatchNormAdapter>[0], {
    name: `onnxruntime-node ${ort.env.versions?.common ?? ''} BatchNormalization (opset 15)`.replace('  ', ' '),
    profile,
    precisions: ORT_CPU_PRECISIONS,
    provider: "onnxruntime's CPU BatchNormalization",
    sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
}
