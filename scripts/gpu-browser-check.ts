/**
 * Runs the SAME gpu.js kernels (src/kernels/gpu) in headless Chromium — WebGL2 (and WebGL 1) on
 * SwiftShader — and holds every output to the float64 reference under src/judge/tolerance.ts with the
 * kernel's declared accumulation (compareWithReference), exactly as the spec does for headlessgl.
 *
 *   npx tsx scripts/gpu-browser-check.ts [--modes webgl2,webgl] [--chromium /usr/bin/chromium]
 *
 * How: src/kernels/gpu/index.ts is bundled for the browser with esbuild (its node: imports, used
 * only to diagnose a missing headless-gl build, are stubbed; `import('gpu.js')` resolves to the
 * global GPU of node_modules/gpu.js/dist/gpu-browser.min.js). The page is built with
 * page.setContent + addScriptTag (no server, no network). Requests are generated and judged in
 * Node; the page only runs createGpu(profile, { mode }) and returns the arrays. The kernel checks
 * the class that ran after every pass, so a silent CPU fallback fails instead of passing.
 * Needs: `apt-get install -y chromium`, devDependency playwright-core. Exit 0 = every case passed.
 *
 * The full check of the same kernel in the browser goes through the browser door:
 * `bn-conformance check --builtin gpu --gpu-mode webgl2|webgl|webgpu` (docs/browser.md). This
 * script's page (setContent, about:blank) is not a secure context, so it has no WebGPU.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import type { BackwardRequest, ForwardInferRequest, ForwardTrainRequest, Op, ProfileName } from '../src/contract/contract.js';
import { accumulationFor, compareWithReference } from '../src/judge/compare.js';
import { resolveProfile } from '../src/contract/profiles.js';
import { mulberry32 as rng } from '../src/numerics/random.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const MODES = opt('modes', 'webgl2,webgl').split(',');
const CHROMIUM = opt('chromium', '/usr/bin/chromium');
const root = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// The kernel, bundled for the page
// ---------------------------------------------------------------------------------------------
const bundle = await build({
  entryPoints: [`${root}/src/kernels/gpu/index.ts`],
  bundle: true,
  format: 'iife',
  globalName: 'BnGpu',
  platform: 'browser',
  target: 'es2020',
  write: false,
  logLevel: 'error',
  define: { 'import.meta.url': '"file:///browser/index.js"' },
  plugins: [
    {
      name: 'browser-stubs',
      setup(b) {
        b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'stub' }));
        b.onResolve({ filter: /^gpu\.js$/ }, () => ({ path: 'gpu.js', namespace: 'stub' }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => ({
          contents:
            a.path === 'gpu.js'
              ? 'export default globalThis.GPU;'
              : 'export const createRequire = () => () => { throw new Error("no require in a browser"); };' +
                'export const existsSync = () => false; export const dirname = (p) => p; export const join = (...p) => p.join("/");',
          loader: 'js',
        }));
      },
    },
  ],
});
const kernelJs = bundle.outputFiles[0]!.text;
const gpuJs = readFileSync(`${root}/node_modules/gpu.js/dist/gpu-browser.min.js`, 'utf8');

// ---------------------------------------------------------------------------------------------
// Cases (generated here, judged here)
// ---------------------------------------------------------------------------------------------
const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

interface Case {
  label: string;
  shape: number[];
  axis: number;
  gen?: (r: () => number) => number;
}
const CASES: Case[] = [
  { label: 'NC [5,3]', shape: [5, 3], axis: 1 },
  { label: 'NHWC [2,4,5,3] axis 3', shape: [2, 4, 5, 3], axis: 3 },
  { label: 'middle axis [3,2,7,5] axis 2', shape: [3, 2, 7, 5], axis: 2 },
  { label: 'm = 129 (odd tree)', shape: [129, 2], axis: 1 },
  { label: 'NCHW m = 2048 (5 tree levels)', shape: [8, 2, 16, 16], axis: 1 },
  { label: 'large offset (mean 1e4, std 0.01)', shape: [64, 3, 4], axis: 1, gen: (r) => 1e4 + 0.01 * normal(r) },
  { label: 'constant values', shape: [64, 3, 4], axis: 1, gen: () => 3.25 },
];
const PROFILES: ProfileName[] = ['keras', 'pytorch'];

function requests(cs: Case, profile: ProfileName, seed: number) {
  const p = resolveProfile(profile);
  const r = rng(seed);
  const n = cs.shape.reduce((a, b) => a * b, 1);
  const C = cs.shape[cs.axis]!;
  const x = Float32Array.from({ length: n }, () => (cs.gen ? cs.gen(r) : 0.5 + 2 * normal(r)));
  const v = (f: () => number) => Float32Array.from({ length: C }, f);
  const gamma = v(() => 0.5 + r());
  const beta = v(() => r() - 0.5);
  const runningMean = v(() => r() - 0.5);
  const runningVar = v(() => 0.5 + r());
  const dy = Float32Array.from({ length: n }, () => normal(r));
  const base = { x, shape: cs.shape, axis: cs.axis, gamma, eps: p.defaultEps };
  return {
    forwardTrain: { ...base, beta, momentum: p.defaultMomentum, runningMean, runningVar } as ForwardTrainRequest,
    forwardInfer: { ...base, beta, runningMean, runningVar } as ForwardInferRequest,
    backwardTrain: { ...base, dy, training: true } as BackwardRequest,
    backwardInfer: { ...base, dy, training: false, runningMean, runningVar } as BackwardRequest,
  };
}

// Typed arrays cross page.evaluate as plain arrays; the page turns them back into Float32Array.
type Wire = Record<string, unknown>;
const toWire = (req: object): Wire => Object.fromEntries(Object.entries(req).map(([k, v]) => [k, v instanceof Float32Array ? { f32: Array.from(v) } : v]));

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--use-gl=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
let failures = 0;
let total = 0;
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'warning' || m.type() === 'error') console.log(`  [page ${m.type()}] ${m.text()}`);
  });
  await page.setContent('<!doctype html><html><head><meta charset="utf-8"><title>bn-conformance gpu.js</title></head><body></body></html>');
  // tsx compiles this file with keepNames: functions passed to page.evaluate call esbuild's __name
  await page.addScriptTag({ content: 'globalThis.__name = (f, value) => Object.defineProperty(f, "name", { value, configurable: true });' });
  await page.addScriptTag({ content: gpuJs });
  await page.addScriptTag({ content: kernelJs });
  await page.evaluate(() => {
    const w = globalThis as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const fromWire = (o: Record<string, any>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v && v.f32 ? Float32Array.from(v.f32) : v])); // eslint-disable-line @typescript-eslint/no-explicit-any
    const impls: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    w.bnRun = async (mode: string, profile: string, op: string, req: Record<string, unknown>) => {
      const key = `${mode}|${profile}`;
      impls[key] ??= w.BnGpu.createGpu(profile, { mode });
      const impl = impls[key];
      const out = await impl[op](fromWire(req));
      const res: Record<string, number[]> = {};
      for (const [k, v] of Object.entries(out)) res[k] = Array.from(v as Float32Array);
      return { out: res, info: impl.backendInfo(), name: impl.name, accumulation: impl.accumulation };
    };
    w.bnProbe = async (mode: string) => w.BnGpu.gpuAvailability(mode);
  });
  const ua = await page.evaluate(() => (globalThis as unknown as { navigator: { userAgent: string } }).navigator.userAgent);
  console.log(`headless Chromium: ${ua}`);

  for (const mode of MODES) {
    const probe = (await page.evaluate((m) => (globalThis as unknown as { bnProbe(m: string): Promise<unknown> }).bnProbe(m), mode)) as { available: boolean; reason: string };
    console.log(`\nmode ${mode}: probe ${probe.available ? 'available' : 'NOT available'}: ${probe.reason}`);
    if (!probe.available) {
      failures++;
      continue;
    }
    const worst: Record<string, number> = {};
    let classes = new Set<string>();
    for (const profile of PROFILES) {
      for (const [n, cs] of CASES.entries()) {
        const reqs = requests(cs, profile, 100 + n);
        for (const [which, req] of Object.entries(reqs)) {
          const op: Op = which.startsWith('backward') ? 'backward' : (which as Op);
          total++;
          const t = performance.now();
          let line: string;
          try {
            const r = (await page.evaluate(
              ([m, p, o, q]) => (globalThis as unknown as { bnRun(...a: unknown[]): Promise<unknown> }).bnRun(m, p, o, q),
              [mode, profile, op, toWire(req)] as const,
            )) as { out: Record<string, number[]>; info: { kernelClasses: string[]; renderer: string | null }; accumulation: { dtype: 'float32'; order: 'tiled'; tile: number } };
            r.info.kernelClasses.forEach((c) => classes.add(c));
            const cmp = compareWithReference(op, resolveProfile(profile), req, r.out, { accumulation: accumulationFor({ accumulation: r.accumulation }, 'float32') });
            const ratio = Math.max(0, ...Object.values(cmp.ratios));
            worst[which] = Math.max(worst[which] ?? 0, ratio);
            if (!cmp.ok) failures++;
            const w = cmp.worst;
            line = `${cmp.ok ? 'ok  ' : 'FAIL'} ${profile} ${cs.label} ${which}: worst error/bound ${ratio.toFixed(3)}` + (cmp.ok || !w ? '' : ` (${w.output}[${w.index}] got ${w.got} expected ${w.expected} bound ${w.bound})`);
          } catch (e) {
            failures++;
            line = `FAIL ${profile} ${cs.label} ${which}: ${(e as Error).message.split('\n')[0]}`;
          }
          console.log(`  ${line} [${(performance.now() - t).toFixed(0)} ms]`);
        }
      }
    }
    const info = (await page.evaluate((m) => (globalThis as unknown as { bnRun(...a: unknown[]): Promise<{ info: unknown }> }).bnRun(m, 'keras', 'forwardInfer', { x: { f32: [1, 2] }, shape: [2, 1], axis: 1, gamma: { f32: [1] }, beta: { f32: [0] }, eps: 1e-3, runningMean: { f32: [0] }, runningVar: { f32: [1] } }), mode)) as { info: { renderer: string | null } };
    console.log(`mode ${mode}: kernel classes that ran: ${[...classes].join(', ')}; renderer: ${info.info.renderer}`);
    console.log(`mode ${mode}: worst error/bound per op: ${JSON.stringify(Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, Number(v.toFixed(3))])))}`);
    classes = new Set();
  }
} finally {
  await browser.close();
}
console.log(`\ngpu-browser-check: ${total - failures}/${total} cases passed${failures ? `, ${failures} FAILED` : ''} (modes ${MODES.join(', ')}; Chromium ${CHROMIUM}, SwiftShader)`);
process.exit(failures ? 1 : 0);
