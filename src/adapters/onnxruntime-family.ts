/**
 * Built-ins `ort-layernorm`, `ort-layernorm-stash0`, `ort-layernorm-decomposed`, `ort-rmsnorm`, `ort-rmsnorm-decomposed`,
 * `ort-groupnorm`, `ort-groupnorm-18`, `ort-instancenorm`: onnxruntime-node running one-node ONNX
 * models of the normalization family (./ort-family.ts, shared with the browser built-ins
 * ort-web-<variant> and ort-webgpu-<variant>). Profile onnx; one thread (results do not depend
 * on the machine's core count); the CPU provider's precisions (float32, float64 where it has a
 * kernel, float16); forward only.
 */
import { createRequire } from 'node:module';
import type { BatchNormImplementation, Profile, ProfileName } from '../contract/contract.js';
import { UsageError } from '../contract/errors.js';
import { ORT_FAMILY_VARIANTS, ortFamilyAdapter, type OrtFamilyVariant } from './ort-family.js';

type Ort = typeof import('onnxruntime-node');

export async function createOnnxRuntimeFamilyAdapter(variant: OrtFamilyVariant, profile: ProfileName | Profile = 'onnx'): Promise<BatchNormImplementation & { close(): Promise<void> }> {
  let ort: Ort;
  try {
    ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
  } catch (e) {
    throw new UsageError(`the ort-${variant} built-in needs the onnxruntime-node package (npm i -D onnxruntime-node): ${e instanceof Error ? e.message : String(e)}`);
  }
  const v = ORT_FAMILY_VARIANTS[variant];
  return ortFamilyAdapter(ort as unknown as Parameters<typeof ortFamilyAdapter>[0], variant, {
    name: `onnxruntime-node ${ort.env.versions?.common ?? ''} ${v.form}`.replace('  ', ' '),
    profile,
    precisions: v.cpuPrecisions,
    ...(v.cpuAccumulation ? { accumulation: v.cpuAccumulation } : {}),
    provider: `onnxruntime-node's CPU ${v.form}`,
    sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
}
