/**
 * The synchronized-BN gallery: one small, otherwise correct cross-replica implementation (per
 * replica (count, mean, M2), merged by Chan's update; per replica partial gradient sums, added)
 * with one bug switched on, the bugs frameworks shipped (issue 13):
 *   bessel-local-count         running variance unbiased with a replica's own m (pytorch#22192)
 *   mean-of-means              global mean = plain average of replica means, whatever their
 *                              sizes (Paddle#32464)
 *   sum-of-squares             all-reduce sum x and sum x^2, variance E[x^2] - E[x]^2 in the
 *                              dtype (Keras 3 synchronized moments)
 *   backward-local-reduction   backward's mean(dy) and mean(dy xhat) over the replica's own
 *                              shard, not all-reduced (pytorch#36382's family)
 *   running-stats-replica0-only  only replica 0 updates its running statistics; the others
 *                              keep the old ones (buffers never synchronized)
 */
import type { Arr, BackwardSyncRequest, BatchNormImplementation, DType, ForwardTrainSyncRequest, Profile } from '../../src/contract/contract.js';
import { shardLayout } from '../../src/contract/layout-sync.js';

export type SyncBug = 'bessel-local-count' | 'mean-of-means' | 'sum-of-squares' | 'backward-local-reduction' | 'running-stats-replica0-only' | 'none';

const out = (dtype: DType, v: ArrayLike<number>): Arr => (dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v));

interface Part {
  n: number;
  mean: number;
  m2: number;
  sum: number;
  sumSq: number;
}

export function syncMutant(profile: Profile, bug: SyncBug): BatchNormImplementation {
  const decay = profile.momentum === 'decay';
  const unbiased = profile.runningVar === 'unbiased';
  const bessel = (m: number) => (unbiased ? m / Math.max(m - 1, 1) : 1);

  /** Values of channel c in shard r, in order. */
  const values = (x: Arr, shape: number[], axis: number, c: number): number[] => {
    const L = shardLayout(shape, axis, 'shard');
    const v: number[] = [];
    for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) v.push(x[(o * L.channels + c) * L.inner + i]!);
    return v;
  };
  const indices = (shape: number[], axis: number, c: number): number[] => {
    const L = shardLayout(shape, axis, 'shard');
    const v: number[] = [];
    for (let o = 0; o < L.outer; o++) for (let i = 0; i < L.inner; i++) v.push((o * L.channels + c) * L.inner + i);
    return v;
  };

  const stats = (req: ForwardTrainSyncRequest | BackwardSyncRequest, c: number) => {
    const f = req.dtype === 'float32' ? Math.fround : (v: number) => v;
    const parts: Part[] = req.shards.map((s) => {
      const v = values(s.x, s.shape, req.axis, c);
      const n = v.length;
      const mean = n ? v.reduce((a, b) => a + b, 0) / n : 0;
      let sum = 0;
      let sumSq = 0;
      for (const x of v) {
        sum = f(sum + x);
        sumSq = f(sumSq + f(x * x));
      }
      return { n, mean, m2: v.reduce((a, x) => a + (x - mean) ** 2, 0), sum, sumSq };
    });
    const N = parts.reduce((a, p) => a + p.n, 0);
    if (bug === 'sum-of-squares') {
      const S = parts.reduce((a, p) => f(a + p.sum), 0);
      const Q = parts.reduce((a, p) => f(a + p.sumSq), 0);
      const mean = f(S / N);
      return { N, parts, mean, variance: Math.max(0, f(f(Q / N) - f(mean * mean))) };
    }
    if (bug === 'mean-of-means') {
      const live = parts.filter((p) => p.n > 0);
      const mean = live.reduce((a, p) => a + p.mean, 0) / live.length;
      const variance = live.reduce((a, p) => a + p.m2 / p.n + (p.mean - mean) ** 2, 0) / live.length;
      return { N, parts, mean, variance };
    }
    let acc = { n: 0, mean: 0, m2: 0 };
    for (const p of parts) {
      if (p.n === 0) continue;
      const n = acc.n + p.n;
      const delta = p.mean - acc.mean;
      acc = { n, mean: acc.mean + (delta * p.n) / n, m2: acc.m2 + p.m2 + (delta * delta * acc.n * p.n) / n };
    }
    return { N, parts, mean: acc.mean, variance: acc.m2 / acc.n };
  };

  const refuse = (N: number) => {
    if (N === 1 && profile.singleValue === 'error') throw new Error('Expected more than 1 value per channel when training');
  };

  return {
    name: `sync gallery: ${bug}`,
    profile,
    dtypes: ['float32', 'float64'],
    forwardTrainSync(req) {
      const C = req.gamma.length;
      const R = req.shards.length;
      const ys = req.shards.map((s) => new Float64Array(s.x.length));
      const rm = Array.from({ length: R }, () => new Float64Array(C));
      const rv = Array.from({ length: R }, () => new Float64Array(C));
      const mean = new Float64Array(C);
      const variance = new Float64Array(C);
      const keep = decay ? req.momentum : 1 - req.momentum;
      const take = decay ? 1 - req.momentum : req.momentum;
      for (let c = 0; c < C; c++) {
        const st = stats(req, c);
        refuse(st.N);
        mean[c] = st.mean;
        variance[c] = st.variance;
        const s = Math.sqrt(st.variance + req.eps);
        req.shards.forEach((sh, r) => {
          for (const i of indices(sh.shape, req.axis, c)) ys[r]![i] = (req.gamma[c]! * (sh.x[i]! - st.mean)) / s + req.beta[c]!;
          const m = bug === 'bessel-local-count' ? st.parts[r]!.n : st.N;
          const stale = bug === 'running-stats-replica0-only' && r > 0;
          rm[r]![c] = stale ? req.runningMean[c]! : keep * req.runningMean[c]! + take * st.mean;
          rv[r]![c] = stale ? req.runningVar[c]! : keep * req.runningVar[c]! + take * st.variance * bessel(m);
        });
      }
      return {
        replicas: req.shards.map((_, r) => ({ y: out(req.dtype, ys[r]!), runningMean: out(req.paramDtype, rm[r]!), runningVar: out(req.paramDtype, rv[r]!) })),
        mean: out(req.paramDtype, mean),
        variance: out(req.paramDtype, variance),
      };
    },
    backwardSync(req) {
      const C = req.gamma.length;
      const dxs = req.shards.map((s) => new Float64Array(s.x.length));
      const dgamma = new Float64Array(C);
      const dbeta = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const st = stats(req, c);
        refuse(st.N);
        const s = Math.sqrt(st.variance + req.eps);
        const local = req.shards.map((sh) => {
          let q = 0;
          let p = 0;
          for (const i of indices(sh.shape, req.axis, c)) {
            q += sh.dy[i]!;
            p += (sh.dy[i]! * (sh.x[i]! - st.mean)) / s;
          }
          return { q, p };
        });
        dbeta[c] = local.reduce((a, l) => a + l.q, 0);
        dgamma[c] = local.reduce((a, l) => a + l.p, 0);
        req.shards.forEach((sh, r) => {
          const n = bug === 'backward-local-reduction' ? st.parts[r]!.n : st.N;
          const Q = bug === 'backward-local-reduction' ? local[r]!.q / n : dbeta[c]! / n;
          const P = bug === 'backward-local-reduction' ? local[r]!.p / n : dgamma[c]! / n;
          for (const i of indices(sh.shape, req.axis, c)) dxs[r]![i] = (req.gamma[c]! * (sh.dy[i]! - Q - ((sh.x[i]! - st.mean) / s) * P)) / s;
        });
      }
      return { replicas: req.shards.map((_, r) => ({ dx: out(req.dtype, dxs[r]!) })), dgamma: out(req.paramDtype, dgamma), dbeta: out(req.paramDtype, dbeta) };
    },
  };
}
