/**
 * The normalization family's browser built-ins (issue 24, JS side), in headless Chromium through
 * the browser door: onnxruntime-web's wasm GroupNormalization-21 op by op against the family judge
 * (the same kernels as onnxruntime-node: passes on well-conditioned data), its webgpu
 * LayerNormalization's documented one-pass variance (docs/adapters.md: x = [-2048, -2049] gives
 * y = ±0.7064 where ±0.99801 is exact), the load-time placement guard (RMSNormalization-23 runs on
 * ORT's CPU provider, so ort-webgpu-rmsnorm refuses to load with ORT's words), and the measured
 * subnormal flush declared. Skips, saying why, without Chromium / playwright-core / esbuild /
 * onnxruntime-web; with BN_REQUIRE_BROWSER=1 (CI) a missing one fails instead.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BatchNormImplementation, FamilyRequest } from '../../src/contract/contract.js';
import { profiles } from '../../src/contract/profiles.js';
import { createBuiltin } from '../../src/harness/builtins.js';
import { accumulationFor, compareWithReference } from '../../src/judge/compare.js';
import { mulberry32 } from '../../src/numerics/random.js';

const executablePath = process.env.BN_CHROMIUM || '/usr/bin/chromium';
let reason = '';
if (!existsSync(executablePath)) reason = `no Chromium at ${executablePath} (apt-get install -y chromium, or BN_CHROMIUM)`;
else {
  try {
    await import('playwright-core');
    await import('esbuild');
    await import('onnxruntime-web');
  } catch (e) {
    reason = `playwright-core, esbuild or onnxruntime-web is not installed (${(e as Error).message.split('\n')[0]})`;
  }
}
if (reason) {
  if (process.env.BN_REQUIRE_BROWSER === '1') throw new Error(`BN_REQUIRE_BROWSER=1 but the browser door cannot run here: ${reason}`);
  console.warn(`[family-browser.spec] SKIPPING: ${reason}`);
}

type Closable = BatchNormImplementation & { close(): Promise<void> };
const f32 = (...v: number[]) => Float32Array.from(v);

describe.skipIf(!!reason)(`the family in onnxruntime-web${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('wasm: GroupNormalization-21 within the judge\'s bound on well-conditioned data (ranks 2-4, group counts 1, 2, C)', async () => {
    const impl = (await createBuiltin('ort-web-groupnorm')) as Closable;
    try {
      expect(impl.name).toMatch(/onnxruntime-web 1\.30.*wasm execution provider/);
      const rng = mulberry32(3);
      for (const shape of [[3, 4], [2, 4, 5], [2, 6, 2, 3]]) {
        for (const groups of [1, 2, shape[1]!]) {
          const n = shape.reduce((a, b) => a * b, 1);
          const C = shape[1]!;
          const req = { x: Float32Array.from({ length: n }, () => 2 * rng()), shape, axis: 1, groups, gamma: Float32Array.from({ length: C }, () => 0.5 + rng()), beta: Float32Array.from({ length: C }, () => rng() - 0.5), eps: 1e-3, dtype: 'float32' as const, paramDtype: 'float32' as const };
          const got = (await impl.groupNorm!(req)) as unknown as Record<string, Float32Array>;
          const cmp = compareWithReference('groupNorm', profiles.onnx, req as FamilyRequest, got, { accumulation: accumulationFor(impl, 'float32') });
          expect(cmp.ok, `shape [${shape.join(', ')}] groups ${groups}: ${JSON.stringify(cmp.worst)}`).toBe(true);
        }
      }
    } finally {
      await impl.close();
    }
  }, 120_000);

  it('webgpu: LayerNormalization-17 runs on the provider, flushes subnormals (declared), and forms the variance in one pass: x = [-2048, -2049] gives ±0.7064', async () => {
    const impl = (await createBuiltin('ort-webgpu-layernorm')) as Closable;
    try {
      expect(impl.name).toMatch(/webgpu execution provider \[every node on JsExecutionProvider\]/);
      expect(impl.name).toMatch(/flushes subnormals/);
      expect(impl.accumulation).toEqual({ float32: { dtype: 'float32', order: 'sequential', subnormals: 'flush-to-zero' } });
      const req = { x: f32(-2048, -2049), shape: [1, 2], axis: 1, gamma: f32(1, 1), beta: f32(0, 0), eps: Math.fround(1e-3), dtype: 'float32' as const, paramDtype: 'float32' as const };
      const got = (await impl.layerNorm!(req)) as { y: Float32Array };
      // exact: (x - mean) / sqrt(0.25 + eps) = ±0.99801; the one-pass float32 variance is 0.5, not 0.25
      expect(Math.abs(got.y[0]!)).toBeCloseTo(0.5 / Math.sqrt(0.5 + Math.fround(1e-3)), 5);
      const cmp = compareWithReference('layerNorm', profiles.onnx, req, got, { accumulation: accumulationFor(impl, 'float32') });
      expect(cmp.ok).toBe(false);
    } finally {
      await impl.close();
    }
  }, 120_000);

  it('webgpu: ort-webgpu-rmsnorm refuses to load, quoting ORT\'s placement (RMSNormalization-23 on the CPU provider)', async () => {
    const err = await createBuiltin('ort-webgpu-rmsnorm').then(
      async (impl) => {
        await (impl as Closable).close();
        return '';
      },
      (e: unknown) => String(e),
    );
    expect(err).toMatch(/does not run RMSNormalization-23.*placed all 1 nodes on the CPU execution provider/);
  }, 120_000);
});
