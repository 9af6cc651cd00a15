/**
 * Node side of the browser built-ins: each bundles a page-side adapter (this folder) through the
 * browser door and returns the door's proxy, so the judge runs here and the framework runs in
 * headless Chromium.
 *
 *   tfjs-webgl    TF.js 4.22 tf.layers.batchNormalization, WebGL backend (./tfjs-web.ts)
 *   tfjs-webgpu   the same on the WebGPU backend (@tensorflow/tfjs-backend-webgpu)
 *   ort-web       onnxruntime-web 1.30, one-node BatchNormalization, wasm execution provider (./ort-web.ts)
 *   ort-webgpu    the same on its webgpu execution provider
 *   ort-web-<variant>, ort-webgpu-<variant>: the normalization family's one-node models (./ort-web-family.ts)
 *   gpu --gpu-mode webgl2 | webgl | webgpu: our gpu.js kernel (src/kernels/gpu) in the page, with
 *                 gpu.js's browser build
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile, ProfileName } from '../../contract/contract.js';
import { UsageError } from '../../contract/errors.js';
import { createBrowserImplementation, type BrowserImplementation, type BrowserOptions } from '../../harness/browser/door.js';

const here = dirname(fileURLToPath(import.meta.url));
/** This folder's page-side file, compiled (.js) or from source (.ts, under tsx). */
function pageFile(stem: string): string {
  const f = [`${stem}.js`, `${stem}.ts`].map((n) => join(here, n)).find((p) => existsSync(p));
  if (!f) throw new UsageError(`the browser built-in's page code ${stem} is missing beside ${here}`);
  return f;
}

/** The package's folder, found as Node would (its exports may hide package.json). */
function requirePackage(pkg: string, builtin: string): string {
  const req = createRequire(import.meta.url);
  const dir = (req.resolve.paths(pkg) ?? []).map((d) => join(d, pkg)).find((d) => existsSync(join(d, 'package.json')));
  if (!dir) throw new UsageError(`the ${builtin} built-in needs the ${pkg} package: npm i -D ${pkg}`);
  return dir;
}

async function open(builtin: string, contents: string, profile: ProfileName | Profile | undefined, more: Partial<BrowserOptions> = {}): Promise<BrowserImplementation> {
  const impl = await createBrowserImplementation(`--builtin ${builtin}`, { entry: { contents, resolveDir: here }, ...more });
  if (profile) (impl as { profile: ProfileName | Profile }).profile = profile;
  return impl;
}

export async function createTfjsWebBuiltin(backend: 'webgl' | 'webgpu', profile?: ProfileName | Profile): Promise<BrowserImplementation> {
  requirePackage('@tensorflow/tfjs', `tfjs-${backend}`);
  if (backend === 'webgpu') requirePackage('@tensorflow/tfjs-backend-webgpu', 'tfjs-webgpu');
  const src = `import { createTfjsWebAdapter } from ${JSON.stringify(pageFile('tfjs-web'))};\nexport default await createTfjsWebAdapter(${JSON.stringify(backend)});\n`;
  return open(`tfjs-${backend}`, src, profile);
}

export async function createOrtWebBuiltin(provider: 'wasm' | 'webgpu', profile?: ProfileName | Profile): Promise<BrowserImplementation> {
  const name = provider === 'wasm' ? 'ort-web' : 'ort-webgpu';
  const root = requirePackage('onnxruntime-web', name);
  const src = `import { createOrtWebAdapter } from ${JSON.stringify(pageFile('ort-web'))};\nexport default await createOrtWebAdapter(${JSON.stringify(provider)}, new URL('assets/ort/', location.href).href);\n`;
  // ORT fetches its .wasm (and the .mjs glue) at run time: served from the package's dist/
  return open(name, src, profile, { assets: { ort: join(root, 'dist') } });
}

/** onnxruntime-web running one of the family's one-node models (../ort-family.ts) on wasm or webgpu. */
export async function createOrtWebFamilyBuiltin(provider: 'wasm' | 'webgpu', variant: import('../ort-family.js').OrtFamilyVariant, profile?: ProfileName | Profile): Promise<BrowserImplementation> {
  const name = `${provider === 'wasm' ? 'ort-web' : 'ort-webgpu'}-${variant}`;
  const root = requirePackage('onnxruntime-web', name);
  const src = `import { createOrtWebFamilyAdapter } from ${JSON.stringify(pageFile('ort-web-family'))};\nexport default await createOrtWebFamilyAdapter(${JSON.stringify(provider)}, ${JSON.stringify(variant)}, new URL('assets/ort/', location.href).href);\n`;
  return open(name, src, profile, { assets: { ort: join(root, 'dist') } });
}

/**
 * Our gpu.js kernel in the page, in a browser mode. The kernel's Node-only imports (used only to
 * explain a missing headless-gl build) are stubbed, and `import('gpu.js')` resolves to gpu.js's
 * browser build. The kernel checks the class that ran after every pass, so a fallback to
 * gpu.js's CPU kernels fails instead of passing; the probe (gpuAvailability) must pass first.
 */
export async function createGpuBrowserBuiltin(mode: 'webgl2' | 'webgl' | 'webgpu', profile?: ProfileName | Profile): Promise<BrowserImplementation> {
  const gpuJs = join(requirePackage('gpu.js', 'gpu'), 'dist', 'gpu-browser.min.js');
  const kernel = ['js', 'ts'].map((e) => join(here, '..', '..', 'kernels', 'gpu', `index.${e}`)).find((f) => existsSync(f));
  if (!kernel) throw new UsageError('the gpu kernel source is missing');
  const src = [
    `import { createGpu, gpuAvailability } from ${JSON.stringify(kernel)};`,
    `const probe = await gpuAvailability(${JSON.stringify(mode)});`,
    `if (!probe.available) throw new Error('gpu.js mode ${mode} is not available in this page: ' + probe.reason);`,
    `export default await createGpu(${profile ? JSON.stringify(profile) : 'undefined'}, { mode: ${JSON.stringify(mode)} });`,
  ].join('\n');
  const nodeStubs: import('esbuild').Plugin = {
    name: 'node-stubs',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'node-stub' }));
      b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({
        contents:
          'export const createRequire = () => () => { throw new Error("no require in a browser"); };' +
          'export const existsSync = () => false; export const dirname = (p) => p; export const join = (...p) => p.join("/");',
        loader: 'js',
      }));
    },
  };
  return open(`gpu --gpu-mode ${mode}`, src, undefined, { bundle: { alias: { 'gpu.js': gpuJs }, plugins: [nodeStubs] } });
}
