/**
 * ONNX models written as protobuf bytes by hand (no onnx package needed): a one-node
 * BatchNormalization (opset 15, ir 8), for the onnxruntime adapter. Field numbers are from
 * onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto, TypeProto).
 */

/** A minimal protobuf writer. */
export class Pb {
  bytes: number[] = [];
  varint(v: number): this {
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n;
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      this.bytes.push(b);
    } while (n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  str(field: number, s: string): this {
    const b = new TextEncoder().encode(s); // no Buffer: this file is also bundled for the browser
    this.tag(field, 2).varint(b.length);
    this.bytes.push(...b);
    return this;
  }
  msg(field: number, m: Pb): this {
    this.tag(field, 2).varint(m.bytes.length);
    this.bytes.push(...m.bytes);
    return this;
  }
  f32(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.tag(field, 5);
    this.bytes.push(...b);
    return this;
  }
}

export const attrF = (name: string, v: number) => new Pb().str(1, name).f32(2, v).int(20, 1);
export const attrI = (name: string, v: number) => new Pb().str(1, name).int(3, v).int(20, 2);
export const attrInts = (name: string, v: number[]) => {
  const p = new Pb().str(1, name);
  for (const k of v) p.int(8, k);
  return p.int(20, 7);
};

export function node(op: string, inputs: string[], outputs: string[], attrs: Pb[] = []): Pb {
  const p = new Pb();
  for (const s of inputs) p.str(1, s);
  for (const s of outputs) p.str(2, s);
  p.str(3, `${op}_${outputs[0]}`).str(4, op);
  for (const a of attrs) p.msg(5, a);
  return p;
}

/** TensorProto.DataType: FLOAT = 1, DOUBLE = 11, FLOAT16 = 10. */
export const ELEM = { float32: 1, float64: 11, float16: 10 } as const;

export function valueInfo(name: string, shape: number[], elem: number = ELEM.float32): Pb {
  const dims = new Pb();
  for (const d of shape) dims.msg(1, new Pb().int(1, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, elem).msg(2, dims)));
}

export interface BnModelSpec {
  /** NC… layout: channel axis 1. */
  shape: number[];
  training: boolean;
  epsilon: number;
  momentum: number;
  /** X and Y (T). */
  dtype: 'float32' | 'float64' | 'float16';
  /** Scale, B, mean, variance and the running statistics (T1, T2); default dtype. */
  paramDtype?: 'float32' | 'float64' | 'float16';
  /** Also output the batch mean and biased variance (ReduceMean nodes beside the BN node). */
  batchStats?: boolean;
}

/**
 * Inputs X, S, B, M, V; outputs Y (and RM, RV in training; MEAN, VAR with batchStats).
 * The batch statistics come from ReduceMean over every axis but 1, two-pass: mean, then
 * ReduceMean((X - mean)^2).
 */
export function batchNormModel(spec: BnModelSpec): Uint8Array {
  const { shape, training, dtype } = spec;
  const C = shape[1]!;
  const elem = ELEM[dtype];
  const paramElem = ELEM[spec.paramDtype ?? dtype];
  // float16 x: the helper statistics are taken in float32 (a float16 ReduceMean would be the
  // adapter summing in half), then cast to the parameters' dtype
  const widen = dtype === 'float16';
  const g = new Pb();
  const outs = training ? ['Y', 'RM', 'RV'] : ['Y'];
  const attrs = [attrF('epsilon', spec.epsilon), attrF('momentum', spec.momentum)];
  if (training) attrs.push(attrI('training_mode', 1));
  g.msg(1, node('BatchNormalization', ['X', 'S', 'B', 'M', 'V'], outs, attrs));
  const axes = shape.map((_, k) => k).filter((k) => k !== 1);
  if (spec.batchStats) {
    const X = widen ? 'XF' : 'X';
    const [MEAN, VAR] = widen ? ['MEANF', 'VARF'] : ['MEAN', 'VAR'];
    if (widen) g.msg(1, node('Cast', ['X'], ['XF'], [attrI('to', ELEM.float32)]));
    g.msg(1, node('ReduceMean', [X], ['MK'], [attrInts('axes', axes), attrI('keepdims', 1)]));
    g.msg(1, node('Sub', [X, 'MK'], ['D']));
    g.msg(1, node('Mul', ['D', 'D'], ['D2']));
    g.msg(1, node('ReduceMean', ['D2'], [VAR], [attrInts('axes', axes), attrI('keepdims', 0)]));
    g.msg(1, node('ReduceMean', [X], [MEAN], [attrInts('axes', axes), attrI('keepdims', 0)]));
    if (widen) {
      g.msg(1, node('Cast', ['MEANF'], ['MEAN'], [attrI('to', paramElem)]));
      g.msg(1, node('Cast', ['VARF'], ['VAR'], [attrI('to', paramElem)]));
    }
  }
  g.str(2, 'bn');
  g.msg(11, valueInfo('X', shape, elem));
  for (const n of ['S', 'B', 'M', 'V']) g.msg(11, valueInfo(n, [C], paramElem));
  g.msg(12, valueInfo('Y', shape, elem));
  if (training) {
    g.msg(12, valueInfo('RM', [C], paramElem));
    g.msg(12, valueInfo('RV', [C], paramElem));
  }
  if (spec.batchStats) {
    g.msg(12, valueInfo('MEAN', [C], paramElem));
    g.msg(12, valueInfo('VAR', [C], paramElem));
  }
  // ModelProto: ir_version 8, producer, graph, opset_import (default domain, 15)
  const model = new Pb().int(1, 8).str(2, 'bn-conformance').msg(7, g).msg(8, new Pb().str(1, '').int(2, 15));
  return Uint8Array.from(model.bytes);
}
