/**
 * which-axes: BatchNorm, LayerNorm, InstanceNorm, GroupNorm and RMSNorm on one [N, C, H, W] tensor.
 * They differ only in which values share statistics (src/contract/grouping.ts); every grouping,
 * statistic and output here comes from the contract's grouping constructors and the float64
 * reference at run time, including the contrast (change one sample, see whose outputs move).
 */
import type { FamilyOp, ForwardTrainResult, NormForwardResult } from '../../contract/contract.js';
import { batchGrouping, describeGroup, groupGrouping, groupOf, indicesOf, instanceGrouping, layerGrouping, multiIndex, type Grouping } from '../../contract/grouping.js';
import { resolveProfile } from '../../contract/profiles.js';
import { referenceFamily } from '../../reference/family.js';
import { groupStats } from '../../reference/grouped.js';
import { referenceForwardTrain } from '../../reference/reference.js';
import { type Topic, normals, num, table } from '../common.js';
import { groupDiagram } from '../svg.js';

export type AxesOp = 'BN' | 'LN' | 'IN' | 'GN' | 'RMS';

export interface OpGroups {
  op: AxesOp;
  name: string;
  /** How the reference is called (op and axis). */
  call: string;
  groups: number;
  m: number;
  /** The statistics group of every element (row-major [N, C, H, W]), from the grouping. */
  groupOf: number[];
  /** Each group: in words, as a slice of x, and its element indices. */
  members: Array<{ label: string; slice: string; indices: number[] }>;
  /** Per group, the reference's statistics (grouped.ts groupStats): mean (0 for RMS, which does not centre) and biased variance (RMS: mean(x²)). */
  mean: number[];
  variance: number[];
  /** The reference's outputs (gamma 1, beta 0) on x, and on x with sample 1 replaced. */
  y: number[];
  yChanged: number[];
  /** max |Δy| over sample 0's and sample 1's outputs when sample 1 is replaced. */
  dSample0: number;
  dSample1: number;
  /** max |y(sample 0 alone, a batch of 1) − y(sample 0 within the batch)|. */
  dAlone: number;
}

export interface WhichAxesData {
  shape: [number, number, number, number];
  eps: number;
  gnGroups: number;
  x: number[];
  /** x with sample 1 replaced by other values (sample 0 unchanged). */
  xChanged: number[];
  ops: OpGroups[];
  /** LayerNorm at the last axis only (Keras LayerNormalization's default axis=-1 on this NCHW tensor). */
  lnLastAxis: { groups: number; m: number };
}

const SHAPE: [number, number, number, number] = [2, 4, 2, 2];
const EPS = 1e-5; // torch's default for BN, LN, GN and IN (and ONNX's)
const GN_GROUPS = 2;
const PROFILE = resolveProfile('pytorch');

const names = (ops: OpGroups[]) => (ops.length ? ops.map((o) => o.op).join(', ') : 'none');

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>, from: number, to: number) => {
  let d = 0;
  for (let i = from; i < to; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

/** A group as a slice of x ([n, c, h, w] with ':' for a whole axis and a..b for a range), checked to hold exactly the group's elements. */
function sliceOf(shape: readonly number[], indices: Int32Array): string {
  const per = shape.map(() => new Set<number>());
  for (const i of indices) multiIndex(shape, i).forEach((v, k) => per[k]!.add(v));
  const parts = per.map((set, k) => {
    const v = [...set].sort((a, b) => a - b);
    if (v.length === shape[k]) return ':';
    if (v.length === 1) return String(v[0]);
    return v[v.length - 1]! - v[0]! === v.length - 1 ? `${v[0]}..${v[v.length - 1]}` : `{${v.join(',')}}`;
  });
  // a product of per-axis sets: exactly the group when its size equals the group's
  const size = per.reduce((p, s) => p * s.size, 1);
  return size === indices.length ? `x[${parts.join(', ')}]` : `${indices.length} elements`;
}

interface OpDef {
  op: AxesOp;
  name: string;
  call: string;
  grouping: Grouping;
  run(x: Float64Array, shape: number[]): Float64Array;
  centred: boolean;
}

function defs(): OpDef[] {
  const [, C] = SHAPE;
  const ones = (n: number) => new Float64Array(n).fill(1);
  const family = (op: FamilyOp, extra: Record<string, unknown> = {}) => (x: Float64Array, shape: number[]) => {
    const params = op === 'layerNorm' || op === 'rmsNorm' ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[1]!;
    const req = { x, shape, axis: 1, gamma: ones(params), ...(op === 'rmsNorm' ? {} : { beta: new Float64Array(params) }), eps: EPS, ...extra };
    return (referenceFamily(PROFILE, op, req as never) as NormForwardResult).y as Float64Array;
  };
  return [
    {
      op: 'BN',
      name: 'BatchNorm',
      call: 'forwardTrain, channel axis 1',
      grouping: batchGrouping(SHAPE, 1),
      centred: true,
      run: (x, shape) =>
        (
          referenceForwardTrain(PROFILE, { x, shape, axis: 1, gamma: ones(C), beta: new Float64Array(C), eps: EPS, momentum: 0.1, runningMean: new Float64Array(C), runningVar: ones(C) }) as ForwardTrainResult
        ).y as Float64Array,
    },
    { op: 'LN', name: 'LayerNorm', call: 'layerNorm, axis 1 (torch normalized_shape [C, H, W], ONNX axis 1)', grouping: layerGrouping(SHAPE, 1), centred: true, run: family('layerNorm') },
    { op: 'IN', name: 'InstanceNorm', call: 'instanceNorm, channel axis 1', grouping: instanceGrouping(SHAPE, 1), centred: true, run: family('instanceNorm') },
    { op: 'GN', name: `GroupNorm (G = ${GN_GROUPS})`, call: `groupNorm, channel axis 1, groups ${GN_GROUPS}`, grouping: groupGrouping(SHAPE, 1, GN_GROUPS), centred: true, run: family('groupNorm', { groups: GN_GROUPS }) },
    { op: 'RMS', name: 'RMSNorm', call: 'rmsNorm, axis 1', grouping: layerGrouping(SHAPE, 1), centred: false, run: family('rmsNorm') },
  ];
}

export const whichAxes: Topic<WhichAxesData> = {
  id: 'which-axes',
  title: 'Which values share statistics: BN, LN, IN, GN and RMSNorm on one tensor',
  summary: 'BatchNorm vs LayerNorm vs InstanceNorm vs GroupNorm vs RMSNorm: which axes they reduce over, and what that means for batches and inference',
  checks: [
    'bn:consistency:batch-statistics:*',
    'bn:invariance:channel-independence:*',
    'bn:invariance:batch-permutation:*',
    'ln:invariance:sample-independence:*',
    'in:invariance:sample-independence:*',
    'gn:invariance:sample-independence:*',
    'rms:invariance:sample-independence:*',
    'ln:normalization:*',
    'gn:identities:*',
    'in:identities:*',
    'rms:identities:*',
  ],
  compute() {
    const [N, C, H, W] = SHAPE;
    const numel = N * C * H * W;
    const per = numel / N;
    // channel c centred near 3c with its own spread, so BN's per-channel statistics visibly differ
    const z = normals(23, numel);
    const x = Array.from(z, (v, i) => {
      const c = Math.floor(i / (H * W)) % C;
      return Number((3 * c + (0.5 + 0.5 * c) * v).toFixed(3));
    });
    // sample 1 replaced by other values (a different image in the batch); sample 0 untouched
    const z2 = normals(24, per);
    const xChanged = x.map((v, i) => (i < per ? v : Number((2 * z2[i - per]! - 1).toFixed(3))));
    const xa = Float64Array.from(x);
    const xb = Float64Array.from(xChanged);
    const alone = xa.slice(0, per);
    const ops = defs().map((d): OpGroups => {
      const G = d.grouping;
      const st = groupStats(xa, G, d.centred);
      const y = d.run(xa, [...SHAPE]);
      const yChanged = d.run(xb, [...SHAPE]);
      const yAlone = d.run(alone, [1, C, H, W]);
      return {
        op: d.op,
        name: d.name,
        call: d.call,
        groups: G.groups,
        m: G.m,
        groupOf: Array.from({ length: numel }, (_, i) => groupOf(G, i)),
        members: Array.from({ length: G.groups }, (_, g) => {
          const idx = indicesOf(G, g);
          // describeGroup names LayerNorm's groups by row index; on this tensor a row is a sample
          const label = G.kind === 'layer' ? `sample ${g}, all its C·H·W values` : describeGroup(G, g);
          return { label, slice: sliceOf(SHAPE, idx), indices: Array.from(idx) };
        }),
        mean: Array.from(st.meanHi, (h, g) => h + st.meanLo[g]!),
        variance: Array.from(st.variance),
        y: Array.from(y),
        yChanged: Array.from(yChanged),
        dSample0: maxAbsDiff(y, yChanged, 0, per),
        dSample1: maxAbsDiff(y, yChanged, per, numel),
        dAlone: maxAbsDiff(y, yAlone, 0, per),
      };
    });
    const last = layerGrouping(SHAPE, 3);
    return { shape: SHAPE, eps: EPS, gnGroups: GN_GROUPS, x, xChanged, ops, lnLastAxis: { groups: last.groups, m: last.m } };
  },
  render(d) {
    const [N, C, H, W] = d.shape;
    const S = H * W;
    const by = Object.fromEntries(d.ops.map((o) => [o.op, o])) as Record<AxesOp, OpGroups>;
    // the group map as text: per op, N blocks of C rows × H·W group numbers
    const map = (o: OpGroups) => {
      const head = `        ${Array.from({ length: N }, (_, n) => `sample ${n}`.padEnd(S * 3 + 3)).join('')}`.trimEnd();
      const rows = Array.from({ length: C }, (_, c) =>
        `    c${c}  ${Array.from({ length: N }, (_, n) => Array.from({ length: S }, (_, s) => String(o.groupOf[(n * C + c) * S + s]).padStart(2)).join(' ').padEnd(S * 3 + 3)).join('')}`.trimEnd(),
      );
      return [head, ...rows].join('\n');
    };
    const sections = d.ops.map((o) =>
      [
        `${o.op}: ${o.name} (${o.call}): ${o.groups} groups of m = ${o.m} values`,
        map(o),
        table(
          ['group', 'which values', 'elements', o.op === 'RMS' ? 'mean(x²)' : 'mean', o.op === 'RMS' ? 'rms = √mean(x²)' : 'variance (1/m)'],
          o.members.map((mb, g) => [String(g), mb.label, mb.slice, num(o.op === 'RMS' ? o.variance[g]! : o.mean[g]!, 5), num(o.op === 'RMS' ? Math.sqrt(o.variance[g]!) : o.variance[g]!, 5)]),
        ),
      ].join('\n'),
    );
    const bn = by.BN;
    const gn = by.GN;
    const sameShape = bn.groups === gn.groups && bn.m === gn.m;
    return [
      `One tensor x of shape [N, C, H, W] = [${d.shape.join(', ')}] (channel c centred near 3c), five normalizations,`,
      `eps = ${num(d.eps)}. They compute the same thing, (x − mean) / √(variance + eps) (RMSNorm: x / √(mean(x²) + eps)),`,
      'and differ only in WHICH values share one mean and one variance. Each map below shows, for every',
      'element, the number of the statistics group it belongs to (from the grouping the reference uses).',
      '',
      sections.join('\n\n'),
      '',
      sameShape
        ? `BN and GN (G = ${d.gnGroups}) both have ${bn.groups} groups of ${bn.m} here, but not the same values: BN's group c is channel c across both samples, GN's group is C/G = ${C / d.gnGroups} channels of one sample.`
        : '',
      `LayerNorm's axis matters: at axis 1 (torch normalized_shape [C, H, W]) it has ${by.LN.groups} groups of ${by.LN.m}; Keras LayerNormalization's`,
      `default axis=-1 on this NCHW tensor normalizes over W alone: ${d.lnLastAxis.groups} groups of ${d.lnLastAxis.m}.`,
      '',
      'The seed question ("one mini-batch for all features, or different samples per dimension?"), per op:',
      `  BN   one batch, per-feature statistics: channel c's mean and variance run over all N samples and positions`,
      `       (m = N·H·W = ${bn.m}). Samples are coupled, so inference cannot use batch statistics: it uses moving`,
      '       averages of them (running mean and variance), and training and inference outputs differ.',
      `  LN   per sample, over its features (m = C·H·W = ${by.LN.m}): no batch coupling, each sample is normalized on its own;`,
      '       the same computation in training and inference, no running statistics.',
      `  IN   per (sample, channel) over H·W (m = ${by.IN.m}): ${by.IN.groups} groups; sample-independent like LN.`,
      `  GN   per (sample, group of ${C / d.gnGroups} channels) (m = ${gn.m}); G = 1 is LN, G = C is IN.`,
      `  RMS  LN's grouping (${by.RMS.groups} groups of ${by.RMS.m}) without centring: x / √(mean(x²) + eps) (see \`explain rms-norm\`).`,
      '',
      'Computed, not asserted: replace sample 1 with other values, and normalize sample 0 alone (a batch of one):',
      table(
        ['op', 'groups × m', 'max |Δy| in sample 0', 'max |Δy| in sample 1', 'sample 0 alone vs in the batch'],
        d.ops.map((o) => [o.op, `${o.groups} × ${o.m}`, num(o.dSample0, 4), num(o.dSample1, 4), num(o.dAlone, 4)]),
      ),
      `Sample 0's outputs move when sample 1 changes: ${names(d.ops.filter((o) => o.dSample0 !== 0))}; a different answer for sample 0 alone:`,
      `${names(d.ops.filter((o) => o.dAlone !== 0))}. Bit-identical outputs for sample 0 either way: ${names(d.ops.filter((o) => o.dSample0 === 0 && o.dAlone === 0))}.`,
    ]
      .filter((l, i, a) => !(l === '' && a[i - 1] === ''))
      .join('\n');
  },
  plots: {
    'which-axes-groups': (d) =>
      groupDiagram({
        title: 'Which values share statistics',
        subtitle: `x: [N, C, H, W] = [${d.shape.join(', ')}] as N blocks of C rows × H·W cells; one colour and number per statistics group`,
        N: d.shape[0],
        C: d.shape[1],
        S: d.shape[2] * d.shape[3],
        panels: d.ops.map((o) => ({
          name: o.op === 'GN' ? `GN (G = ${d.gnGroups})` : o.op,
          caption: {
            BN: 'per channel, over every sample: couples the batch; moving averages at inference',
            LN: 'per sample, over all its features: no batch coupling',
            IN: 'per sample and channel, over H·W',
            GN: 'per sample and group of channels',
            RMS: "LN's groups, no centring: x / rms(x)",
          }[o.op],
          groupOf: o.groupOf,
        })),
      }),
  },
};
