/**
 * The implementation contract (v1): the one door through which every Batch Normalization
 * implementation is checked (a third party's, an adapter for another library, and our own
 * reference, float32 CPU and gpu.js kernels). Names follow docs/CONTRACT.md exactly;
 * extensions are optional fields, recorded in the README changelog.
 *
 * Conventions (fixed everywhere, not a profile choice; docs/SEMANTICS.md):
 * - `x` is dense, row-major, any rank >= 2; `axis` is the channel axis; C = shape[axis].
 * - Statistics are per channel over every other axis of the same mini-batch:
 *   m = numel(x) / C values per channel, the same m examples for every channel.
 * - `variance` is the biased (1/m) batch variance;
 *   y = gamma * (x - mean) / sqrt(variance + eps) + beta, eps inside the square root.
 */

/**
 * Element types. 'float16' (IEEE binary16) and 'bfloat16' arrays are Uint16Array holding the bit
 * patterns (extension, 0.2.0: Node 20 has no Float16Array); see src/numerics/half.ts.
 */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16';
export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];
export type Arr = Float32Array | Float64Array | Uint16Array;

/**
 * A supported precision (extension, 0.2.0): `dtype` for the activations (x, dy, y, dx) and
 * `paramDtype` for the per-channel arrays (gamma, beta, running statistics, batch mean and
 * variance, dgamma, dbeta). Mixed precision is e.g. { dtype: 'float16', paramDtype: 'float32' }
 * (ONNX BatchNormalization's T / U, PyTorch autocast, Keras mixed_float16).
 */
export interface Precision {
  dtype: DType;
  paramDtype: DType;
}
export type AxesSupport = 'first' | 'last' | 'any';
export type Op = 'forwardTrain' | 'forwardInfer' | 'backward';
export const OPS: readonly Op[] = ['forwardTrain', 'forwardInfer', 'backward'];

export type ProfileName = 'keras' | 'tfjs' | 'tensorflow-fused' | 'pytorch' | 'onnx' | 'paper';

export interface Profile {
  name: string;
  /**
   * decay:           running = momentum * running + (1 - momentum) * batch   (Keras, TF.js, ONNX)
   * update-fraction: running = (1 - momentum) * running + momentum * batch   (PyTorch)
   */
  momentum: 'decay' | 'update-fraction';
  /** Batch variance fed to the moving average: 1/m ('biased') or 1/max(m-1, 1) ('unbiased'). */
  runningVar: 'biased' | 'unbiased';
  defaultEps: number;
  defaultMomentum: number;
  /** eps is raised to this before use (e.g. a fused kernel's floor). */
  minEps?: number;
  /** Training with m = 1 value per channel: an error, or allowed (variance 0, y = beta). */
  singleValue: 'error' | 'allowed';
}

/**
 * How an implementation accumulates its reductions (extension to the v1 contract, optional).
 * The tolerance function derives its bound on summation error from it; see src/judge/tolerance.ts.
 * When absent, the harness assumes the least favourable common case: sequential sums in the
 * dtype under test.
 */
export interface AccumulationInfo {
  /** Precision of the running sums. */
  dtype: DType;
  /**
   * sequential: one running sum per channel (error grows with m).
   * pairwise:   a balanced tree (error grows with log2 m).
   * tiled:      sequential within tiles of `tile` elements, then a tree over tiles (GPU style).
   * updates:    (0.3.0) no sums: a running mean updated once per value (Welford, West), depth m - 1
   *             like sequential. Sums in any order are exact on data whose partial sums fit the
   *             accumulation's significand (src/judge/tolerance.ts exactness), and the judge holds
   *             them to that; running-mean updates divide at every step and are not exact there.
   */
  order: 'sequential' | 'pairwise' | 'tiled' | 'updates';
  tile?: number;
  /**
   * How the arithmetic treats subnormal numbers: IEEE gradual underflow (default), or flushing
   * them to zero (GPU shaders may: GLSL ES 3.00 §4.5.1; CPU code built with FTZ/DAZ). With
   * 'flush-to-zero' the tolerance's underflow unit is the smallest normal, not the smallest
   * subnormal.
   */
  subnormals?: 'gradual' | 'flush-to-zero';
  /**
   * Synchronized ops only (forwardTrainSync, backwardSync): how the per-replica partial results
   * are combined across R replicas. tree: a balanced tree (depth ceil(log2 R)); ring: a ring
   * all-reduce (each chunk is accumulated R - 1 times in sequence); sequential: one replica after
   * another (depth R - 1). Absent: sequential, the least favourable.
   */
  allReduce?: 'tree' | 'ring' | 'sequential';
}

/** Extension (0.3.0): also the normalization family's optional ops (NormalizationFamilyOps, below). */
export interface BatchNormImplementation extends NormalizationFamilyOps {
  name: string;
  profile: ProfileName | Profile;
  dtypes: DType[];
  /**
   * Extension (0.2.0): the (dtype, paramDtype) pairs supported. When absent: each entry of
   * `dtypes` with paramDtype = dtype (so float32/float64 implementations are unchanged).
   */
  precisions?: Precision[];
  axes?: AxesSupport;
  /** Extension: the reduction structure, for an honest tolerance (see AccumulationInfo). */
  accumulation?: AccumulationInfo | Partial<Record<DType, AccumulationInfo>>;
  forwardTrain?(req: ForwardTrainRequest): ForwardTrainResult | Promise<ForwardTrainResult>;
  forwardInfer?(req: ForwardInferRequest): ForwardInferResult | Promise<ForwardInferResult>;
  backward?(req: BackwardRequest): BackwardResult | Promise<BackwardResult>;
  /** Extension (0.2.0): synchronized (cross-replica) training forward; see ForwardTrainSyncRequest. */
  forwardTrainSync?(req: ForwardTrainSyncRequest): ForwardTrainSyncResult | Promise<ForwardTrainSyncResult>;
  /** Extension (0.2.0): synchronized training backward; see BackwardSyncRequest. */
  backwardSync?(req: BackwardSyncRequest): BackwardSyncResult | Promise<BackwardSyncResult>;
}

/**
 * The request's precision (extension, 0.2.0). The harness always sends both; a request without
 * them is read from its arrays (Float32Array: float32, Float64Array: float64). Required for half
 * dtypes, whose Uint16Array does not say which format it holds.
 */
export interface RequestPrecision {
  /** x, dy (and the outputs y, dx). */
  dtype?: DType;
  /** gamma, beta, runningMean, runningVar (and mean, variance, dgamma, dbeta). */
  paramDtype?: DType;
}

export interface ForwardTrainRequest extends RequestPrecision {
  x: Arr;
  shape: number[];
  axis: number;
  gamma: Arr;
  beta: Arr;
  /** In the profile's own convention. */
  eps: number;
  momentum: number;
  /** State before this step, length C. */
  runningMean: Arr;
  runningVar: Arr;
}

export interface ForwardTrainResult {
  y: Arr;
  /** Batch statistics: mean and biased variance, length C. */
  mean: Arr;
  variance: Arr;
  /** State after this step. */
  runningMean: Arr;
  runningVar: Arr;
}

export interface ForwardInferRequest extends RequestPrecision {
  x: Arr;
  shape: number[];
  axis: number;
  gamma: Arr;
  beta: Arr;
  eps: number;
  runningMean: Arr;
  runningVar: Arr;
}

export interface ForwardInferResult {
  y: Arr;
}

export interface BackwardRequest extends RequestPrecision {
  x: Arr;
  dy: Arr;
  shape: number[];
  axis: number;
  gamma: Arr;
  eps: number;
  /** true: gradients flow through the batch statistics; false: statistics are constants. */
  training: boolean;
  /** Present when training is false. */
  runningMean?: Arr;
  runningVar?: Arr;
}

export interface BackwardResult {
  dx: Arr;
  dgamma: Arr;
  dbeta: Arr;
}

export type AnyRequest = ForwardTrainRequest | ForwardInferRequest | BackwardRequest;

/**
 * Synchronized (cross-replica) Batch Normalization, an optional extension (0.2.0).
 *
 * One global mini-batch is split into shards, one per replica, in replica order. Shards have
 * the same rank and the same C = shape[axis]; the other axes may differ between shards (usually
 * only the batch axis does) and may be 0 (a replica with no examples). The statistics are those
 * of the global batch: per channel, over every value of that channel in every shard,
 * m = sum of the shards' m. Every replica normalizes its own shard with them and ends with the
 * same running statistics; the running variance's Bessel factor uses the global m.
 */
export type SyncOp = 'forwardTrainSync' | 'backwardSync';
export const SYNC_OPS: readonly SyncOp[] = ['forwardTrainSync', 'backwardSync'];
/** Every op a check may need (the family's, 0.3.0, included). */
export type AnyOp = Op | SyncOp | FamilyOp;

export interface SyncShard {
  x: Arr;
  shape: number[];
}

export interface ForwardTrainSyncRequest {
  /** One shard per replica, in replica order. */
  shards: SyncShard[];
  axis: number;
  gamma: Arr;
  beta: Arr;
  eps: number;
  momentum: number;
  runningMean: Arr;
  runningVar: Arr;
  /** dtype of x and y; paramDtype of gamma, beta and the statistics. */
  dtype: DType;
  paramDtype: DType;
}

export interface ForwardTrainSyncResult {
  /** One per replica, in replica order: its shard's output and its copy of the running statistics. */
  replicas: Array<{ y: Arr; runningMean: Arr; runningVar: Arr }>;
  /** Global batch mean and biased variance, length C. */
  mean: Arr;
  variance: Arr;
}

export interface BackwardSyncShard extends SyncShard {
  dy: Arr;
}

/** Training mode: gradients flow through the global batch statistics. */
export interface BackwardSyncRequest {
  shards: BackwardSyncShard[];
  axis: number;
  gamma: Arr;
  eps: number;
  dtype: DType;
  paramDtype: DType;
}

export interface BackwardSyncResult {
  /** One per replica: dx of its shard (dtype). */
  replicas: Array<{ dx: Arr }>;
  /** Global parameter gradients, length C (paramDtype). */
  dgamma: Arr;
  dbeta: Arr;
}

export type AnySyncRequest = ForwardTrainSyncRequest | BackwardSyncRequest;

/**
 * The normalization family (extension, 0.3.0; issue 23): LayerNorm, RMSNorm, GroupNorm and
 * InstanceNorm as optional ops on the same contract (the interface keeps its name;
 * `NormalizationImplementation` below is an alias). Each op normalizes over a *grouping* of x's
 * elements into statistics groups and reads one parameter index per element
 * (src/contract/grouping.ts, docs/SEMANTICS.md):
 * - layerNorm / rmsNorm: one group per index of axes [0, axis), over axes [axis, rank) (ONNX
 *   LayerNormalization `axis`, torch `normalized_shape = shape[axis:]`), axis >= 1; gamma (and
 *   beta) have prod(shape[axis:]) elements, one per position in the normalized axes.
 * - groupNorm: channel axis `axis` (1 or rank - 1), C = shape[axis], `groups` G divides C; a group
 *   is (sample, g) over channels [g C/G, (g+1) C/G) and every axis but 0 and `axis`; gamma, beta
 *   per channel (length C; ONNX GroupNormalization-21, torch, Keras 3).
 * - instanceNorm: groupNorm with G = C, rank >= 3; a group of one value follows the profile's
 *   `singleValue` rule.
 * Variance biased (1/m), eps inside the root; rmsNorm does not centre:
 * y = x / sqrt(mean(x^2) + eps) * gamma. Backward ops are the training gradients (through the
 * group statistics). `mean` and `invStdDev` are optional outputs, one per statistics group in
 * row-major group order, checked when returned. y, dx in `dtype`; every other array (gamma,
 * beta, mean, invStdDev, dgamma, dbeta) in `paramDtype`.
 */
export type FamilyOp =
  | 'layerNorm'
  | 'layerNormBackward'
  | 'rmsNorm'
  | 'rmsNormBackward'
  | 'groupNorm'
  | 'groupNormBackward'
  | 'instanceNorm'
  | 'instanceNormBackward';
export const FAMILY_OPS: readonly FamilyOp[] = [
  'layerNorm',
  'layerNormBackward',
  'rmsNorm',
  'rmsNormBackward',
  'groupNorm',
  'groupNormBackward',
  'instanceNorm',
  'instanceNormBackward',
];

/** What every family request has. dtype / paramDtype as for BN (RequestPrecision); the harness always names them. */
export interface FamilyRequestBase extends RequestPrecision {
  x: Arr;
  shape: number[];
  /** layerNorm / rmsNorm: the first normalized axis (>= 1); groupNorm / instanceNorm: the channel axis (1 or rank - 1). */
  axis: number;
  gamma: Arr;
  eps: number;
}
export interface LayerNormRequest extends FamilyRequestBase {
  beta: Arr;
}
export interface LayerNormBackwardRequest extends FamilyRequestBase {
  dy: Arr;
}
export type RmsNormRequest = FamilyRequestBase;
export interface RmsNormBackwardRequest extends FamilyRequestBase {
  dy: Arr;
}
export interface GroupNormRequest extends LayerNormRequest {
  groups: number;
}
export interface GroupNormBackwardRequest extends LayerNormBackwardRequest {
  groups: number;
}
export type InstanceNormRequest = LayerNormRequest;
export type InstanceNormBackwardRequest = LayerNormBackwardRequest;

export interface NormForwardResult {
  y: Arr;
  /** Optional: the mean of each statistics group (not for rmsNorm). */
  mean?: Arr;
  /** Optional: 1 / sqrt(variance + eps) of each group (rmsNorm: 1 / sqrt(mean(x^2) + eps)). */
  invStdDev?: Arr;
}
export type LayerNormResult = NormForwardResult;
export type GroupNormResult = NormForwardResult;
export type InstanceNormResult = NormForwardResult;
export interface RmsNormResult {
  y: Arr;
  invStdDev?: Arr;
}
export interface NormBackwardResult {
  dx: Arr;
  dgamma: Arr;
  dbeta: Arr;
}
export interface RmsNormBackwardResult {
  dx: Arr;
  dgamma: Arr;
}

export type FamilyRequest =
  | LayerNormRequest
  | LayerNormBackwardRequest
  | RmsNormRequest
  | RmsNormBackwardRequest
  | GroupNormRequest
  | GroupNormBackwardRequest;
export type FamilyResult = NormForwardResult | RmsNormResult | NormBackwardResult | RmsNormBackwardResult;

/** The family's ops, as an implementation defines them (each optional, like every op). */
export interface NormalizationFamilyOps {
  layerNorm?(req: LayerNormRequest): LayerNormResult | Promise<LayerNormResult>;
  layerNormBackward?(req: LayerNormBackwardRequest): NormBackwardResult | Promise<NormBackwardResult>;
  rmsNorm?(req: RmsNormRequest): RmsNormResult | Promise<RmsNormResult>;
  rmsNormBackward?(req: RmsNormBackwardRequest): RmsNormBackwardResult | Promise<RmsNormBackwardResult>;
  groupNorm?(req: GroupNormRequest): GroupNormResult | Promise<GroupNormResult>;
  groupNormBackward?(req: GroupNormBackwardRequest): NormBackwardResult | Promise<NormBackwardResult>;
  instanceNorm?(req: InstanceNormRequest): InstanceNormResult | Promise<InstanceNormResult>;
  instanceNormBackward?(req: InstanceNormBackwardRequest): NormBackwardResult | Promise<NormBackwardResult>;
}

/** The same interface under the name the family reads better with (never a rename: both names stay). */
export type NormalizationImplementation = BatchNormImplementation;
