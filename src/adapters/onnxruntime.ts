/**
 * Built-in adapter `onnxruntime`: onnxruntime-node running a one-node ONNX BatchNormalization
 * (./ort-core.ts, shared with the browser built-in ort-web). Profile onnx, channel axis 1,
 * float32 and float64, no backward.
 */
import { createRequire } from 'node:module';
import type { BatchNormImplementation, Profile, ProfileName } from '../contract.js';
import { UsageError } from '../errors.js';
import { ortBatchNormAdapter } from './ort-core.js';

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
    dtypes: ['float32', 'float64'],
    sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
}
