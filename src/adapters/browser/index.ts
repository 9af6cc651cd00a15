/**
 * Node side of the browser built-ins: each bundles a page-side adapter (this folder) through the
 * browser door and returns the door's proxy, so the judge runs here and the framework runs in
 * headless Chromium.
 *
 *   tfjs-webgl    TF.js 4.22 tf.layers.batchNormalization, WebGL backend (./tfjs-web.ts)
 *   tfjs-webgpu   the same on the WebGPU backend (@tensorflow/tfjs-backend-webgpu)
 *   ort-web       onnxruntime-web 1.30, one-node BatchNormalization, wasm execution provider (./ort-web.ts)
 *   ort-webgpu    the same on its webgpu execution provider
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile, ProfileName } from '../../contract.js';
import { UsageError } from '../../errors.js';
import { createBrowserImplementation, type BrowserImplementation } from '../../harness/browser/door.js';

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

async function open(builtin: string, contents: string, profile: ProfileName | Profile | undefined, assets?: Record<string, string>): Promise<BrowserImplementation> {
  const impl = await createBrowserImplementation(`--builtin ${builtin}`, { entry: { contents, resolveDir: here }, ...(assets ? { assets } : {}) });
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
  return open(name, src, profile, { ort: join(root, 'dist') });
}
