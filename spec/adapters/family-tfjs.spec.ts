/**
 * The normalization family through TF.js 4.22 in Node (issue 24, JS side): the tfjs-cpu built-in's
 * layerNorm and layerNormBackward (tf.layers.layerNormalization, src/adapters/tfjs-layernorm.ts),
 * op by op against the float64 reference under the family judge, every rank 2-4 and every first
 * normalized axis, well-conditioned data; and the two documented TF.js findings by their
 * mechanism (docs/adapters.md): rank 5 refused by the layer, and dx at |x| ~ 1e15 off by a third.
 * Skips with a message when @tensorflow/tfjs cannot be loaded. (tfjs-wasm runs the same layer code.)
 */
import { describe, expect, it } from 'vitest';
import type { BatchNormImplementation, FamilyOp, FamilyRequest } from '../../src/contract/contract.js';
import { profiles } from '../../src/contract/profiles.js';
import { createBuiltin } from '../../src/harness/builtins.js';
import { accumulationFor, compareWithReference } from '../../src/judge/compare.js';
import { mulberry32 } from '../../src/numerics/random.js';

const tf = await import('@tensorflow/tfjs').then(
  () => true,
  () => false,
);
const profile = profiles.keras;

describe.skipIf(!tf)(`tf.layers.layerNormalization through tfjs-cpu${tf ? '' : ' (skipped: @tensorflow/tfjs is not installed)'}`, () => {
  it('layerNorm and layerNormBackward within the judge\'s bound at every rank 2-4 and first normalized axis', async () => {
    const impl = (await createBuiltin('tfjs-cpu')) as BatchNormImplementation;
    const rng = mulberry32(12);
    let n = 0;
    for (const shape of [[3, 8], [2, 6, 5], [2, 4, 3, 2]]) {
      for (let axis = 1; axis < shape.length; axis++) {
        const numel = shape.reduce((a, b) => a * b, 1);
        const P = shape.slice(axis).reduce((a, b) => a * b, 1);
        const f = (k: number, g: () => number) => Float32Array.from({ length: k }, g);
        const base = { x: f(numel, () => 2 * rng()), shape, axis, gamma: f(P, () => 0.5 + rng()), eps: 1e-3, dtype: 'float32' as const, paramDtype: 'float32' as const };
        const cases: Array<[FamilyOp, FamilyRequest]> = [
          ['layerNorm', { ...base, beta: f(P, () => rng() - 0.5) }],
          ['layerNormBackward', { ...base, dy: f(numel, () => 2 * rng() - 1) }],
        ];
        for (const [op, req] of cases) {
          const got = (await (impl[op] as unknown as (r: FamilyRequest) => Promise<Record<string, Float32Array>>)(req))!;
          const cmp = compareWithReference(op, profile, req, got, { accumulation: accumulationFor(impl, 'float32') });
          expect(cmp.ok, `${op} shape [${shape.join(', ')}] axis ${axis}: ${JSON.stringify(cmp.worst)} ${cmp.reason}`).toBe(true);
          n++;
        }
      }
    }
    expect(n).toBe(12);
  });

  it('the documented findings: rank 5 refused by the layer; dx at |x| ~ 1e15 a third off (rsqrt(var + eps)^3 subnormal in float32)', async () => {
    const impl = (await createBuiltin('tfjs-cpu')) as BatchNormImplementation;
    const shape5 = [2, 2, 2, 2, 3];
    const err = await Promise.resolve(impl.layerNorm!({ x: new Float32Array(48).fill(1), shape: shape5, axis: 1, gamma: new Float32Array(24).fill(1), beta: new Float32Array(24), eps: 1e-3 })).then(
      () => undefined,
      (e: unknown) => String(e),
    );
    expect(err).toMatch(/batchNormalization is not implemented for array of rank 5/);
    // the judge's shrunk counterexample (ln:edge:large-magnitude:dtype=float32;axis=first)
    const x = Float32Array.of(365832697806848, 1480169613164544, 1128790285615104, 909498516504576, 544801468448768, 1646897425022976, 2480169667264512, 2128790205497344, 1909498570604544, 1544801488994304, 2646897344905216, 2505684457357312);
    const dy = Float32Array.of(-0.9231083393096924, -0.2898528575897217, 0.7622430920600891, -0.6136156916618347, 0.8194823265075684, 0.29903221130371094, 0.5185075402259827, -0.8650256395339966, 0.34977614879608154, 0.8802460432052612, 0.153204545378685, 0.08288435637950897);
    const req = { x, dy, shape: [2, 2, 3], axis: 1, gamma: Float32Array.of(0.75, 1, 1.25, 1.5, 1.75, 0.75), eps: Math.fround(1e-3), dtype: 'float32' as const, paramDtype: 'float32' as const };
    const got = (await impl.layerNormBackward!(req)) as { dx: Float32Array };
    const cmp = compareWithReference('layerNormBackward', profile, req, got, { accumulation: accumulationFor(impl, 'float32') });
    expect(cmp.ok).toBe(false);
    expect(cmp.worst!.output).toBe('dx');
    // the reference's dx[11] is 7.1058e-17; TF.js loses a third of it
    expect(cmp.worst!.expected).toBeCloseTo(7.105832438651902e-17, 25);
    expect(Math.abs(cmp.worst!.got / cmp.worst!.expected - 1)).toBeGreaterThan(0.2);
  });
});
