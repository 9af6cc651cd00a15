/**
 * TensorFlow.js's own Layer Normalization layer, `tf.layers.layerNormalization`, as the family's
 * `layerNorm` and `layerNormBackward` ops, given a loaded `tf` on any backend: the Node built-ins
 * tfjs-cpu and tfjs-wasm (./tfjs.ts) and the browser ones tfjs-webgl and tfjs-webgpu
 * (./browser/tfjs-web.ts) gain these ops beside tf.layers.batchNormalization.
 *
 * The contract's axis k (normalize over [k, rank)) is the layer's `axis: [k, …, rank - 1]`, the
 * sorted trailing axes, so gamma and beta (of shape shape[k:]) are the contract's, element for
 * element. (Out-of-order axis lists, e.g. [3, 2], are not what the contract asks: the layer then
 * reshapes gamma instead of transposing it, fixtures/README.md.) Gamma and beta are set with
 * setWeights; the forward is `layer.apply(x)`; the backward is `tf.variableGrads` of
 * sum(dy * layer(x)) over x, gamma and beta (TF.js's own autodiff through the layer's ops).
 * The layer has no statistics outputs, so mean / invStdDev are not returned.
 *
 * Declared (by the built-in that carries these ops): float32 (TF.js has no float64 or float16
 * tensors), every axis >= 1 and every rank: the judge says what goes wrong.
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import type { Arr, LayerNormBackwardRequest, LayerNormRequest, NormBackwardResult, NormForwardResult } from '../contract/contract.js';

type Tf = typeof import('@tensorflow/tfjs');
type Tensor = import('@tensorflow/tfjs').Tensor;
type Variable = import('@tensorflow/tfjs').Variable;
type Layer = ReturnType<Tf['layers']['layerNormalization']>;

export function tfjsLayerNormOps(tf: Tf, before: () => Promise<void> = async () => undefined) {
  const makeLayer = (req: { shape: number[]; axis: number; eps: number; gamma: Arr; beta?: Arr }): Layer => {
    const axes = req.shape.map((_, k) => k).filter((k) => k >= req.axis);
    const layer = tf.layers.layerNormalization({ axis: axes, epsilon: req.eps });
    layer.build(req.shape);
    const pshape = req.shape.slice(req.axis);
    const ws = [tf.tensor(Float32Array.from(req.gamma), pshape), req.beta ? tf.tensor(Float32Array.from(req.beta), pshape) : tf.zeros(pshape)];
    layer.setWeights(ws);
    tf.dispose(ws);
    return layer;
  };
  // layer.dispose() refuses a layer only ever applied to concrete tensors; free its variables
  const release = (layer: Layer) => {
    for (const w of layer.weights) w.dispose();
  };
  /** Read back asynchronously (data(), never dataSync(): WebGPU in headless Chromium, docs/browser.md) and free. */
  const read = async <K extends string>(ts: Record<K, Tensor>): Promise<Record<K, Float32Array>> => {
    try {
      const out = {} as Record<K, Float32Array>;
      for (const k of Object.keys(ts) as K[]) out[k] = Float32Array.from((await ts[k].data()) as Float32Array);
      return out;
    } finally {
      tf.dispose(Object.values(ts) as Tensor[]);
    }
  };
  const requireFloat32 = (req: LayerNormRequest | LayerNormBackwardRequest) => {
    const d = req.dtype ?? (req.x instanceof Float32Array ? 'float32' : 'float64');
    if (d !== 'float32' || (req.paramDtype ?? d) !== 'float32') throw new Error(`TF.js has only float32 tensors, got ${d} with ${req.paramDtype ?? d} parameters`);
  };
  return {
    async layerNorm(req: LayerNormRequest): Promise<NormForwardResult> {
      requireFloat32(req);
      await before();
      const layer = makeLayer(req);
      try {
        return await read(tf.tidy(() => ({ y: layer.apply(tf.tensor(Float32Array.from(req.x), req.shape)) as Tensor })));
      } finally {
        release(layer);
      }
    },
    async layerNormBackward(req: LayerNormBackwardRequest): Promise<NormBackwardResult> {
      requireFloat32(req);
      await before();
      const layer = makeLayer(req);
      const xv = tf.variable(tf.tensor(Float32Array.from(req.x), req.shape), true);
      try {
        const outs = tf.tidy(() => {
          const dy = tf.tensor(Float32Array.from(req.dy), req.shape);
          const [gammaVar, betaVar] = layer.trainableWeights.map((v) => v.read() as Variable);
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv) as Tensor, dy)) as import('@tensorflow/tfjs').Scalar, [xv, gammaVar!, betaVar!]);
          return { dx: grads[xv.name]!, dgamma: tf.reshape(grads[gammaVar!.name]!, [-1]), dbeta: tf.reshape(grads[betaVar!.name]!, [-1]) };
        });
        return await read(outs);
      } finally {
        xv.dispose();
        release(layer);
      }
    },
  };
}
