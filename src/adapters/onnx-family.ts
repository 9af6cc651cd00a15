/**
 * One-node ONNX models for the normalization family, written with the same hand-rolled protobuf
 * writer as the BatchNormalization door (./onnx-model.ts): LayerNormalization (opset 17),
 * RMSNormalization (opset 23), GroupNormalization (opset 21 per-channel scale, opset 18 per-group
 * scale), InstanceNormalization (opset 6, imported at 15), and the decomposed LayerNorm that
 * exporters emitted before opset 17 (ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul /
 * Add, opset 15). Field numbers: onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto). Every model has X and Y in one dtype T; the
 * parameters are in T too (the ONNX operators' Scale / B are T), so the precisions these models
 * can express are pure ones.
 *
 * No Node imports: this file is bundled into the browser built-ins.
 */
import { encodeHalf } from '../numerics/half.js';
import { attrF, attrI, attrInts, ELEM, node, Pb, valueInfo } from './onnx-model.js';

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

/** A scalar TensorProto initializer (dims none, raw little-endian bytes): exporters' Constant values. */
function scalarInitializer(name: string, v: number, dtype: OnnxDType): Pb {
  const size = dtype === 'float64' ? 8 : dtype === 'float16' ? 2 : 4;
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  if (dtype === 'float64') dv.setFloat64(0, v, true);
  else if (dtype === 'float32') dv.setFloat32(0, v, true);
  else dv.setUint16(0, encodeHalf(v, 'float16'), true);
  const p = new Pb().int(2, ELEM[dtype]).str(8, name);
  p.tag(9, 2).varint(size);
  p.bytes.push(...b);
  return p;
}

/** TensorProto.DataType of a stash_type attribute: 1 = float32 (the default), 0 = the input's own type. */
export type StashType = 0 | 1;

export interface LayerNormModelSpec {
  shape: number[];
  /** The first normalized axis (contract and ONNX agree: normalized over [axis, rank)). */
  axis: number;
  epsilon: number;
  dtype: OnnxDType;
  stashType: StashType;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

/**
 * LayerNormalization-17: inputs X, Scale, B (Scale and B of shape shape[axis:]); outputs Y, Mean,
 * InvStdDev (Mean / InvStdDev of shape [shape[:axis], 1, …], in the stash type U).
 */
export function layerNormModel(spec: LayerNormModelSpec): Uint8Array {
  const { shape, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const u = spec.stashType === 1 ? ELEM.float32 : elem;
  const g = new Pb();
  g.msg(1, node('LayerNormalization', ['X', 'S', 'B'], ['Y', 'MEAN', 'INVSTD'], [attrI('axis', axis), attrF('epsilon', spec.epsilon), attrI('stash_type', spec.stashType)]));
  g.str(2, 'layernorm');
  const pshape = shape.slice(axis);
  const sshape = shape.map((d, k) => (k < axis ? d : 1));
  g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', pshape, elem)).msg(11, valueInfo('B', pshape, elem));
  g.msg(12, valueInfo('Y', shape, elem)).msg(12, valueInfo('MEAN', sshape, u)).msg(12, valueInfo('INVSTD', sshape, u));
  return modelOf(g, 17);
}

/** RMSNormalization-23: inputs X, scale (shape[axis:]); output Y (the operator has no statistics output). */
export function rmsNormModel(spec: LayerNormModelSpec): Uint8Array {
  const { shape, axis, dtype } = spec;
  const elem = ELEM[dtype];
  const g = new Pb();
  g.msg(1, node('RMSNormalization', ['X', 'S'], ['Y'], [attrI('axis', axis), attrF('epsilon', spec.epsilon), attrI('stash_type', spec.stashType)]));
  g.str(2, 'rmsnorm');
  g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', shape.slice(axis), elem));
  g.msg(12, valueInfo('Y', shape, elem));
  return modelOf(g, 23);
}

export interface GroupNormModelSpec {
  /** Channels on axis 1 (the operators' only layout). */
  shape: number[];
  groups: number;
  epsilon: number;
  dtype: OnnxDType;
  /**
   * 21: scale and bias per channel (length C), stash_type 1 (its default: float32 statistics).
   * 18: scale and bias per group (length G); with `affineAfter` the node gets unit scale and zero
   * bias and per-channel gamma / beta are applied by Mul and Add nodes after it (C x 1 x … broadcast).
   */
  opset: 18 | 21;
  affineAfter?: boolean;
}

/** GroupNormalization-21 or -18 (ONNX functions: ORT expands them into their function bodies). */
export function groupNormModel(spec: GroupNormModelSpec): Uint8Array {
  const { shape, groups, dtype, opset } = spec;
  const elem = ELEM[dtype];
  const C = shape[1]!;
  const g = new Pb();
  const attrs = [attrF('epsilon', spec.epsilon), attrI('num_groups', groups)];
  if (opset === 21) attrs.push(attrI('stash_type', 1));
  const pLen = opset === 21 ? C : groups;
  if (spec.affineAfter) {
    // unit per-group scale, zero bias (initializers of length G), then Y = YN * S + B per channel
    const ones = new Pb().int(1, groups).int(2, elem).str(8, 'ONES');
    const zeros = new Pb().int(1, groups).int(2, elem).str(8, 'ZEROS');
    const size = dtype === 'float64' ? 8 : dtype === 'float16' ? 2 : 4;
    const one = new Uint8Array(size);
    const dv = new DataView(one.buffer);
    if (dtype === 'float64') dv.setFloat64(0, 1, true);
    else if (dtype === 'float32') dv.setFloat32(0, 1, true);
    else dv.setUint16(0, encodeHalf(1, 'float16'), true);
    const raw = (p: Pb, bytes: Uint8Array) => {
      const all = new Uint8Array(bytes.length * groups);
      for (let k = 0; k < groups; k++) all.set(bytes, k * bytes.length);
      p.tag(9, 2).varint(all.length);
      p.bytes.push(...all);
      return p;
    };
    g.msg(1, node('GroupNormalization', ['X', 'ONES', 'ZEROS'], ['YN'], attrs));
    g.msg(1, node('Mul', ['YN', 'SB'], ['YS']));
    g.msg(1, node('Add', ['YS', 'BB'], ['Y']));
    // S, B (length C) reshaped to [C, 1, …] so that they broadcast along axis 1
    const bshape = [C, ...shape.slice(2).map(() => 1)];
    const shapeInit = new Pb().int(1, bshape.length).int(2, 7).str(8, 'PSHAPE');
    const i64 = new Uint8Array(8 * bshape.length);
    bshape.forEach((d, k) => new DataView(i64.buffer).setBigInt64(8 * k, BigInt(d), true));
    shapeInit.tag(9, 2).varint(i64.length);
    shapeInit.bytes.push(...i64);
    g.msg(1, node('Reshape', ['S', 'PSHAPE'], ['SB']));
    g.msg(1, node('Reshape', ['B', 'PSHAPE'], ['BB']));
    g.str(2, 'groupnorm');
    g.msg(5, raw(ones, one)).msg(5, raw(zeros, new Uint8Array(size))).msg(5, shapeInit);
    g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', [C], elem)).msg(11, valueInfo('B', [C], elem));
  } else {
    g.msg(1, node('GroupNormalization', ['X', 'S', 'B'], ['Y'], attrs));
    g.str(2, 'groupnorm');
    g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', [pLen], elem)).msg(11, valueInfo('B', [pLen], elem));
  }
  g.msg(12, valueInfo('Y', shape, elem));
  return modelOf(g, opset);
}

/** InstanceNormalization-6 (model opset 15): inputs X (N, C, D1, …), scale, B (length C); output Y. */
export function instanceNormModel(spec: { shape: number[]; epsilon: number; dtype: OnnxDType }): Uint8Array {
  const { shape, dtype } = spec;
  const elem = ELEM[dtype];
  const C = shape[1]!;
  const g = new Pb();
  g.msg(1, node('InstanceNormalization', ['X', 'S', 'B'], ['Y'], [attrF('epsilon', spec.epsilon)]));
  g.str(2, 'instancenorm');
  g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', [C], elem)).msg(11, valueInfo('B', [C], elem));
  g.msg(12, valueInfo('Y', shape, elem));
  return modelOf(g, 15);
}

/**
 * LayerNorm as exporters wrote it before LayerNormalization existed (torch.onnx at opset < 17,
 * tf2onnx, keras2onnx): over the trailing axes [axis, rank) given as negative axes,
 *   MEAN = ReduceMean(X, keepdims 1); D = X - MEAN; VAR = ReduceMean(Pow(D, 2)); Y = D / Sqrt(VAR + eps) * S + B
 * with 2 and eps as scalar constants of X's dtype (initializers). Opset 15 (ReduceMean's axes an
 * attribute, as in every exporter of that era). MEAN is also a graph output.
 */
export function decomposedLayerNormModel(spec: { shape: number[]; axis: number; epsilon: number; dtype: OnnxDType }): Uint8Array {
  const { shape, axis, dtype } = spec;
  const rank = shape.length;
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
  g.msg(5, scalarInitializer('TWO', 2, dtype)).msg(5, scalarInitializer('EPS', spec.epsilon, dtype));
  const pshape = shape.slice(axis);
  g.msg(11, valueInfo('X', shape, elem)).msg(11, valueInfo('S', pshape, elem)).msg(11, valueInfo('B', pshape, elem));
  g.msg(12, valueInfo('Y', shape, elem)).msg(12, valueInfo('MEAN', shape.map((d, k) => (k < axis ? d : 1)), elem));
  return modelOf(g, 15);
}
