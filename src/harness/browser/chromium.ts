/**
 * What the browser door needs from outside: playwright-core and esbuild (optional peer
 * dependencies, loaded on first use with a named error when missing), a Chromium executable, and
 * the flags that give headless Chromium software WebGL and WebGPU with no network.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../../contract/errors.js';

export type Playwright = typeof import('playwright-core');
export type Esbuild = typeof import('esbuild');

/** Debian's and Ubuntu's Chromium; override with --browser-executable or BN_CHROMIUM. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export async function loadPlaywright(): Promise<Playwright> {
  try {
    return (await import('playwright-core')) as Playwright;
  } catch (e) {
    throw new UsageError(
      `the browser door (check --browser, the tfjs-webgl/tfjs-webgpu/ort-web built-ins) needs the playwright-core package: npm i -D playwright-core (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

export async function loadEsbuild(): Promise<Esbuild> {
  try {
    return (await import('esbuild')) as Esbuild;
  } catch (e) {
    throw new UsageError(
      `the browser door (check --browser, the tfjs-webgl/tfjs-webgpu/ort-web built-ins) needs the esbuild package to bundle the module for the page: npm i -D esbuild (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** The Chromium to launch: the option, else BN_CHROMIUM, else /usr/bin/chromium; it must exist. */
export function chromiumExecutable(option?: string): string {
  const path = option || process.env.BN_CHROMIUM || DEFAULT_CHROMIUM;
  if (!existsSync(path)) {
    throw new UsageError(
      `no Chromium at ${path}: install one (Debian: apt-get install -y chromium) or name it with --browser-executable PATH or BN_CHROMIUM=PATH`,
    );
  }
  return path;
}

/**
 * Flags, each for a reason found on this machine (Chromium 156, Debian 12, no GPU, no network;
 * docs/browser.md):
 * - no sandbox: the door often runs as root in a container, where the sandbox cannot start;
 * - no background networking, component updates, sync, QUIC, first-run: with no network these
 *   fail noisily (and a runner's network must not be touched);
 * - WebGL on ANGLE's SwiftShader (Vulkan) backend: a software GPU that exists everywhere,
 *   deterministic, and the one Chromium picks headless without a GPU anyway; named explicitly
 *   so a machine with a GPU gives the same results (extra args can change it);
 * - --enable-unsafe-webgpu: without it requestAdapter() returns null ("No available adapters")
 *   on SwiftShader, Chromium's only adapter here; with it the SwiftShader fallback adapter is
 *   offered. navigator.gpu also needs a secure context, which http://127.0.0.1 is (a page made by
 *   setContent, about:blank, is not: that is why WebGPU once looked absent).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
];

/** Extra Chromium flags from BN_CHROMIUM_ARGS (a JSON array, or flags separated by spaces). */
export function chromiumArgsFromEnv(): string[] {
  const v = process.env.BN_CHROMIUM_ARGS?.trim();
  if (!v) return [];
  if (v.startsWith('[')) {
    try {
      const a = JSON.parse(v) as unknown;
      if (Array.isArray(a)) return a.map(String);
    } catch {
      // fall through: space separated
    }
  }
  return v.split(/\s+/);
}
