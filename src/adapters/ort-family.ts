/**
 * The normalization family through onnxruntime: one-node ONNX models (./onnx-family.ts, written
 * by the same writer as the BatchNormalization door) run by any onnxruntime binding,
 * onnxruntime-node (./onnxruntime-family.ts) and onnxruntime-web in a page
 * (./browser/ort-web-family.ts), given the binding's `ort`. One variant, one operator form, one
 * built-in (`ort-<variant>`, `ort-web-<variant>`, `ort-webgpu-<variant>`):
 *
 *   layernorm             LayerNormalization-17, stash_type 1 (float32 statistics; ONNX's default)
 *   layernorm-stash0      LayerNormalization-17, stash_type 0 (statistics in the input's type)
 *   layernorm-decomposed  ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul / Add, opset 15,
 *                         the graph exporters emitted before opset 17
 *   rmsnorm               RMSNormalization-23, stash_type 1
 *   rmsnorm-decomposed    Pow / ReduceMean / Add / Sqrt / Div / Mul, opset 15 (RMSNorm before opset 23)
 *   groupnorm             GroupNormalization-21 (scale and bias per channel), stash_type 1
 *   groupnorm-18          GroupNormalization-18 (scale and bias per group): see below
 *   instancenorm          InstanceNormalization-6
 *
 * Declared: what the operator and the provider accept, so the judge, not the adapter, says what
 * goes wrong. LayerNorm / RMSNorm: every first normalized axis >= 1 (the operator's `axis`), every
 * rank; GroupNorm / InstanceNorm: channels on axis 1 only (the operators' layout, "(N x C x D1 x …)"),
 * so `axes: 'first'`, every rank, every group count dividing C. Precisions: pure only (the
 * operators' Scale and B have X's type T; RMSNormalization-23's Y takes scale's type, so the
 * contract's mixed form, y in x's dtype with float32 parameters, is not expressible). The dtypes
 * are those the provider has kernels for (measured: onnxruntime-node 1.30 refuses float64 for
 * InstanceNormalization and for LayerNormalization with stash_type 0, "Could not find an
 * implementation for …"). Forward only: the gradient ops exist only in ORT training builds.
 *
 * Statistics outputs (optional in the contract): LayerNormalization's Mean and InvStdDev are
 * returned when their type U (the stash type) is at least as wide as the contract's paramDtype
 * (U float32 with float16 data: rounded once to float16 by the suite's conversion); they are left
 * out when U is narrower (float64 data with stash_type 1: float32 statistics by the operator's
 * definition, not an error to report). The other forms return y only (the operators have no
 * statistics outputs; the decomposed graphs have Y as their only output, as exported).
 *
 * GroupNormalization-18 takes scale and bias per *group*; the contract's gamma and beta are per
 * channel. Decision: when gamma and beta are each constant within every group (compared bit for
 * bit), the node gets them per group, the operator's own form; otherwise the node gets unit scale
 * and zero bias and per-channel gamma and beta are applied by Mul and Add nodes after it (what a
 * user of opset 18 writes, and what opset 21's function body does). The adapter's name says so.
 *
 * Sessions keep onnxruntime's default graph optimizations (the bindings' callers pass the session
 * options): a deployed model gets them, and they matter here: LayerNormFusion and
 * SimplifiedLayerNormFusion rewrite the decomposed graphs into single nodes (docs/adapters.md).
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import type { AccumulationInfo, Arr, BatchNormImplementation, DType, FamilyOp, GroupNormRequest, LayerNormRequest, Precision, Profile, ProfileName, RmsNormRequest } from '../contract/contract.js';
import { precisionOfRequest } from '../contract/dtypes.js';
import { encodeHalfArray } from '../numerics/half.js';
import { decomposedLayerNormModel, decomposedRmsNormModel, groupNormModel, instanceNormModel, layerNormModel, rmsNormModel, type OnnxDType } from './onnx-family.js';
import { ortOutput } from './ort-core.js';

type Ort = typeof import('onnxruntime-common');
type Session = import('onnxruntime-common').InferenceSession;
type SessionOptions = import('onnxruntime-common').InferenceSession.SessionOptions;

export type OrtFamilyVariant = 'layernorm' | 'layernorm-stash0' | 'layernorm-decomposed' | 'rmsnorm' | 'rmsnorm-decomposed' | 'groupnorm' | 'groupnorm-18' | 'instancenorm';

const P = (dtype: DType): Precision => ({ dtype, paramDtype: dtype });

export interface OrtFamilyVariantInfo {
  op: Extract<FamilyOp, 'layerNorm' | 'rmsNorm' | 'groupNorm' | 'instanceNorm'>;
  /** The operator form, for names and docs. */
  form: string;
  /** What onnxruntime's CPU provider (onnxruntime-node; onnxruntime-web's wasm) has kernels for. */
  cpuPrecisions: Precision[];
  /** Channel axis 1 only (GroupNormalization, InstanceNormalization). */
  channelsFirst: boolean;
  /** How the CPU kernel sums, where measured to differ from the judge's assumption (sequential sums; float32 for half). */
  cpuAccumulation?: Partial<Record<DType, AccumulationInfo>>;
}

export const ORT_FAMILY_VARIANTS: Readonly<Record<OrtFamilyVariant, OrtFamilyVariantInfo>> = {
  layernorm: {
    op: 'layerNorm',
    form: 'LayerNormalization-17, stash_type 1',
    cpuPrecisions: [P('float32'), P('float64'), P('float16')],
    channelsFirst: false,
    // Measured: onnxruntime 1.30's float16 LayerNormalization kernel forms the row mean by running
    // updates in float32, m += (x - m) / k (Welford), not by a sum: on rows whose float32 sums are
    // exact (-0.25, 0, -0.125, -0.125 repeated, N = 1024) its Mean output is -0.1249999850988388,
    // the Welford recurrence's value bit for bit, where any summation order gives -0.125 exactly.
    // The judge's declaration for that is order 'updates' (docs/CONTRACT.md, exact sums).
    cpuAccumulation: { float16: { dtype: 'float32', order: 'updates' } },
  },
  'layernorm-stash0': { op: 'layerNorm', form: 'LayerNormalization-17, stash_type 0', cpuPrecisions: [P('float32'), P('float16')], channelsFirst: false },
  'layernorm-decomposed': {
    op: 'layerNorm',
    form: 'decomposed LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add, opset 15)',
    cpuPrecisions: [P('float32'), P('float64'), P('float16')],
    channelsFirst: false,
  },
  rmsnorm: { op: 'rmsNorm', form: 'RMSNormalization-23, stash_type 1', cpuPrecisions: [P('float32'), P('float64'), P('float16')], channelsFirst: false },
  'rmsnorm-decomposed': {
    op: 'rmsNorm',
    form: 'decomposed RMSNorm (Pow/ReduceMean/Add/Sqrt/Div/Mul, opset 15)',
    cpuPrecisions: [P('float32'), P('float64'), P('float16')],
    channelsFirst: false,
  },
  groupnorm: { op: 'groupNorm', form: 'GroupNormalization-21 (per-channel scale), stash_type 1', cpuPrecisions: [P('float32'), P('float64'), P('float16')], channelsFirst: true },
  'groupnorm-18': {
    op: 'groupNorm',
    form: 'GroupNormalization-18 (per-group scale; per-channel gamma by Mul/Add after it unless constant within each group)',
    cpuPrecisions: [P('float32'), P('float64'), P('float16')],
    channelsFirst: true,
  },
  instancenorm: { op: 'instanceNorm', form: 'InstanceNormalization-6', cpuPrecisions: [P('float32'), P('float16')], channelsFirst: true },
};

export const ORT_FAMILY_VARIANT_NAMES = Object.keys(ORT_FAMILY_VARIANTS) as OrtFamilyVariant[];

export interface OrtFamilyOptions {
  name: string;
  profile: ProfileName | Profile;
  precisions: Precision[];
  sessionOptions: SessionOptions;
  /** Words for a refusal, e.g. "onnxruntime-node's CPU LayerNormalization". */
  provider: string;
  accumulation?: Partial<Record<DType, AccumulationInfo>>;
}

/** gamma / beta constant within each of G groups of C / G channels, bit for bit. */
function constantInGroups(a: Arr, groups: number): boolean {
  const per = a.length / groups;
  for (let g = 0; g < groups; g++) {
    for (let k = 1; k < per; k++) if (!Object.is(a[g * per + k], a[g * per])) return false; // -0 and 0 differ; NaN equals NaN
  }
  return true;
}
const perGroup = (a: Arr, groups: number): Arr => {
  const per = a.length / groups;
  const out = new (a.constructor as { new (n: number): Arr })(groups);
  for (let g = 0; g < groups; g++) out[g] = a[g * per]!;
  return out;
};

export function ortFamilyAdapter(ort: Ort, variant: OrtFamilyVariant, opts: OrtFamilyOptions): BatchNormImplementation & { close(): Promise<void> } {
  const v = ORT_FAMILY_VARIANTS[variant];
  const sessions = new Map<string, Session>();
  // one session per (rank, axis or groups, eps, dtype): the models' dims are symbolic (./onnx-family.ts)
  const session = async (key: unknown[], model: () => Uint8Array) => {
    const k = JSON.stringify(key);
    let s = sessions.get(k);
    if (!s) {
      s = await ort.InferenceSession.create(model(), opts.sessionOptions);
      sessions.set(k, s);
      if (sessions.size > 64) {
        const [oldKey, old] = sessions.entries().next().value as [string, Session];
        sessions.delete(oldKey);
        await old.release();
      }
    }
    return s;
  };
  const precisionOf = (req: LayerNormRequest | RmsNormRequest) => {
    const p = precisionOfRequest(req);
    if (!opts.precisions.some((q) => q.dtype === p.dtype && q.paramDtype === p.paramDtype)) {
      throw new Error(`${opts.provider} has no ${p.dtype} kernel with ${p.paramDtype} parameters`);
    }
    return p.dtype as OnnxDType;
  };
  // ORT may read but never writes its inputs; copies keep the harness's arrays untouched regardless
  const t = (dt: OnnxDType, a: Arr, dims: number[]) => new ort.Tensor(dt, a.slice() as never, dims);
  const requireChannelsFirst = (axis: number, rank: number) => {
    if (axis !== 1) throw new Error(`ONNX ${v.form.split(' ')[0]} takes the channel on axis 1 (N x C x D1 x …), got axis ${axis} of rank ${rank}`);
  };
  /** Statistics of type U as the contract's paramDtype: only when U is at least as wide (header comment). */
  const stats = (r: Record<string, import('onnxruntime-common').Tensor>, dtype: OnnxDType, stashType: 0 | 1) => {
    const u: OnnxDType = stashType === 1 ? 'float32' : dtype;
    if (u === dtype) return { mean: ortOutput(r, 'MEAN'), invStdDev: ortOutput(r, 'INVSTD') };
    if (dtype === 'float16') return { mean: encodeHalfArray(ortOutput(r, 'MEAN') as Float32Array, 'float16'), invStdDev: encodeHalfArray(ortOutput(r, 'INVSTD') as Float32Array, 'float16') };
    return {};
  };

  const impl: BatchNormImplementation & { close(): Promise<void> } = {
    name: opts.name,
    profile: opts.profile,
    dtypes: [...new Set(opts.precisions.map((p) => p.dtype))],
    precisions: opts.precisions,
    axes: v.channelsFirst ? 'first' : 'any',
    ...(opts.accumulation ? { accumulation: opts.accumulation } : {}),
    async close() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
  const P = (req: LayerNormRequest) => req.shape.slice(req.axis);
  if (variant === 'layernorm' || variant === 'layernorm-stash0') {
    const stashType = variant === 'layernorm' ? 1 : 0;
    impl.layerNorm = async (req) => {
      const dtype = precisionOf(req);
      const s = await session([req.shape.length, req.axis, req.eps, dtype], () => layerNormModel({ rank: req.shape.length, axis: req.axis, epsilon: req.eps, dtype, stashType }));
      const r = await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, P(req)), B: t(dtype, req.beta, P(req)) });
      return { y: ortOutput(r, 'Y'), ...stats(r, dtype, stashType) };
    };
  } else if (variant === 'layernorm-decomposed') {
    impl.layerNorm = async (req) => {
      const dtype = precisionOf(req);
      const s = await session([req.shape.length, req.axis, req.eps, dtype], () => decomposedLayerNormModel({ rank: req.shape.length, axis: req.axis, epsilon: req.eps, dtype }));
      const r = await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, P(req)), B: t(dtype, req.beta, P(req)) });
      return { y: ortOutput(r, 'Y') };
    };
  } else if (variant === 'rmsnorm-decomposed') {
    impl.rmsNorm = async (req) => {
      const dtype = precisionOf(req);
      const s = await session([req.shape.length, req.axis, req.eps, dtype], () => decomposedRmsNormModel({ rank: req.shape.length, axis: req.axis, epsilon: req.eps, dtype }));
      const r = await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, req.shape.slice(req.axis)) });
      return { y: ortOutput(r, 'Y') };
    };
  } else if (variant === 'rmsnorm') {
    impl.rmsNorm = async (req) => {
      const dtype = precisionOf(req);
      const s = await session([req.shape.length, req.axis, req.eps, dtype], () => rmsNormModel({ rank: req.shape.length, axis: req.axis, epsilon: req.eps, dtype, stashType: 1 }));
      const r = await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, req.shape.slice(req.axis)) });
      return { y: ortOutput(r, 'Y') };
    };
  } else if (variant === 'groupnorm' || variant === 'groupnorm-18') {
    impl.groupNorm = async (req: GroupNormRequest) => {
      const dtype = precisionOf(req);
      requireChannelsFirst(req.axis, req.shape.length);
      const C = req.shape[1]!;
      const G = req.groups;
      if (variant === 'groupnorm') {
        const s = await session([req.shape.length, G, req.eps, dtype], () => groupNormModel({ rank: req.shape.length, groups: G, epsilon: req.eps, dtype, opset: 21 }));
        return { y: ortOutput(await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, [C]), B: t(dtype, req.beta, [C]) }), 'Y') };
      }
      const native = constantInGroups(req.gamma, G) && constantInGroups(req.beta, G);
      const s = await session([req.shape.length, G, req.eps, dtype, native], () => groupNormModel({ rank: req.shape.length, groups: G, epsilon: req.eps, dtype, opset: 18, affineAfter: !native }));
      const feeds = native
        ? { X: t(dtype, req.x, req.shape), S: t(dtype, perGroup(req.gamma, G), [G]), B: t(dtype, perGroup(req.beta, G), [G]) }
        : { X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, [C]), B: t(dtype, req.beta, [C]) };
      return { y: ortOutput(await s.run(feeds), 'Y') };
    };
  } else {
    impl.instanceNorm = async (req) => {
      const dtype = precisionOf(req);
      requireChannelsFirst(req.axis, req.shape.length);
      const C = req.shape[1]!;
      const s = await session([req.shape.length, req.eps, dtype], () => instanceNormModel({ rank: req.shape.length, epsilon: req.eps, dtype }));
      return { y: ortOutput(await s.run({ X: t(dtype, req.x, req.shape), S: t(dtype, req.gamma, [C]), B: t(dtype, req.beta, [C]) }), 'Y') };
    };
  }
  return impl;
}
