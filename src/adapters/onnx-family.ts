/**
 * One-node ONNX models for the normalization family, written with the same hand-rolled protobuf
 * writer as the BatchNormalization door (./onnx-model.ts): LayerNormalization (opset 17),
 * RMSNormalization (opset 23), GroupNormalization (opset 21 per-channel scale, opset 18 per-group
 * scale), InstanceNormalization (opset 6, imported at 15), and the decomposed LayerNorm and
 * RMSNorm that exporters emitted before opsets 17 and 23 (ReduceMean / Sub / Pow / ReduceMean / Add /
 * Sqrt / Div / Mul / Add; Pow / ReduceMean / Add / Sqrt / Div / Mul; opset 15). Field numbers: onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto). Every model has X and Y in one dtype T; the
 * parameters are in T too (the ONNX operators' Scale / B are T), so the precisions these models
 * can express are pure ones.
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import { encodeHalf } from '../numerics/half.js';
import { attrF, attrI, attrInts, ELEM, node, Pb } from './onnx-model.js';

/**
 * A ValueInfoProto whose dims are symbolic (TensorShapeProto.Dimension.dim_param, "d0", "d1", …,
 * one name per axis of X, shared by every tensor that has that axis) or fixed (dim_value): one
 * session then serves every shape of a rank (a session costs ~5-9 ms to create on
 * onnxruntime-node, a run ~0.3 ms), with the same kernels as a model of static shape.
 */
function valueInfo(name: string, dims: Array<number | string>, elem: number): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, elem).msg(2, shape)));
}
/** X's dims as symbols. */
const sym = (rank: number) => Array.from({ length: rank }, (_, k) => `d${k}`);

export type OnnxDType = 'float32' | 'float64' | 'float16';

/**
 * The IR version each opset needs (onnx/helper.py VERSION_TABLE: opset 15 -> IR 8, 17 and 18 ->
 * IR 8, 21 -> IR 10, 23 -> IR 11).
 */
const IR_FOR_OPSET: Record<number, number> = { 15: 8, 17: 8, 18: 8, 21: 10, 23: 11 };

/** ModelProto: ir_version, producer, graph, opset_import (default domain). */
function modelOf(graph: Pb, opset: number): Uint8Array {
  const ir = IR_FOR_OPSET[opset];
  if (!ir) throw new Error(`no IR version recorded for opset ${opset}`);
  return Uint8Array.from(new Pb().int(1, ir).str(2, 'bn-conformance').msg(7, graph).msg(8, new Pb().str(1, '').int(2, opset)).bytes);
}

/** TensorProto.DataType of a stash_type attribute: 1 = float32 (the default), 0 = the input's own type. */
export type StashType = 0 | 1;

export interface LayerNormModelSpec {
  /** X's rank; every dim symbolic. */
  rank: number;
  /** The first normalized axis (contract and ONNX agree: normalized over [axis, rank)). */
  axis: number;
  epsilon: number;
  dtype: OnnxDType;
  stashType: StashType;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);
/** The statistics' shape: X's dims before axis, 1 from it on (keepdims). */
const keptDims = (rank: number, axis: number) => sym(rank).map((d, k) => (k < axis ? d : 1));

/**
 * LayerNormalization-17: inputs X, Scale, B (Scale and B of shape shape[axis:]); outputs Y, Mean,
 * InvStdDev (Mean / InvStdDev of shape [shape[:axis], 1, …], in the stash type U).
 */
export function layerNormModel(spec: LayerNormModelSpec): Uint8Array {
  const { rank, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const u = spec.stashType === 1 ? ELEM.float32 : elem;
  const g = new Pb();
  g.msg(1, node('LayerNormalization', ['X', 'S', 'B'], ['Y', 'MEAN', 'INVSTD'], [attrI('axis', axis), attrF('epsilon', spec.epsilon), attrI('stash_type', spec.stashType)]));
  g.str(2, 'layernorm');
  const pshape = sym(rank).slice(axis);
  g.msg(11, valueInfo('X', sym(rank), elem)).msg(11, valueInfo('S', pshape, elem)).msg(11, valueInfo('B', pshape, elem));
  g.msg(12, valueInfo('Y', sym(rank), elem)).msg(12, valueInfo('MEAN', keptDims(rank, axis), u)).msg(12, valueInfo('INVSTD', keptDims(rank, axis), u));
  return modelOf(g, 17);
}

/** RMSNormalization-23: inputs X, scale (shape[axis:]); output Y (the operator has no statistics output). */
export function rmsNormModel(spec: LayerNormModelSpec): Uint8Array {
  const { rank, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const g = new Pb();
  g.msg(1, node('RMSNormalization', ['X', 'S'], ['Y'], [attrI('axis', axis), attrF('epsilon', spec.epsilon), attrI('stash_type', spec.stashType)]));
  g.str(2, 'rmsnorm');
  g.msg(11, valueInfo('X', sym(rank), elem)).msg(11, valueInfo('S', sym(rank).slice(axis), elem));
  g.msg(12, valueInfo('Y', sym(rank), elem));
  return modelOf(g, 23);
}

export interface GroupNormModelSpec {
  /** X's rank; channels on axis 1 (the operators' only layout). */
  rank: number;
  groups: number;
  epsilon: number;
  dtype: OnnxDType;
  /**
   * 21: scale and bias per channel (length C), stash_type 1 (its default: float32 statistics).
   * 18: scale and bias per group (length G); with `affineAfter` the node gets unit scale and zero
   * bias and per-channel gamma / beta are applied by Mul and Add nodes after it ([C, 1, …] broadcast).
   */
  opset: 18 | 21;
  affineAfter?: boolean;
}

/** A TensorProto initializer of `dims` from raw little-endian bytes. */
function initializer(name: string, elem: number, dims: number[], raw: Uint8Array): Pb {
  const p = new Pb();
  for (const d of dims) p.int(1, d);
  p.int(2, elem).str(8, name);
  p.tag(9, 2).varint(raw.length);
  p.bytes.push(...raw);
  return p;
}

/** `n` copies of v in dtype, little-endian. */
function filled(v: number, n: number, dtype: OnnxDType): Uint8Array {
  const size = dtype === 'float64' ? 8 : dtype === 'float16' ? 2 : 4;
  const b = new Uint8Array(size * n);
  const dv = new DataView(b.buffer);
  for (let k = 0; k < n; k++) {
    if (dtype === 'float64') dv.setFloat64(k * size, v, true);
    else if (dtype === 'float32') dv.setFloat32(k * size, v, true);
    else dv.setUint16(k * size, encodeHalf(v, 'float16'), true);
  }
  return b;
}

/** GroupNormalization-21 or -18 (ONNX functions: ORT expands them into their function bodies). */
export function groupNormModel(spec: GroupNormModelSpec): Uint8Array {
  const { rank, groups, dtype, opset } = spec;
  const elem = ELEM[dtype];
  const X = sym(rank);
  const g = new Pb();
  const attrs = [attrF('epsilon', spec.epsilon), attrI('num_groups', groups)];
  if (opset === 21) attrs.push(attrI('stash_type', 1));
  if (spec.affineAfter) {
    // unit per-group scale and zero bias, then Y = YN * S + B with S, B (length C) reshaped to [C, 1, …]
    const bshape = [-1, ...range(2, rank).map(() => 1)];
    const i64 = new Uint8Array(8 * bshape.length);
    bshape.forEach((d, k) => new DataView(i64.buffer).setBigInt64(8 * k, BigInt(d), true));
    g.msg(1, node('GroupNormalization', ['X', 'ONES', 'ZEROS'], ['YN'], attrs));
    g.msg(1, node('Reshape', ['S', 'PSHAPE'], ['SB']));
    g.msg(1, node('Reshape', ['B', 'PSHAPE'], ['BB']));
    g.msg(1, node('Mul', ['YN', 'SB'], ['YS']));
    g.msg(1, node('Add', ['YS', 'BB'], ['Y']));
    g.str(2, 'groupnorm');
    g.msg(5, initializer('ONES', elem, [groups], filled(1, groups, dtype)));
    g.msg(5, initializer('ZEROS', elem, [groups], filled(0, groups, dtype)));
    g.msg(5, initializer('PSHAPE', 7, [bshape.length], i64));
    g.msg(11, valueInfo('X', X, elem)).msg(11, valueInfo('S', [X[1]!], elem)).msg(11, valueInfo('B', [X[1]!], elem));
  } else {
    const pLen = opset === 21 ? X[1]! : groups;
    g.msg(1, node('GroupNormalization', ['X', 'S', 'B'], ['Y'], attrs));
    g.str(2, 'groupnorm');
    g.msg(11, valueInfo('X', X, elem)).msg(11, valueInfo('S', [pLen], elem)).msg(11, valueInfo('B', [pLen], elem));
  }
  g.msg(12, valueInfo('Y', X, elem));
  return modelOf(g, opset);
}

/** InstanceNormalization-6 (model opset 15): inputs X (N, C, D1, …), scale, B (length C); output Y. */
export function instanceNormModel(spec: { rank: number; epsilon: number; dtype: OnnxDType }): Uint8Array {
  const { rank, dtype } = spec;
  const elem = ELEM[dtype];
  const X = sym(rank);
  const g = new Pb();
  g.msg(1, node('InstanceNormalization', ['X', 'S', 'B'], ['Y'], [attrF('epsilon', spec.epsilon)]));
  g.str(2, 'instancenorm');
  g.msg(11, valueInfo('X', X, elem)).msg(11, valueInfo('S', [X[1]!], elem)).msg(11, valueInfo('B', [X[1]!], elem));
  g.msg(12, valueInfo('Y', X, elem));
  return modelOf(g, 15);
}

/**
 * LayerNorm as exporters wrote it before LayerNormalization existed (torch.onnx at opset < 17,
 * tf2onnx, keras2onnx): over the trailing axes [axis, rank) given as negative axes,
 *   MEAN = ReduceMean(X, keepdims 1); D = X - MEAN; VAR = ReduceMean(Pow(D, 2)); Y = D / Sqrt(VAR + eps) * S + B
 * with 2 and eps as scalar constants of X's dtype (initializers, as torch.onnx writes them). Opset 15
 * (ReduceMean's axes an attribute, as in every exporter of that era).
 */
export function decomposedLayerNormModel(spec: { rank: number; axis: number; epsilon: number; dtype: OnnxDType }): Uint8Array {
  const { rank, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const axes = range(axis, rank).map((k) => k - rank);
  const g = new Pb();
  g.msg(1, node('ReduceMean', ['X'], ['MEAN'], [attrInts('axes', axes), attrI('keepdims', 1)]));
  g.msg(1, node('Sub', ['X', 'MEAN'], ['D']));
  g.msg(1, node('Pow', ['D', 'TWO'], ['D2']));
  g.msg(1, node('ReduceMean', ['D2'], ['VAR'], [attrInts('axes', axes), attrI('keepdims', 1)]));
  g.msg(1, node('Add', ['VAR', 'EPS'], ['VE']));
  g.msg(1, node('Sqrt', ['VE'], ['SD']));
  g.msg(1, node('Div', ['D', 'SD'], ['XH']));
  g.msg(1, node('Mul', ['XH', 'S'], ['XS']));
  g.msg(1, node('Add', ['XS', 'B'], ['Y']));
  g.str(2, 'layernorm_decomposed');
  g.msg(5, initializer('TWO', elem, [], filled(2, 1, dtype))).msg(5, initializer('EPS', elem, [], filled(spec.epsilon, 1, dtype)));
  const pshape = sym(rank).slice(axis);
  g.msg(11, valueInfo('X', sym(rank), elem)).msg(11, valueInfo('S', pshape, elem)).msg(11, valueInfo('B', pshape, elem));
  // Y only, as exported: making MEAN a graph output too would change which of onnxruntime's fusions
  // applies (SimplifiedLayerNormFusion on D instead of LayerNormFusion; docs/adapters.md)
  g.msg(12, valueInfo('Y', sym(rank), elem));
  return modelOf(g, 15);
}

/**
 * RMSNorm as exporters wrote it before RMSNormalization existed (opset 15): over the trailing axes
 * [axis, rank), Y = X / Sqrt(ReduceMean(Pow(X, 2)) + eps) * S, with 2 and eps as scalar constants
 * of X's dtype; the pattern onnxruntime's SimplifiedLayerNormFusion rewrites into one
 * SimplifiedLayerNormalization node.
 */
export function decomposedRmsNormModel(spec: { rank: number; axis: number; epsilon: number; dtype: OnnxDType }): Uint8Array {
  const { rank, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const axes = range(axis, rank).map((k) => k - rank);
  const g = new Pb();
  g.msg(1, node('Pow', ['X', 'TWO'], ['X2']));
  g.msg(1, node('ReduceMean', ['X2'], ['MS'], [attrInts('axes', axes), attrI('keepdims', 1)]));
  g.msg(1, node('Add', ['MS', 'EPS'], ['ME']));
  g.msg(1, node('Sqrt', ['ME'], ['RMS']));
  g.msg(1, node('Div', ['X', 'RMS'], ['XN']));
  g.msg(1, node('Mul', ['XN', 'S'], ['Y']));
  g.str(2, 'rmsnorm_decomposed');
  g.msg(5, initializer('TWO', elem, [], filled(2, 1, dtype))).msg(5, initializer('EPS', elem, [], filled(spec.epsilon, 1, dtype)));
  g.msg(11, valueInfo('X', sym(rank), elem)).msg(11, valueInfo('S', sym(rank).slice(axis), elem));
  g.msg(12, valueInfo('Y', sym(rank), elem));
  return modelOf(g, 15);
}

/** A one-node Mul of two float32 vectors of length n (opset 15): to measure whether a provider flushes subnormals. */
export function mulModel(n: number): Uint8Array {
  const g = new Pb();
  g.msg(1, node('Mul', ['X', 'S'], ['Y']));
  g.str(2, 'mul');
  g.msg(11, valueInfo('X', [n], ELEM.float32)).msg(11, valueInfo('S', [n], ELEM.float32));
  g.msg(12, valueInfo('Y', [n], ELEM.float32));
  return modelOf(g, 15);
}
