/**
 * TensorFlow.js's own Batch Normalization layer, `tf.layers.batchNormalization`, as a contract
 * implementation, given a loaded `tf` on any backend: the Node built-ins (tfjs-cpu, tfjs-wasm:
 * ./tfjs.ts) and the browser built-ins (tfjs-webgl, tfjs-webgpu: ./browser/) share this code.
 *
 * Training and inference go through `layer.apply(x, {training})` with the weights set to the
 * request's gamma, beta and running statistics; the running statistics after a step are the
 * layer's moving weights; the batch mean and variance are `tf.moments` over the same axes (what
 * the layer itself uses). Gradients: `tf.variableGrads` of sum(dy * layer(x)) over x, gamma and
 * beta. Declared: what the layer's API accepts, so the judge says what goes wrong: any channel
 * axis (the layer's `axis` is the request's), any rank, float32 (TF.js has no float64).
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import type { AccumulationInfo, Arr, BackwardRequest, BatchNormImplementation, ForwardInferRequest, ForwardTrainRequest, Profile, ProfileName } from '../contract/contract.js';

type Tf = typeof import('@tensorflow/tfjs');
type Tensor = import('@tensorflow/tfjs').Tensor;
type Variable = import('@tensorflow/tfjs').Variable;
type Layer = ReturnType<Tf['layers']['batchNormalization']>;
type F = Arr;

export interface TfjsLayerOptions {
  name: string;
  profile: ProfileName | Profile;
  accumulation?: AccumulationInfo;
  /** Called before every op (e.g. to make sure the right backend is active). */
  before?: () => Promise<void>;
}

export function tfjsLayerAdapter(tf: Tf, opts: TfjsLayerOptions): BatchNormImplementation {
  const makeLayer = (req: { shape: number[]; axis: number; eps: number; gamma: F; beta?: F; runningMean?: F; runningVar?: F }, momentum = 0.99): Layer => {
    const C = req.shape[req.axis]!;
    // the request's channel axis, as a user of the layer would pass it
    const layer = tf.layers.batchNormalization({ axis: req.axis, momentum, epsilon: req.eps });
    layer.build(req.shape);
    const w = (a: F | undefined, fill: number) => (a ? tf.tensor1d(Float32Array.from(a)) : tf.fill([C], fill));
    const ws = [w(req.gamma, 1), w(req.beta, 0), w(req.runningMean, 0), w(req.runningVar, 1)];
    layer.setWeights(ws);
    tf.dispose(ws);
    return layer;
  };
  // layer.dispose() refuses a layer only ever applied to concrete tensors; free its variables
  const release = (layer: Layer) => {
    for (const w of layer.weights) w.dispose();
  };
  /**
   * Read tensors back asynchronously and free them: data(), never dataSync(), which on the WebGPU
   * backend in headless Chromium (SwiftShader) returns zeros and loses the device (docs/browser.md).
   */
  const read = async <K extends string>(ts: Record<K, Tensor>): Promise<Record<K, Float32Array>> => {
    try {
      const out = {} as Record<K, Float32Array>;
      for (const k of Object.keys(ts) as K[]) out[k] = Float32Array.from((await ts[k].data()) as Float32Array);
      return out;
    } finally {
      tf.dispose(Object.values(ts) as Tensor[]);
    }
  };
  const before = opts.before ?? (async () => undefined);

  return {
    name: opts.name,
    profile: opts.profile,
    dtypes: ['float32'],
    axes: 'any',
    ...(opts.accumulation ? { accumulation: opts.accumulation } : {}),
    async forwardTrain(req: ForwardTrainRequest) {
      await before();
      const layer = makeLayer(req, req.momentum);
      try {
        const outs = tf.tidy(() => {
          const x = tf.tensor(Float32Array.from(req.x), req.shape);
          const y = layer.apply(x, { training: true }) as Tensor;
          const axes = req.shape.map((_, k) => k).filter((k) => k !== req.axis);
          const { mean, variance } = tf.moments(x, axes);
          const w = layer.getWeights();
          return { y, mean, variance, runningMean: tf.clone(w[2]!), runningVar: tf.clone(w[3]!) };
        });
        return await read(outs);
      } finally {
        release(layer);
      }
    },
    async forwardInfer(req: ForwardInferRequest) {
      await before();
      const layer = makeLayer(req);
      try {
        return await read(tf.tidy(() => ({ y: layer.apply(tf.tensor(Float32Array.from(req.x), req.shape), { training: false }) as Tensor })));
      } finally {
        release(layer);
      }
    },
    async backward(req: BackwardRequest) {
      await before();
      const layer = makeLayer(req);
      const xv = tf.variable(tf.tensor(Float32Array.from(req.x), req.shape), true);
      try {
        const outs = tf.tidy(() => {
          const dy = tf.tensor(Float32Array.from(req.dy), req.shape);
          const [gammaVar, betaVar] = layer.trainableWeights.map((v) => v.read() as Variable);
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv, { training: req.training }) as Tensor, dy)) as import('@tensorflow/tfjs').Scalar, [
            xv,
            gammaVar!,
            betaVar!,
          ]);
          return { dx: grads[xv.name]!, dgamma: grads[gammaVar!.name]!, dbeta: grads[betaVar!.name]! };
        });
        return await read(outs);
      } finally {
        xv.dispose();
        release(layer);
      }
    },
  };
}
