/**
 * Layout transforms on dense row-major tensors, through ndarray views (the {data, shape, stride,
 * offset} protocol): moving the channel axis (channels-first <-> channels-last) and permuting
 * the samples of a batch, always into fresh arrays so nothing a caller gave is modified.
 */
import ndarray from 'ndarray';

type Data = number[] | Float32Array | Float64Array;

function copyOut(view: ndarray.NdArray<ndarray.Data<number>>, size: number): number[] {
  const out = new Array<number>(size);
  const shape = view.shape;
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < size; k++) {
    out[k] = view.get(...idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Move axis `from` to position `to`; returns the new data and shape. */
export function moveAxis(data: Data, shape: number[], from: number, to: number): { data: number[]; shape: number[] } {
  const order = shape.map((_, k) => k).filter((k) => k !== from);
  order.splice(to, 0, from);
  const view = ndarray(data, shape).transpose(...order);
  return { data: copyOut(view, data.length), shape: order.map((k) => shape[k]!) };
}

/** Reorder the entries along `axis` by `perm` (new position k takes old perm[k]). */
export function permuteAlong(data: Data, shape: number[], axis: number, perm: number[]): number[] {
  const src = ndarray(data, shape);
  const out = new Array<number>(data.length);
  const dst = ndarray(out, shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < data.length; k++) {
    const from = idx.slice();
    from[axis] = perm[idx[axis]!]!;
    dst.set(...idx, src.get(...from));
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}
