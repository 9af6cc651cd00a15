/**
 * A one-node ONNX BatchNormalization (opset 15; inference, and training_mode = 1 for
 * forwardTrain) run by any onnxruntime binding: onnxruntime-node (./onnxruntime.ts) and
 * onnxruntime-web in a page (./browser/ort-web.ts) share this code, given the binding's `ort`.
 * Channel axis 1 (the operator's only layout). No backward: the gradient op
 * (BatchNormalizationGrad) exists only in ORT training builds, so backward is "not supported".
 * The batch mean and variance (not outputs of opset 15's BatchNormalization) come from ReduceMean
 * nodes in the same model, run by ORT.
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import type { AccumulationInfo, BatchNormImplementation, DType, ForwardInferRequest, ForwardTrainRequest, Profile, ProfileName } from '../contract.js';
import { batchNormModel } from './onnx-model.js';

type Ort = typeof import('onnxruntime-common');
type Session = import('onnxruntime-common').InferenceSession;
type SessionOptions = import('onnxruntime-common').InferenceSession.SessionOptions;

export interface OrtAdapterOptions {
  name: string;
  profile: ProfileName | Profile;
  dtypes: Array<'float32' | 'float64'>;
  sessionOptions: SessionOptions;
  accumulation?: AccumulationInfo | Partial<Record<DType, AccumulationInfo>>;
}

export function ortBatchNormAdapter(ort: Ort, opts: OrtAdapterOptions): BatchNormImplementation & { close(): Promise<void> } {
  const sessions = new Map<string, Session>();
  const session = async (shape: number[], training: boolean, eps: number, momentum: number, dtype: 'float32' | 'float64') => {
    const key = JSON.stringify([shape, training, eps, momentum, dtype]);
    let s = sessions.get(key);
    if (!s) {
      s = await ort.InferenceSession.create(batchNormModel({ shape, training, epsilon: eps, momentum, dtype, batchStats: training }), opts.sessionOptions);
      sessions.set(key, s);
      if (sessions.size > 64) {
        const [oldKey, old] = sessions.entries().next().value as [string, Session];
        sessions.delete(oldKey);
        await old.release();
      }
    }
    return s;
  };
  const dtypeOf = (a: Float32Array | Float64Array) => (a instanceof Float32Array ? 'float32' : 'float64');
  const feeds = (req: ForwardInferRequest | ForwardTrainRequest) => {
    const dt = dtypeOf(req.x);
    const C = req.shape[1]!;
    // ORT may read but never writes its inputs; copies keep the harness's arrays untouched regardless
    const t = (a: Float32Array | Float64Array, dims: number[]) => new ort.Tensor(dt, a.slice(), dims);
    return { X: t(req.x, req.shape), S: t(req.gamma, [C]), B: t(req.beta, [C]), M: t(req.runningMean, [C]), V: t(req.runningVar, [C]) };
  };
  const requireAxis1 = (axis: number) => {
    if (axis !== 1) throw new Error(`ONNX BatchNormalization takes the channel on axis 1, got axis ${axis}`);
  };
  const out = (r: Record<string, import('onnxruntime-common').Tensor>, name: string) => r[name]!.data as Float32Array | Float64Array;
  return {
    name: opts.name,
    profile: opts.profile,
    dtypes: opts.dtypes,
    axes: 'first',
    ...(opts.accumulation ? { accumulation: opts.accumulation } : {}),
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
