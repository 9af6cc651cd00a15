/**
 * Built-in adapters `tfjs-cpu` and `tfjs-wasm`: TensorFlow.js's own Batch Normalization layer,
 * `tf.layers.batchNormalization`, on the CPU (pure JS) or WASM backend (the layer code is shared
 * with the browser built-ins: ./tfjs-layer.ts), and (0.3.0) the family's layerNorm and
 * layerNormBackward through `tf.layers.layerNormalization` (./tfjs-layernorm.ts).
 *
 * Profile keras (TF.js layers: decay momentum, biased variance, m = 1 allowed), float32 only
 * (TF.js has no float64). Every channel axis, as the layer's API does (`axis` is any integer;
 * tfjs-layers normalization.ts), and every rank: the door declares what the framework accepts
 * and lets the judge say what goes wrong, never narrowing to hide a bug. What goes wrong
 * (docs/adapters.md): with a channel axis other than the last, the layer's training and
 * inference paths end in `tf.batchNorm`, which broadcasts the rank-1 gamma, beta, mean and
 * variance along the LAST axis (tensorflow/tfjs#1106), so a channels-first tensor is normalized
 * with the wrong channel's parameters; rank 5 is refused by the layer itself.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BatchNormImplementation, Profile, ProfileName } from '../contract/contract.js';
import { UsageError } from '../contract/errors.js';
import { tfjsLayerAdapter } from './tfjs-layer.js';
import { tfjsLayerNormOps } from './tfjs-layernorm.js';

type Tf = typeof import('@tensorflow/tfjs');
export type TfjsBackend = 'cpu' | 'wasm';

let tfPromise: Promise<Tf> | undefined;
async function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    try {
      return (await import('@tensorflow/tfjs')) as unknown as Tf;
    } catch (e) {
      tfPromise = undefined;
      throw new UsageError(`the tfjs built-ins need @tensorflow/tfjs (npm i -D @tensorflow/tfjs): ${e instanceof Error ? e.message : String(e)}`);
    }
  })();
  return tfPromise;
}

let wasmReady: Promise<void> | undefined;
async function loadWasm(tf: Tf): Promise<void> {
  wasmReady ??= (async () => {
    let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
    let dist: string;
    try {
      wasm = await import('@tensorflow/tfjs-backend-wasm');
      dist = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    } catch (e) {
      wasmReady = undefined;
      throw new UsageError(`the tfjs-wasm built-in needs @tensorflow/tfjs-backend-wasm (npm i -D @tensorflow/tfjs-backend-wasm): ${e instanceof Error ? e.message : String(e)}`);
    }
    // the .wasm binaries from node_modules: nothing is fetched
    wasm.setWasmPaths(`${dist}/`);
    if (!(await tf.setBackend('wasm'))) throw new UsageError('TF.js could not initialize its wasm backend');
    await tf.ready();
  })();
  return wasmReady;
}

export async function createTfjsAdapter(backend: TfjsBackend, profile: ProfileName | Profile = 'keras'): Promise<BatchNormImplementation> {
  const tf = await loadTf();
  if (backend === 'wasm') await loadWasm(tf);
  const before = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  // and the family's layerNorm / layerNormBackward through tf.layers.layerNormalization (./tfjs-layernorm.ts)
  return {
    ...tfjsLayerAdapter(tf, { name: `TF.js ${tf.version.tfjs} ${backend} backend, tf.layers.batchNormalization and tf.layers.layerNormalization`, profile, before }),
    ...tfjsLayerNormOps(tf, before),
  };
}
