/**
 * The browser door's few lines of command line (kept here so src/cli/main.ts only calls them):
 * `check --browser MODULE [--browser-executable PATH] [--browser-arg FLAG]…`.
 */
import { createBrowserImplementation, describeEnvironment, type BrowserImplementation } from './door.js';

export interface BrowserCliOptions {
  browser?: boolean;
  browserExecutable?: string;
  browserArg?: string[];
  browserConsoleErrors?: 'fault' | 'ignore';
  timeoutMs?: number;
}

/**
 * Make --browser-executable and --browser-arg reach the browser built-ins too (they read
 * BN_CHROMIUM and BN_CHROMIUM_ARGS, as the gpu built-in reads BN_GPU_MODE).
 */
export function applyBrowserCliOptions(opts: BrowserCliOptions): void {
  if (opts.browserExecutable) process.env.BN_CHROMIUM = opts.browserExecutable;
  if (opts.browserArg?.length) process.env.BN_CHROMIUM_ARGS = JSON.stringify(opts.browserArg);
}

export async function browserTarget(module: string, opts: BrowserCliOptions): Promise<BrowserImplementation> {
  const impl = await createBrowserImplementation(module, {
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.browserExecutable ? { executablePath: opts.browserExecutable } : {}),
    ...(opts.browserArg ? { args: opts.browserArg } : {}),
    ...(opts.browserConsoleErrors ? { consoleErrors: opts.browserConsoleErrors } : {}),
  });
  return impl;
}

/** Say on stderr which browser, WebGL renderer and WebGPU adapter the checks ran on. */
export function announceBrowser(impl: object): void {
  const env = (impl as Partial<BrowserImplementation>).environment;
  if (env) process.stderr.write(`browser: ${describeEnvironment(env)}\n`);
}
