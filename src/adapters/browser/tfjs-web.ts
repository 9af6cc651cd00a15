/**
 * Page side of the built-ins `tfjs-webgl` and `tfjs-webgpu` (bundled by the browser door with
 * the entry `export default await createTfjsWebAdapter('<backend>')`): TF.js 4.22's
 * tf.layers.batchNormalization (./tfjs-layer.ts, shared with tfjs-cpu/tfjs-wasm) on the WebGL or
 * WebGPU backend of headless Chromium (SwiftShader: docs/browser.md), and (0.3.0) the family's
 * layerNorm / layerNormBackward through tf.layers.layerNormalization (../tfjs-layernorm.ts).
 *
 * Declared: everything the API accepts. float32 only (TF.js has no float64 or float16 tensors);
 * any channel axis (the layer takes `axis`), any rank the layer takes. The judge reports what
 * goes wrong (rank 5, the channels-first path).
 *
 * Made honest before it runs:
 * - the backend must be the one named: setBackend() must succeed and getBackend() must say so,
 *   otherwise loading fails (TF.js would otherwise fall back to cpu silently);
 * - WEBGL_CPU_FORWARD / WEBGPU_CPU_FORWARD are turned off: by default TF.js runs ops on small
 *   tensors (under 128 / 1000 elements) on its CPU backend, so most cases would never reach GLSL
 *   or WGSL;
 * - the facts that change precision are measured and put in the name: the WebGL version, whether
 *   float32 textures are renderable (otherwise TF.js stores float16 textures), packing, and whether
 *   the shader arithmetic flushes subnormals (a probe: 1e-40 · 1 and 2⁻¹²⁶ / 4 through a kernel).
 *   A measured flush is declared (`subnormals: 'flush-to-zero'`, allowed by GLSL ES 3.00 §4.5.1
 *   and WGSL), so the tolerance uses the smallest normal as its underflow unit.
 * - accumulation: float32, 'sequential'. TF.js's WebGL reduction sums windows of
 *   nearestDivisor(m, ⌊√m⌋) values in vec4 steps, then reduces the window sums again; when m is
 *   prime the window is m itself, so no tile bound holds for every m; the WebGPU reduction runs a
 *   strided sequential sum per thread then a workgroup tree. m − 1 additions is the depth bound
 *   that holds for both, for every m.
 */
import * as tf from '@tensorflow/tfjs';
import type { AccumulationInfo } from '../../contract/contract.js';
import { tfjsLayerAdapter } from '../tfjs-layer.js';
import { tfjsLayerNormOps } from '../tfjs-layernorm.js';

export type TfjsWebBackend = 'webgl' | 'webgpu';

/** Does the backend's arithmetic flush subnormals? Two probes through real kernels. */
async function flushesSubnormals(): Promise<{ flushes: boolean; detail: string }> {
  const tiny = 1e-40; // subnormal in float32 (smallest normal 1.18e-38)
  const first = async (t: import('@tensorflow/tfjs').Tensor) => {
    try {
      return ((await t.data()) as Float32Array)[0]!;
    } finally {
      t.dispose();
    }
  };
  const a = await first(tf.tidy(() => tf.mul(tf.tensor1d([tiny, tiny, tiny, tiny]), tf.scalar(1))));
  const b = await first(tf.tidy(() => tf.div(tf.tensor1d([2 ** -126, 2 ** -126, 2 ** -126, 2 ** -126]), tf.scalar(4))));
  const flushes = a === 0 || b === 0;
  return { flushes, detail: `1e-40*1 = ${a}, 2^-126/4 = ${b}` };
}

export async function createTfjsWebAdapter(backend: TfjsWebBackend, profile: 'keras' | 'tfjs' = 'keras') {
  if (backend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  tf.env().set(backend === 'webgl' ? 'WEBGL_CPU_FORWARD' : 'WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js could not initialize its ${backend} backend here`);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`TF.js is on backend ${tf.getBackend()}, not ${backend}`);
  const facts: string[] = [];
  if (backend === 'webgl') {
    const env = tf.env();
    facts.push(`WebGL ${env.getNumber('WEBGL_VERSION')}`);
    facts.push(env.getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? 'float32 textures' : 'FLOAT16 TEXTURES');
    facts.push(env.getBool('WEBGL_PACK') ? 'packed' : 'unpacked');
  }
  const probe = await flushesSubnormals();
  facts.push(probe.flushes ? `flushes subnormals (${probe.detail})` : `gradual underflow (${probe.detail})`);
  const accumulation: AccumulationInfo = { dtype: 'float32', order: 'sequential', ...(probe.flushes ? { subnormals: 'flush-to-zero' as const } : {}) };
  const before = async () => {
    if (tf.getBackend() !== backend) throw new Error(`TF.js left the ${backend} backend (now ${tf.getBackend()})`);
  };
  // and the family's layerNorm / layerNormBackward through tf.layers.layerNormalization (../tfjs-layernorm.ts)
  return {
    ...tfjsLayerAdapter(tf, { name: `TF.js ${tf.version.tfjs} ${backend} backend, tf.layers.batchNormalization and tf.layers.layerNormalization [${facts.join(', ')}]`, profile, accumulation, before }),
    ...tfjsLayerNormOps(tf, before),
  };
}
