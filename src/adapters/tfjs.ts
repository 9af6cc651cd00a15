/**
 * Built-in adapters `tfjs-cpu` and `tfjs-wasm`: TensorFlow.js's own Batch Normalization layer,
 * `tf.layers.batchNormalization`, on the CPU (pure JS) or WASM backend. Training and inference go
 * through `layer.apply(x, {training})` with the weights set to the request's gamma, beta and
 * running statistics; the running statistics after a step are the layer's moving weights; the
 * batch mean and variance are `tf.moments` over the same axes (what the layer itself uses).
 * Gradients: `tf.variableGrads` of sum(dy * layer(x)) over x, gamma and beta.
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
import type { Arr, BackwardRequest, BatchNormImplementation, ForwardInferRequest, ForwardTrainRequest, Profile, ProfileName } from '../contract.js';
import { UsageError } from '../errors.js';

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
  const use = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  type Tensor = import('@tensorflow/tfjs').Tensor;
  type Layer = ReturnType<Tf['layers']['batchNormalization']>;

  const makeLayer = (req: { shape: number[]; axis: number; eps: number; gamma: Arr; beta?: Arr; runningMean?: Arr; runningVar?: Arr }, momentum = 0.99): Layer => {
    const C = req.shape[req.axis]!;
    // the request's channel axis, as a user of the layer would pass it
    const layer = tf.layers.batchNormalization({ axis: req.axis, momentum, epsilon: req.eps });
    layer.build(req.shape);
    const w = (a: Arr | undefined, fill: number) => (a ? tf.tensor1d(Float32Array.from(a)) : tf.fill([C], fill));
    const ws = [w(req.gamma, 1), w(req.beta, 0), w(req.runningMean, 0), w(req.runningVar, 1)];
    layer.setWeights(ws);
    tf.dispose(ws);
    return layer;
  };
  // layer.dispose() refuses a layer only ever applied to concrete tensors; free its variables
  const release = (layer: Layer) => {
    for (const w of layer.weights) w.dispose();
  };
  const f32 = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);

  return {
    name: `TF.js ${tf.version.tfjs} ${backend} backend, tf.layers.batchNormalization`,
    profile,
    dtypes: ['float32'],
    axes: 'any',
    async forwardTrain(req: ForwardTrainRequest) {
      await use();
      const layer = makeLayer(req, req.momentum);
      try {
        return tf.tidy(() => {
          const x = tf.tensor(Float32Array.from(req.x), req.shape);
          const y = layer.apply(x, { training: true }) as Tensor;
          const axes = req.shape.map((_, k) => k).filter((k) => k !== req.axis);
          const { mean, variance } = tf.moments(x, axes);
          const w = layer.getWeights();
          return { y: f32(y), mean: f32(mean), variance: f32(variance), runningMean: f32(w[2]!), runningVar: f32(w[3]!) };
        });
      } finally {
        release(layer);
      }
    },
    async forwardInfer(req: ForwardInferRequest) {
      await use();
      const layer = makeLayer(req);
      try {
        return tf.tidy(() => ({ y: f32(layer.apply(tf.tensor(Float32Array.from(req.x), req.shape), { training: false }) as Tensor) }));
      } finally {
        release(layer);
      }
    },
    async backward(req: BackwardRequest) {
      await use();
      const layer = makeLayer(req);
      const xv = tf.variable(tf.tensor(Float32Array.from(req.x), req.shape), true);
      try {
        return tf.tidy(() => {
          const dy = tf.tensor(Float32Array.from(req.dy), req.shape);
          const [gammaVar, betaVar] = layer.trainableWeights.map((v) => v.read() as import('@tensorflow/tfjs').Variable);
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv, { training: req.training }) as Tensor, dy)) as import('@tensorflow/tfjs').Scalar, [
            xv,
            gammaVar!,
            betaVar!,
          ]);
          return { dx: f32(grads[xv.name]!), dgamma: f32(grads[gammaVar!.name]!), dbeta: f32(grads[betaVar!.name]!) };
        });
      } finally {
        xv.dispose();
        release(layer);
      }
    },
  };
}
