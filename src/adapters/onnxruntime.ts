/**
 * Built-in adapter `onnxruntime`: onnxruntime-node running a one-node ONNX BatchNormalization
 * (opset 15; inference, and training_mode = 1 for forwardTrain). Profile onnx, channel axis 1
 * (the operator's only layout), float32 and float64. No backward: the gradient op
 * (BatchNormalizationGrad) exists only in ORT training builds, so backward is "not supported".
 * The batch mean and variance (not outputs of opset 15's BatchNormalization) come from
 * ReduceMean nodes in the same model, run by ORT.
 */
import { createRequire } from 'node:module';
import type { Arr, BatchNormImplementation, ForwardInferRequest, ForwardTrainRequest, Profile, ProfileName } from '../contract.js';
import { UsageError } from '../errors.js';
import { batchNormModel } from './onnx-model.js';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

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
  const sessions = new Map<string, Session>();
  const session = async (shape: number[], training: boolean, eps: number, momentum: number, dtype: 'float32' | 'float64') => {
    const key = JSON.stringify([shape, training, eps, momentum, dtype]);
    let s = sessions.get(key);
    if (!s) {
      s = await ort.InferenceSession.create(batchNormModel({ shape, training, epsilon: eps, momentum, dtype, batchStats: training }), {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
      });
      sessions.set(key, s);
      if (sessions.size > 64) {
        const [oldKey, old] = sessions.entries().next().value as [string, Session];
        sessions.delete(oldKey);
        await old.release();
      }
    }
    return s;
  };
  const dtypeOf = (a: Arr) => (a instanceof Float32Array ? 'float32' : 'float64');
  const feeds = (req: ForwardInferRequest | ForwardTrainRequest) => {
    const dt = dtypeOf(req.x);
    const C = req.shape[1]!;
    // ORT may read but never writes its inputs; copies keep the harness's arrays untouched regardless
    const t = (a: Arr, dims: number[]) => new ort.Tensor(dt, (a as Float32Array | Float64Array).slice(), dims);
    return { X: t(req.x, req.shape), S: t(req.gamma, [C]), B: t(req.beta, [C]), M: t(req.runningMean, [C]), V: t(req.runningVar, [C]) };
  };
  const requireAxis1 = (axis: number) => {
    if (axis !== 1) throw new Error(`ONNX BatchNormalization takes the channel on axis 1, got axis ${axis}`);
  };
  const out = (r: Record<string, import('onnxruntime-node').Tensor>, name: string) => r[name]!.data as Float32Array | Float64Array;
  return {
    name: `onnxruntime-node ${ort.env.versions?.common ?? ''} BatchNormalization (opset 15)`.replace('  ', ' '),
    profile,
    dtypes: ['float32', 'float64'],
    axes: 'first',
    async forwardTrain(req) {
      requireAxis1(req.axis);
      const s = await session(req.shape, true, req.eps, req.momentum, dtypeOf(req.x));
      const r = await s.run(feeds(req));
      return { y: out(r, 'Y'), mean: out(r, 'MEAN'), variance: out(r, 'VAR'), runningMean: out(r, 'RM'), runningVar: out(r, 'RV') };
    },
    async forwardInfer(req) {
      requireAxis1(req.axis);
      const s = await session(req.shape, false, req.eps, 0.9, dtypeOf(req.x));
      const r = await s.run(feeds(req));
      return { y: out(r, 'Y') };
    },
    async close() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
}
