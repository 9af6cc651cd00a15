/**
 * A one-node ONNX BatchNormalization (opset 15; inference, and training_mode = 1 for
 * forwardTrain) run by any onnxruntime binding: onnxruntime-node (./onnxruntime.ts) and
 * onnxruntime-web in a page (./browser/ort-web.ts) share this code, given the binding's `ort`.
 * Channel axis 1 (the operator's only layout). The precisions are the binding's to declare
 * (float16 x with float32 or float16 parameters: ONNX's T / T1 / T2 split; Uint16Array bit
 * patterns go to ORT as they are). No backward: the gradient op (BatchNormalizationGrad) exists
 * only in ORT training builds, so backward is "not supported". The batch mean and variance (not
 * outputs of opset 15's BatchNormalization) come from ReduceMean nodes in the same model, run by ORT.
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import type { AccumulationInfo, Arr, BatchNormImplementation, DType, ForwardInferRequest, ForwardTrainRequest, Precision, Profile, ProfileName } from '../contract/contract.js';
import { precisionOfRequest } from '../contract/dtypes.js';
import { batchNormModel } from './onnx-model.js';

type Ort = typeof import('onnxruntime-common');
type Session = import('onnxruntime-common').InferenceSession;
type SessionOptions = import('onnxruntime-common').InferenceSession.SessionOptions;
type OrtDType = 'float32' | 'float64' | 'float16';

/**
 * ORT's CPU provider (onnxruntime-node; onnxruntime-web's wasm provider is the same kernels):
 * float16 x with float32 parameters (ONNX T = float16, T1 = T2 = float32) or float16 ones; no
 * bfloat16 BatchNormalization kernel.
 */
export const ORT_CPU_PRECISIONS: Precision[] = [
  { dtype: 'float32', paramDtype: 'float32' },
  { dtype: 'float64', paramDtype: 'float64' },
  { dtype: 'float16', paramDtype: 'float32' },
  { dtype: 'float16', paramDtype: 'float16' },
];

export interface OrtAdapterOptions {
  name: string;
  profile: ProfileName | Profile;
  /** What this binding's provider has kernels for; the dtypes follow. */
  precisions: Precision[];
  sessionOptions: SessionOptions;
  accumulation?: AccumulationInfo | Partial<Record<DType, AccumulationInfo>>;
  /** Words for the refusal of an undeclared precision, e.g. "onnxruntime's CPU BatchNormalization". */
  provider: string;
}

/** An output tensor's data as a contract array (also for the family's models: ./ort-family.ts). */
export function ortOutput(r: Record<string, import('onnxruntime-common').Tensor>, name: string): Arr {
  const d = r[name]!.data as unknown as ArrayBufferView & { length: number };
  // onnxruntime-web hands float16 back as a Float16Array where the runtime has one (Chromium
  // does, Node 20 does not); the contract's half arrays are Uint16Array bit patterns: the same bytes
  if (d.constructor.name === 'Float16Array') return new Uint16Array(d.buffer, d.byteOffset, d.length);
  return d as unknown as Arr;
}

export function ortBatchNormAdapter(ort: Ort, opts: OrtAdapterOptions): BatchNormImplementation & { close(): Promise<void> } {
  const sessions = new Map<string, Session>();
  const session = async (shape: number[], training: boolean, eps: number, momentum: number, p: { dtype: OrtDType; paramDtype: OrtDType }) => {
    const key = JSON.stringify([shape, training, eps, momentum, p.dtype, p.paramDtype]);
    let s = sessions.get(key);
    if (!s) {
      s = await ort.InferenceSession.create(batchNormModel({ shape, training, epsilon: eps, momentum, dtype: p.dtype, paramDtype: p.paramDtype, batchStats: training }), opts.sessionOptions);
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
    const ok = opts.precisions.some((q) => q.dtype === p.dtype && q.paramDtype === p.paramDtype);
    if (!ok) throw new Error(`${opts.provider} has no ${p.dtype} kernel with ${p.paramDtype} parameters`);
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
  const out = ortOutput;
  return {
    name: opts.name,
    profile: opts.profile,
    dtypes: [...new Set(opts.precisions.map((p) => p.dtype))],
    precisions: opts.precisions,
    axes: 'first',
    ...(opts.accumulation ? { accumulation: opts.accumulation } : {}),
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
