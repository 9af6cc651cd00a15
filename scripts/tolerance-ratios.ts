/**
 * The README's tolerance figures, measured: the worst error-to-bound ratio of the honest float32
 * kernels (two-pass, Welford, folded; every operation in float32, sequential float32 sums,
 * declared as such) over spec/tolerance.spec.ts's domain, and at m = 2^20 on same-sign data;
 * and how far the one-pass E[x^2] - E[x]^2 kernel exceeds the bound as |mean|/std grows.
 * `npx tsx scripts/tolerance-ratios.ts [problems]` (default 3000 per variant).
 */
import { compareForwardTrain } from '../src/judge/compare.js';
import { mulberry32 } from '../src/numerics/random.js';
import { profiles } from '../src/contract/profiles.js';
import { conditionedRequest, f32Train, type F32Variant } from '../src/teach/f32-kernel.js';

const F32_SEQ = { dtype: 'float32', order: 'sequential' } as const;
const N = Number(process.argv[2] ?? 3000);
const rnd = mulberry32(20261130);

const request = (shape: number[], axis: number, mu: number, sigma: number, eps: number) => conditionedRequest(shape, axis, mu, sigma, rnd, eps);

const worstOf = (cmp: { ratios: Record<string, number> }) => Math.max(...Object.values(cmp.ratios));
const shapes: Array<[number[], number]> = [[[64, 3], 1], [[8, 2, 5, 5], 1], [[4, 6, 6, 3], 3], [[2, 2], 0], [[300, 2], 1]];

for (const variant of ['two-pass', 'welford', 'folded'] as F32Variant[]) {
  let worst = 0;
  for (let k = 0; k < N; k++) {
    const [shape, axis] = shapes[k % shapes.length]!;
    const sigma = 10 ** (-6 + 10 * rnd());
    const ratio = 10 ** (6 * rnd());
    const eps = [0, 1e-5, 1e-3, 1][k % 4]!;
    const profile = Object.values(profiles)[k % 5]!;
    const req = request(shape, axis, sigma * ratio, sigma, eps);
    worst = Math.max(worst, worstOf(compareForwardTrain(profile, req, f32Train(profile, req, variant), { accumulation: F32_SEQ })));
  }
  const big = request([2 ** 20, 1], 1, 0.1, 0.001 / 1.7, 1e-5);
  const large = worstOf(compareForwardTrain(profiles.keras, big, f32Train(profiles.keras, big, variant), { accumulation: F32_SEQ }));
  console.log(`${variant.padEnd(8)} worst ratio over ${N} problems (|mean|/std 1 to 1e6, m <= 300): ${worst.toPrecision(2)}; at m = 2^20, 0.1 +- 0.001: ${large.toPrecision(2)}`);
}
for (const r of [10, 100, 1e3, 1e4]) {
  const req = request([64, 3], 1, r * 1e-2, 1e-2, 1e-3);
  const cmp = compareForwardTrain(profiles.keras, req, f32Train(profiles.keras, req, 'one-pass'), { accumulation: F32_SEQ });
  console.log(`one-pass at |mean|/std = ${r}: variance ratio ${cmp.ratios.variance?.toPrecision(3)}, worst ${worstOf(cmp).toPrecision(3)}`);
}
const big = request([2 ** 20, 1], 1, 0.1, 0.001 / 1.7, 1e-5);
console.log(`one-pass at m = 2^20, 0.1 +- 0.001: worst ${worstOf(compareForwardTrain(profiles.keras, big, f32Train(profiles.keras, big, 'one-pass'), { accumulation: F32_SEQ })).toPrecision(3)}`);
