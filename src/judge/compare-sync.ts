/**
 * The judge's expectation for the synchronized ops: single-device BatchNorm over the
 * concatenated global batch (the proven reference), split back replica by replica, with the
 * merged-statistics bounds of syncTolerance (src/judge/tolerance.ts). Outputs are named the way a
 * report shows them: replicas[2].y, replicas[0].runningVar, mean, dgamma, …
 */
import { checkAgainst, type Comparison, type Expectation } from './compare.js';
import type { AccumulationInfo, BackwardSyncRequest, ForwardTrainSyncRequest, Profile, SyncOp } from '../contract/contract.js';
import { concatenatedRows, shardFromRows, shardRows, validateSyncRequest, type SyncLayout } from '../contract/layout-sync.js';
import { effectiveEps, emaWeights, runningVarFactor } from '../contract/profiles.js';
import { channelStats } from '../reference/reference.js';
import { type ChannelBounds, type ChannelFacts, syncTolerance } from './tolerance.js';

export interface SyncExpectation extends Expectation {
  layout: SyncLayout;
}

/** Exact per-channel facts over the concatenation, and each replica's exact local mean. */
function globalFacts(req: ForwardTrainSyncRequest | BackwardSyncRequest, layout: SyncLayout, eps: number, withDy: boolean) {
  const C = layout.channels;
  const m = layout.m;
  const rows = concatenatedRows(req.shards.map((s) => s.x), layout);
  const dyRows = withDy ? concatenatedRows((req as BackwardSyncRequest).shards.map((s) => s.dy), layout) : undefined;
  const st = channelStats(rows, { outer: m, channels: C, inner: 1, m, numel: m * C });
  const mean = Float64Array.from(st.meanHi, (h, c) => h + st.meanLo[c]!);
  const s = Float64Array.from(st.variance, (v) => Math.sqrt(v + eps));
  const maxReplicaAbsMean = new Float64Array(C);
  layout.shards.forEach((L, r) => {
    if (L.m === 0) return;
    const local = channelStats(shardRows(req.shards[r]!.x, L), { outer: L.m, channels: C, inner: 1, m: L.m, numel: L.m * C });
    for (let c = 0; c < C; c++) maxReplicaAbsMean[c] = Math.max(maxReplicaAbsMean[c]!, Math.abs(local.meanHi[c]! + local.meanLo[c]!));
  });
  const facts: ChannelFacts[] = [];
  for (let c = 0; c < C; c++) {
    let abs = 0;
    let dev = 0;
    let aDy = 0;
    let aDyXhat = 0;
    let aDyX = 0;
    for (let k = 0; k < m; k++) {
      const x = rows[k * C + c]!;
      abs += Math.abs(x);
      dev = Math.max(dev, Math.abs(x - st.meanHi[c]! - st.meanLo[c]!));
      if (dyRows) {
        const dy = dyRows[k * C + c]!;
        aDy += Math.abs(dy);
        aDyXhat += Math.abs((dy * (x - st.meanHi[c]! - st.meanLo[c]!)) / s[c]!);
        aDyX += Math.abs(dy * x);
      }
    }
    facts.push({
      m,
      mean: mean[c]!,
      variance: st.variance[c]!,
      eps,
      absMean: abs / m,
      maxDev: dev,
      gamma: req.gamma[c]!,
      training: true,
      ...(dyRows ? { meanAbsDy: aDy / m, meanAbsDyXhat: aDyXhat / m, meanAbsDyX: aDyX / m } : {}),
    });
  }
  return { rows, dyRows, st, mean, s, facts, maxReplicaAbsMean };
}

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

/**
 * Expected outputs and bounds for a synchronized op. The reference answer is computed on the
 * concatenation (channelStats, not the merge a kernel would do), so a kernel is never compared
 * with its own algorithm.
 */
export function expectationForSync(
  op: SyncOp,
  profile: Profile,
  req: ForwardTrainSyncRequest | BackwardSyncRequest,
  opts: { accumulation: AccumulationInfo },
): SyncExpectation {
  const layout = validateSyncRequest(op, req);
  const C = layout.channels;
  const m = layout.m;
  const eps = effectiveEps(profile, req.eps);
  const g = globalFacts(req, layout, eps, op === 'backwardSync');
  const bounds: ChannelBounds[] = g.facts.map((f, c) =>
    syncTolerance({ dtype: req.dtype, accumulation: opts.accumulation }, f, {
      replicas: layout.shards.length,
      maxLocalM: layout.maxLocalM,
      maxReplicaAbsMean: g.maxReplicaAbsMean[c]!,
    }),
  );
  const expected: Record<string, Float64Array> = {};
  const bound: Record<string, Float64Array> = {};
  const channelOfOutput: Record<string, (i: number) => number> = {};
  const perElementChannel = (r: number) => {
    const L = layout.shards[r]!;
    return (i: number) => Math.floor(i / L.inner) % L.channels;
  };
  const xhatRows = (k: number, c: number) => (g.rows[k * C + c]! - g.st.meanHi[c]! - g.st.meanLo[c]!) / g.s[c]!;

  if (op === 'forwardTrainSync') {
    const r = req as ForwardTrainSyncRequest;
    const { keep, take } = emaWeights(profile, r.momentum);
    const bessel = runningVarFactor(profile, m);
    const yRows = new Float64Array(m * C);
    const yBound = new Float64Array(m * C);
    for (let k = 0; k < m; k++) {
      for (let c = 0; c < C; c++) {
        const xh = xhatRows(k, c);
        const y = r.gamma[c]! * xh + r.beta[c]!;
        yRows[k * C + c] = y;
        yBound[k * C + c] = bounds[c]!.y(xh, g.rows[k * C + c]!, y);
      }
    }
    const runningMean = Float64Array.from({ length: C }, (_, c) => keep * r.runningMean[c]! + take * g.mean[c]!);
    const runningVar = Float64Array.from({ length: C }, (_, c) => keep * r.runningVar[c]! + take * bessel * g.st.variance[c]!);
    const rmBound = Float64Array.from({ length: C }, (_, c) => bounds[c]!.runningMean(keep, take, r.momentum, r.runningMean[c]!, runningMean[c]!));
    const rvBound = Float64Array.from({ length: C }, (_, c) => bounds[c]!.runningVar(keep, take, r.momentum, r.runningVar[c]!, bessel, runningVar[c]!));
    let row = 0;
    layout.shards.forEach((L, rep) => {
      expected[`replicas[${rep}].y`] = shardFromRows(yRows, L, row);
      bound[`replicas[${rep}].y`] = shardFromRows(yBound, L, row);
      channelOfOutput[`replicas[${rep}].y`] = perElementChannel(rep);
      for (const [name, e, b] of [
        ['runningMean', runningMean, rmBound],
        ['runningVar', runningVar, rvBound],
      ] as const) {
        expected[`replicas[${rep}].${name}`] = e;
        bound[`replicas[${rep}].${name}`] = b;
      }
      row += L.m;
    });
    expected.mean = g.mean;
    bound.mean = Float64Array.from(bounds, (b) => b.mean);
    expected.variance = f64(g.st.variance);
    bound.variance = Float64Array.from(bounds, (b) => b.variance);
  } else {
    const r = req as BackwardSyncRequest;
    const dyRows = g.dyRows!;
    const sumAbsDy = Float64Array.from(g.facts, (f) => f.meanAbsDy! * m);
    const exact = exactGradSums(g.rows, dyRows, g.st, g.s, m, C);
    const dxRows = new Float64Array(m * C);
    const dxBound = new Float64Array(m * C);
    for (let k = 0; k < m; k++) {
      for (let c = 0; c < C; c++) {
        const Q = exact.dbeta[c]! / m;
        const P = exact.dgamma[c]! / m;
        const xh = xhatRows(k, c);
        const dy = dyRows[k * C + c]!;
        const dx = (r.gamma[c]! * (dy - Q - xh * P)) / g.s[c]!;
        dxRows[k * C + c] = dx;
        dxBound[k * C + c] = bounds[c]!.dx(xh, g.rows[k * C + c]!, dy, Q, P, dx);
      }
    }
    let row = 0;
    layout.shards.forEach((L, rep) => {
      expected[`replicas[${rep}].dx`] = shardFromRows(dxRows, L, row);
      bound[`replicas[${rep}].dx`] = shardFromRows(dxBound, L, row);
      channelOfOutput[`replicas[${rep}].dx`] = perElementChannel(rep);
      row += L.m;
    });
    expected.dgamma = exact.dgamma;
    bound.dgamma = Float64Array.from(bounds, (b, c) => b.dgamma(exact.dgamma[c]!));
    expected.dbeta = exact.dbeta;
    bound.dbeta = Float64Array.from(bounds, (b, c) => b.dbeta(sumAbsDy[c]!, exact.dbeta[c]!));
  }
  return {
    layout,
    expected,
    bounds: bound,
    channelOf: (output, i) => (channelOfOutput[output] ? channelOfOutput[output]!(i) : i),
    reasons: bounds.map((b) => b.reason),
  };
}

/** dbeta = sum dy and dgamma = sum dy * xhat per channel, compensated (Neumaier). */
function exactGradSums(
  rows: Float64Array,
  dyRows: Float64Array,
  st: { meanHi: Float64Array; meanLo: Float64Array },
  s: Float64Array,
  m: number,
  C: number,
) {
  const dbeta = new Float64Array(C);
  const dgamma = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let a = 0;
    let ac = 0;
    let b = 0;
    let bc = 0;
    for (let k = 0; k < m; k++) {
      const dy = dyRows[k * C + c]!;
      const t = dy * ((rows[k * C + c]! - st.meanHi[c]! - st.meanLo[c]!) / s[c]!);
      const a1 = a + dy;
      ac += Math.abs(a) >= Math.abs(dy) ? a - a1 + dy : dy - a1 + a;
      a = a1;
      const b1 = b + t;
      bc += Math.abs(b) >= Math.abs(t) ? b - b1 + t : t - b1 + b;
      b = b1;
    }
    dbeta[c] = a + ac;
    dgamma[c] = b + bc;
  }
  return { dbeta, dgamma };
}

/** Flatten a synchronized result to the expectation's output names (replicas[r].y, mean, …). */
export function flattenSyncResult(result: { replicas: Array<Record<string, ArrayLike<number>>> } & Record<string, unknown>): Record<string, ArrayLike<number>> {
  const out: Record<string, ArrayLike<number>> = {};
  result.replicas.forEach((rep, r) => {
    for (const [k, v] of Object.entries(rep)) out[`replicas[${r}].${k}`] = v;
  });
  for (const [k, v] of Object.entries(result)) if (k !== 'replicas' && ArrayBuffer.isView(v)) out[k] = v as unknown as ArrayLike<number>;
  return out;
}

export function checkSync(e: SyncExpectation, got: Parameters<typeof flattenSyncResult>[0]): Comparison {
  return checkAgainst(e, flattenSyncResult(got));
}
