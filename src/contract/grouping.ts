/**
 * The one notion behind every normalization: a *grouping* of a dense row-major tensor's elements
 * into statistics groups (the values that share one mean and one variance), plus the parameter
 * index (gamma, beta) each element reads. BatchNorm, synchronized BatchNorm (the concatenated
 * batch), LayerNorm, RMSNorm, GroupNorm and InstanceNorm differ only here; moments, the summation
 * bound, the singular-group rule, the reference, the oracle and the judge are written once over it.
 *
 * Every grouping of ours has the same shape of index arithmetic, so it is data, not closures:
 *
 *   group g = go * groupsInner + gi                        (row-major group order)
 *   its elements: base(g) = go * outerStride + gi * innerStride,
 *                 runs r < runs, each runLength contiguous elements from base(g) + r * runStride
 *   element i reads parameter floor(i / paramDiv) % params
 *
 *   op            view of x         groups            m           runs x runLength   params
 *   batch (BN)    [outer, C, inner] C (channel c)     outer*inner outer x inner      C
 *   layer / rms   [outer, inner]    outer             inner       1 x inner          inner
 *   group, axis 1 [N, C, S]         N * G             (C/G) * S   1 x (C/G)*S        C
 *   group, last   [N, S, C]         N * G             (C/G) * S   S x C/G            C
 *   instance      group with G = C
 *
 * (outer = prod of the axes before `axis`, inner = after it (BN) or from it (layer); S = the
 * product of every axis but 0 and the channel axis.) A hot loop iterates runs with two integer
 * loops and no per-element closure; `indicesOf` lists a group's indices for code that is not hot.
 */
import type { FamilyOp, FamilyRequest, GroupNormRequest, DType } from './contract.js';
import { FAMILY_OPS } from './contract.js';
import { BatchNormInputError } from './errors.js';
import { checkArray, checkEps, describe, layoutOf, requestPrecision, type Layout } from './layout.js';
import type { SyncLayout } from './layout-sync.js';

export type GroupingKind = 'batch' | 'layer' | 'group' | 'instance';

export interface Grouping {
  kind: GroupingKind;
  shape: readonly number[];
  axis: number;
  numel: number;
  /** Number of statistics groups (the length of a mean / invStdDev output). */
  groups: number;
  /** Values per group (the same for every group). */
  m: number;
  /** Number of parameter entries (the length of gamma, beta, dgamma, dbeta). */
  params: number;
  groupsInner: number;
  outerStride: number;
  innerStride: number;
  runs: number;
  runStride: number;
  runLength: number;
  paramDiv: number;
  /** Parameters per inner group index (GroupNorm: C / G channels; BN: 1); 0 when the group index does not follow the parameter (layer). */
  paramsPerGroup: number;
  /** Every element of a group reads the same parameter (BN, InstanceNorm, GroupNorm with C / G = 1): gamma factors out of the group's sums. */
  paramConstantInGroup: boolean;
  /** Parameter index = group index for every element (BN): the parameter sums are the group sums. */
  paramIsGroup: boolean;
}

const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1);

function checkShape(shape: unknown, what: string): asserts shape is number[] {
  if (!Array.isArray(shape)) throw new BatchNormInputError(`${what}: shape must be an array of positive integers, got ${describe(shape)}`);
  if (shape.length < 2) throw new BatchNormInputError(`${what}: rank must be >= 2 (axis 0 is the batch), got shape [${shape.join(', ')}]`);
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 1) throw new BatchNormInputError(`${what}: shape must hold positive integers, got [${shape.join(', ')}]`);
  }
  if (!Number.isSafeInteger(prod(shape))) throw new BatchNormInputError(`${what}: shape [${shape.join(', ')}] has too many elements`);
}

function make(g: Omit<Grouping, 'paramIsGroup' | 'numel'>): Grouping {
  const numel = prod(g.shape);
  // parameter = group for every element: one group per parameter, one parameter per group index
  const paramIsGroup = g.paramConstantInGroup && g.groups === g.params && g.groupsInner === g.groups && g.paramsPerGroup === 1;
  return { ...g, numel, paramIsGroup };
}

/** BatchNorm: statistics per channel over every other axis (C groups, parameter = channel). */
export function batchGrouping(shape: readonly number[], axis: number): Grouping {
  return batchGroupingOf(layoutOf(shape, axis), shape, axis);
}

/** The BN grouping of a layout already validated (BN's reference and judge hold one). */
export function batchGroupingOf(L: Layout, shape: readonly number[] = [L.outer, L.channels, L.inner], axis = 1): Grouping {
  return make({
    kind: 'batch',
    shape,
    axis,
    groups: L.channels,
    m: L.m,
    params: L.channels,
    groupsInner: L.channels,
    outerStride: L.numel || 1,
    innerStride: L.inner,
    runs: L.outer,
    runStride: L.channels * L.inner,
    runLength: L.inner,
    paramDiv: L.inner,
    paramsPerGroup: 1,
    paramConstantInGroup: true,
  });
}

/**
 * Synchronized BatchNorm: the BN grouping of the global batch, i.e. of the concatenated shards'
 * channel-last rows (layout-sync.ts concatenatedRows: an [m, C] matrix, channel c = group c).
 */
export function syncGrouping(layout: SyncLayout): Grouping {
  const { m, channels: C } = layout;
  return batchGroupingOf({ outer: m, channels: C, inner: 1, m, numel: m * C }, [m, C], 1);
}

/** LayerNorm / RMSNorm: one group per index of axes [0, axis), over axes [axis, rank); parameter = position in the normalized axes. */
export function layerGrouping(shape: readonly number[], axis: number): Grouping {
  checkShape(shape, 'layer normalization');
  if (!Number.isInteger(axis) || axis < 1 || axis >= shape.length) {
    throw new BatchNormInputError(`axis must be an integer in [1, ${shape.length - 1}] for shape [${shape.join(', ')}] (the first normalized axis; axis 0 is the batch), got ${String(axis)}`);
  }
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis));
  return make({
    kind: 'layer',
    shape,
    axis,
    groups: outer,
    m: inner,
    params: inner,
    groupsInner: 1,
    outerStride: inner,
    innerStride: 0,
    runs: 1,
    runStride: 0,
    runLength: inner,
    paramDiv: 1,
    paramsPerGroup: 0,
    paramConstantInGroup: inner === 1,
  });
}

/** GroupNorm: channel axis 1 or rank - 1, G groups of C / G consecutive channels per sample; parameter = channel. */
export function groupGrouping(shape: readonly number[], axis: number, groups: number, kind: GroupingKind = 'group'): Grouping {
  checkShape(shape, kind === 'instance' ? 'instance normalization' : 'group normalization');
  const rank = shape.length;
  if (!Number.isInteger(axis) || (axis !== 1 && axis !== rank - 1)) {
    throw new BatchNormInputError(`axis must be the channel axis, 1 or ${rank - 1} (channels first or last), for shape [${shape.join(', ')}], got ${String(axis)}`);
  }
  const C = shape[axis]!;
  if (!Number.isSafeInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new BatchNormInputError(`groups must be a positive integer that divides C = ${C} (shape [${shape.join(', ')}], axis ${axis}), got ${String(groups)}`);
  }
  const N = shape[0]!;
  const S = prod(shape) / (N * C);
  const Cg = C / groups;
  const first = axis === 1; // rank 2: both readings coincide (S = 1)
  return make({
    kind,
    shape,
    axis,
    groups: N * groups,
    m: Cg * S,
    params: C,
    groupsInner: groups,
    outerStride: C * S,
    innerStride: first ? Cg * S : Cg,
    runs: first ? 1 : S,
    runStride: first ? 0 : C,
    runLength: first ? Cg * S : Cg,
    paramDiv: first ? S : 1,
    paramsPerGroup: Cg,
    paramConstantInGroup: Cg === 1,
  });
}

/** InstanceNorm: GroupNorm with G = C (one group per sample and channel); rank >= 3. */
export function instanceGrouping(shape: readonly number[], axis: number): Grouping {
  checkShape(shape, 'instance normalization');
  if (shape.length < 3) throw new BatchNormInputError(`instance normalization needs rank >= 3 (a batch, channels and at least one spatial axis), got shape [${shape.join(', ')}]`);
  const C = Number.isInteger(axis) && (axis === 1 || axis === shape.length - 1) ? shape[axis]! : NaN;
  return groupGrouping(shape, axis, C, 'instance');
}

/** First element of group g. */
export const groupBase = (G: Grouping, g: number): number =>
  Math.floor(g / G.groupsInner) * G.outerStride + (g % G.groupsInner) * G.innerStride;

/** The parameter element i reads. */
export const paramOf = (G: Grouping, i: number): number => Math.floor(i / G.paramDiv) % G.params;

/** The statistics group of element i. */
export function groupOf(G: Grouping, i: number): number {
  const go = Math.floor(i / G.outerStride);
  return G.groupsInner === 1 ? go : go * G.groupsInner + Math.floor(paramOf(G, i) / G.paramsPerGroup);
}

/** The parameter every element of group g reads (paramConstantInGroup groupings only). */
export const paramOfGroup = (G: Grouping, g: number): number => paramOf(G, groupBase(G, g));

/** Group g's element indices, in the order every reduction visits them (not for hot loops). */
export function indicesOf(G: Grouping, g: number): Int32Array {
  const out = new Int32Array(G.m);
  const base = groupBase(G, g);
  let k = 0;
  for (let r = 0; r < G.runs; r++) {
    const start = base + r * G.runStride;
    for (let i = start; i < start + G.runLength; i++) out[k++] = i;
  }
  return out;
}

/** Element i's index in each axis. */
export function multiIndex(shape: readonly number[], i: number): number[] {
  const idx = new Array<number>(shape.length);
  let rest = i;
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = rest % shape[k]!;
    rest = Math.floor(rest / shape[k]!);
  }
  return idx;
}

/** A statistics group in words, for reports: `channel 3`, `sample [1, 0]`, `sample 1, group 2 (channels 4-5)`. */
export function describeGroup(G: Grouping, g: number): string {
  if (G.kind === 'batch') return `channel ${g}`;
  if (G.kind === 'layer') {
    const idx = multiIndex(G.shape.slice(0, G.axis), g);
    return `row [${idx.join(', ')}] (axes 0..${G.axis - 1})`;
  }
  const n = Math.floor(g / G.groupsInner);
  const gi = g % G.groupsInner;
  if (G.kind === 'instance') return `sample ${n}, channel ${gi}`;
  const c0 = gi * G.paramsPerGroup;
  return `sample ${n}, group ${gi} (channel${G.paramsPerGroup > 1 ? `s ${c0}-${c0 + G.paramsPerGroup - 1}` : ` ${c0}`})`;
}

/** Element i's position for a report: `[1, 4, 0, 2] (sample 1, group 2 (channels 4-5); gamma[4])`. */
export function describePosition(G: Grouping, i: number): string {
  return `[${multiIndex(G.shape, i).join(', ')}] (${describeGroup(G, groupOf(G, i))}; gamma[${paramOf(G, i)}])`;
}

// --------------------------------------------------------------------------- the family's ops

/** What each family op is: its grouping, whether it centres, which arrays it takes and returns. */
export interface FamilyOpInfo {
  op: FamilyOp;
  /** The forward op of the pair (layerNorm for layerNormBackward). */
  forward: FamilyOp;
  backward: boolean;
  kind: Exclude<GroupingKind, 'batch'>;
  /** Subtracts the group mean (everything but rmsNorm). */
  centred: boolean;
  /** Takes beta (forward) and returns dbeta (backward): everything but rmsNorm. */
  hasBeta: boolean;
  /** The profile's singleValue rule applies to a group of one value (instanceNorm, as BN per channel). */
  singleValueRule: boolean;
  /** Outputs every result has, then those checked only when returned. */
  outputs: readonly string[];
  optionalOutputs: readonly string[];
}

const info = (op: FamilyOp): FamilyOpInfo => {
  const backward = op.endsWith('Backward');
  const forward = (backward ? op.slice(0, -'Backward'.length) : op) as FamilyOp;
  const kind = forward === 'layerNorm' || forward === 'rmsNorm' ? 'layer' : forward === 'groupNorm' ? 'group' : 'instance';
  const centred = forward !== 'rmsNorm';
  return {
    op,
    forward,
    backward,
    kind,
    centred,
    hasBeta: centred,
    singleValueRule: kind === 'instance',
    outputs: backward ? (centred ? ['dx', 'dgamma', 'dbeta'] : ['dx', 'dgamma']) : ['y'],
    optionalOutputs: backward ? [] : centred ? ['mean', 'invStdDev'] : ['invStdDev'],
  };
};

export const FAMILY: Readonly<Record<FamilyOp, FamilyOpInfo>> = Object.fromEntries(FAMILY_OPS.map((op) => [op, info(op)])) as Record<FamilyOp, FamilyOpInfo>;

export const isFamilyOp = (op: unknown): op is FamilyOp => typeof op === 'string' && (FAMILY_OPS as readonly string[]).includes(op);

/** The grouping a family request normalizes over (validates shape, axis and groups). */
export function groupingFor(op: FamilyOp, req: Pick<FamilyRequest, 'shape' | 'axis'> & { groups?: unknown }): Grouping {
  const k = FAMILY[op].kind;
  if (k === 'layer') return layerGrouping(req.shape, req.axis);
  if (k === 'instance') return instanceGrouping(req.shape, req.axis);
  return groupGrouping(req.shape, req.axis, req.groups as number);
}

/** Which grouping each output's elements follow: per element (y, dx), per group (mean, invStdDev), per parameter. */
export function outputLength(G: Grouping, output: string): number {
  if (output === 'y' || output === 'dx') return G.numel;
  if (output === 'mean' || output === 'invStdDev' || output === 'variance') return G.groups;
  return G.params;
}

export interface ValidatedFamily {
  grouping: Grouping;
  dtype: DType;
  paramDtype: DType;
}

/** Validate a family request against the contract; throws BatchNormInputError naming what is wrong. */
export function validateFamilyRequest(op: FamilyOp, req: FamilyRequest): ValidatedFamily {
  if (typeof req !== 'object' || req === null) throw new BatchNormInputError(`${op}: request must be an object`);
  const f = FAMILY[op];
  const grouping = groupingFor(op, req as GroupNormRequest);
  const { dtype, paramDtype, named } = requestPrecision(req);
  const r = req as unknown as Record<string, unknown>;
  checkArray('x', r.x, dtype, grouping.numel, named);
  checkArray('gamma', r.gamma, paramDtype, grouping.params, named);
  if (f.hasBeta && !f.backward) checkArray('beta', r.beta, paramDtype, grouping.params, named);
  if (f.backward) checkArray('dy', r.dy, dtype, grouping.numel, named);
  checkEps(r.eps);
  return { grouping, dtype, paramDtype };
}
