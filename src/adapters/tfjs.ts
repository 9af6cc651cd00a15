/**
 * Built-in adapters `tfjs-cpu` and `tfjs-wasm`: TensorFlow.js's own Batch Normalization layer,
 * `tf.layers.batchNormalization`, on the CPU (pure JS) or WASM backend (the layer code is shared
 * with the browser built-ins: ./tfjs-layer.ts).
 *
 * Profile keras (TF.js layers: decay momentum, biased variance, m = 1 allowed), float32 only
 * (TF.js has no float64), channel axis last only: `tf.batchNorm` applies rank-1 parameters by
 * flat index modulo C, so a channels-first layout is normalized with the wrong channel's
 * parameters (tensorflow/tfjs#1106); the layer is only trusted on its default axis -1.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BatchNormImplementation, Profile, ProfileName } from '../contract.js';
import { UsageError } from '../errors.js';
import { tfjsLayerAdapter } from './tfjs-layer.js';

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
  return tfjsLayerAdapter(tf, {
    name: `TF.js ${tf.version.tfjs} ${backend} backend, tf.layers.batchNormalization`,
    profile,
    axes: 'last',
    before: async () => {
      if (tf.getBackend() !== backend) await tf.setBackend(backend);
    },
  });
}
