/**
 * Built-in adapter `onnxruntime`: onnxruntime-node running a one-node ONNX BatchNormalization
 * (opset 15; inference, and training_mode = 1 for forwardTrain). Profile onnx, channel axis 1
 * (the operator's only layout), float32 and float64, and float16 (contract 0.2.0) with float32
 * or float16 parameters (ORT's CPU provider has no bfloat16 BatchNormalization). No backward: the gradient op
 * (BatchNormalizationGrad) exists only in ORT training builds, so backward is "not supported".
 * The batch mean and variance (not outputs of opset 15's BatchNormalization) come from
 * ReduceMean nodes in the same model, run by ORT.
 */
import { createRequire } from 'node:module';
import type { Arr, BatchNormImplementation, ForwardInferRequest, ForwardTrainRequest, Precision, Profile, ProfileName } from '../contract.js';
import { precisionOfRequest } from '../dtypes.js';
import { UsageError } from '../errors.js';
import { batchNormModel } from './onnx-model.js';

type Ort = typeof import('onnxruntime-node');

/** float16 x with float32 parameters (ONNX T = float16, T1 = T2 = float32) or float16 ones; no bfloat16 kernel on CPU. */
const PRECISIONS: Precision[] = [
  { dtype: 'float32', paramDtype: 'float32' },
  { dtype: 'float64', paramDtype: 'float64' },
  { dtype: 'float16', paramDtype: 'float32' },
  { dtype: 'float16', paramDtype: 'float16' },
];
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
  type OrtDType = 'float32' | 'float64' | 'float16';
  const session = async (shape: number[], training: boolean, eps: number, momentum: number, p: { dtype: OrtDType; paramDtype: OrtDType }) => {
    const key = JSON.stringify([shape, training, eps, momentum, p.dtype, p.paramDtype]);
    let s = sessions.get(key);
    if (!s) {
      s = await ort.InferenceSession.create(batchNormModel({ shape, training, epsilon: eps, momentum, dtype: p.dtype, paramDtype: p.paramDtype, batchStats: training }), {
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
  const precisionOf = (req: ForwardInferRequest | ForwardTrainRequest) => {
    const p = precisionOfRequest(req);
    const ok = PRECISIONS.some((q) => q.dtype === p.dtype && q.paramDtype === p.paramDtype);
    if (!ok) throw new Error(`onnxruntime's CPU BatchNormalization has no ${p.dtype} kernel with ${p.paramDtype} parameters`);
    return p as { dtype: OrtDType; paramDtype: OrtDType };
  };
  const feeds = (req: ForwardInferRequest | ForwardTrainRequest) => {
    const { dtype, paramDtype } = precisionOf(req);
    const C = req.shape[1]!;
    // ORT may read but never writes its inputs; copies keep the harness's arrays untouched regardless
    // (float16 tensors take the Uint16Array bit patterns as they are)
    const t = (dt: OrtDType, a: Arr, dims: number[]) => new ort.Tensor(dt, a.slice() as never, dims);
    return { X: t(dtype, req.x, req.shape), S: t(paramDtype, req.gamma, [C]), B: t(paramDtype, req.beta, [C]), M: t(paramDtype, req.runningMean, [C]), V: t(paramDtype, req.runningVar, [C]) };
  };
  const requireAxis1 = (axis: number) => {
    if (axis !== 1) throw new Error(`ONNX BatchNormalization takes the channel on axis 1, got axis ${axis}`);
  };
  const out = (r: Record<string, import('onnxruntime-node').Tensor>, name: string) => r[name]!.data as Arr;
  return {
    name: `onnxruntime-node ${ort.env.versions?.common ?? ''} BatchNormalization (opset 15)`.replace('  ', ' '),
    profile,
    dtypes: ['float32', 'float64', 'float16'],
    precisions: PRECISIONS,
    axes: 'first',
    async forwardTrain(req) {
      requireAxis1(req.axis);
      const s = await session(req.shape, true, req.eps, req.momentum, precisionOf(req));
      const r = await s.run(feeds(req));
      return { y: out(r, 'Y'), mean: out(r, 'MEAN'), variance: out(r, 'VAR'), runningMean: out(r, 'RM'), runningVar: out(r, 'RV') };
    },
    async forwardInfer(req) {
      requireAxis1(req.axis);
      const s = await session(req.shape, false, req.eps, 0.9, precisionOf(req));
      const r = await s.run(feeds(req));
      return { y: out(r, 'Y') };
    },
    async close() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
}
