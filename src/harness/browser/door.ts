/**
 * The browser door: `check --browser ./my-bn.mjs`, or `createBrowserImplementation(path)`.
 *
 * The module is bundled with esbuild (its imports resolved from its own node_modules, for the
 * browser) and served, with the page runtime (page.ts), from an HTTP server on 127.0.0.1 at a
 * random port under a random path token. Headless Chromium, driven by playwright-core, loads it.
 * The judge stays in Node: the implementation returned here is a proxy whose ops send each call
 * to the page as one binary message (wire.ts; arrays as their bytes, both ways) and validate what
 * comes back through the same callImplementation as every other door, so the report, IDs,
 * counterexamples and replay lines are the same as for a module run in Node.
 *
 * Faults of the door (ContractFault, named in call.ts's Fault union):
 *
 *   timeout                 no answer within the time limit (a busy loop, a lost promise)
 *   browser-crashed         the page's renderer or the browser died, or the page was closed
 *   browser-navigated       the page navigated away (or reloaded itself): the module is gone
 *   browser-uncaught-error  an uncaught exception or unhandled rejection in the page
 *   browser-console-error   console.error while a call runs that then returns normally (a call
 *                           that throws or rejects is reported as such; off with
 *                           consoleErrors: 'ignore'; the lines are listed in events either way)
 *   browser-bad-result      the page could not send the result back (it cannot be encoded, or
 *                           the runtime's own transfer failed)
 *   browser-gave-up         the page was reloaded maxReloads times; later calls fail at once
 *
 * After a fault the page's whole browser context is closed (a renderer in a busy loop included)
 * and the next call opens a fresh one and loads the module again; `reloads` and `events` say how
 * often and why (the CLI prints them). A fault while no call runs (an uncaught error from a timer,
 * a navigation) is delivered to the next call. An error the module throws or rejects with on
 * purpose is `threw` / `rejected`, as in Node, and the page is kept.
 *
 * Nothing outlives the run: close() (also dispose()) closes the browser and the server; on
 * SIGINT, SIGTERM and SIGHUP every open door is closed before the signal's default action (or,
 * when the process handles the signal itself, as the CLI does for Ctrl-C, just closed); and
 * playwright-core kills its browsers when the process exits.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BatchNormImplementation } from '../../contract/contract.js';
import { UsageError } from '../../contract/errors.js';
import { ContractFault, type BrowserFaultName } from '../call.js';
import { DEFAULT_MAX_RESTARTS, RestartBudget } from '../restarts.js';
import { CHROMIUM_ARGS, chromiumArgsFromEnv, chromiumExecutable, loadEsbuild, loadPlaywright, type Esbuild } from './chromium.js';
import { BROWSER_DOOR_PEERS, requirePeers } from '../peers.js';
import { CONTENT_TYPES, DoorServer } from './server.js';
import { decodeMessage, encodeMessage, WireError } from './wire.js';

type Browser = import('playwright-core').Browser;
type BrowserContext = import('playwright-core').BrowserContext;
type Page = import('playwright-core').Page;

export interface BrowserOptions {
  /** Time limit for one call; on expiry the page is closed and reloaded. Default 10 s. */
  timeoutMs?: number;
  /** Time limit for loading the page and the module (and each reload). Default max(60 s, timeoutMs). */
  loadTimeoutMs?: number;
  /** Chromium to launch; default BN_CHROMIUM, else /usr/bin/chromium. */
  executablePath?: string;
  /** Extra Chromium flags, after the door's own (chromium.ts); default BN_CHROMIUM_ARGS. */
  args?: string[];
  /** Reloads allowed before later calls fail at once (browser-gave-up). Default 5, the rule of every door (../restarts.ts). */
  maxReloads?: number;
  /** console.error while a call runs: a fault (default) or ignored (still listed in events). */
  consoleErrors?: 'fault' | 'ignore';
  /** Directories served under `assets/<name>/` next to the module (e.g. a library's .wasm files). */
  assets?: Record<string, string>;
  /** Bundle this source instead of reading the path (the built-in adapters' entries). */
  entry?: { contents: string; resolveDir: string };
  /**
   * A browser launched by the caller (playwright-core), shared between doors: each door then
   * opens its own contexts in it and close() leaves it running. Used by the spec to launch once.
   */
  browser?: Browser;
  /** esbuild aliases and plugins for the module's bundle (e.g. stubs for Node-only imports). */
  bundle?: { alias?: Record<string, string>; plugins?: import('esbuild').Plugin[] };
}

/** What the page offered, as the page saw it. */
export interface BrowserEnvironment {
  userAgent: string;
  /** The WebGL renderer string, or null without WebGL. */
  webgl: string | null;
  /** The WebGPU adapter's info, or why there is none. */
  webgpu: Record<string, unknown> | string;
  executablePath: string;
}

export interface BrowserImplementation extends BatchNormImplementation {
  readonly reloads: number;
  /** One line per fault and reload, for the report's footer. */
  readonly events: string[];
  readonly environment: BrowserEnvironment;
  /** Close the browser and the server. Safe to call twice. */
  close(): Promise<void>;
  /** The same as close(), for the CLI's built-in cleanup. */
  dispose(): Promise<void>;
}

/** How long closing a page's context may take before the whole browser is restarted. */
const CLOSE_GRACE_MS = 5_000;
/** console.error lines listed in events (a chatty library must not flood the report's footer). */
const MAX_CONSOLE_EVENTS = 20;

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/* ------------------------------------------------------------------------------------------------
 * Bundling
 * ---------------------------------------------------------------------------------------------- */

function formatBuildError(e: unknown): string {
  const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors;
  if (!errors?.length) return errText(e);
  return errors
    .slice(0, 5)
    .map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text))
    .join('; ');
}

async function bundleModule(es: Esbuild, label: string, path: string | undefined, entry: BrowserOptions['entry'], extra: BrowserOptions['bundle'] = {}): Promise<string> {
  try {
    const r = await es.build({
      ...(entry ? { stdin: { contents: entry.contents, resolveDir: entry.resolveDir, sourcefile: label, loader: 'ts' } } : { entryPoints: [path!] }),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
      ...(extra.alias ? { alias: extra.alias } : {}),
      ...(extra.plugins ? { plugins: extra.plugins } : {}),
    });
    return r.outputFiles[0]!.text;
  } catch (e) {
    throw new UsageError(`cannot bundle ${label} for the browser (esbuild): ${formatBuildError(e)}`);
  }
}

/** The page runtime: page.ts beside this file (page.js once compiled). */
async function bundleRuntime(es: Esbuild): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = ['page.js', 'page.ts'].map((f) => join(here, f)).find((f) => existsSync(f));
  if (!file) throw new UsageError(`the browser door's page runtime is missing beside ${here}`);
  const r = await es.build({ entryPoints: [file], bundle: true, format: 'iife', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  return r.outputFiles[0]!.text;
}

/** The door's Chromium flags, then the caller's (or BN_CHROMIUM_ARGS): for a shared browser too. */
export function chromiumArgs(extra?: string[]): string[] {
  return [...CHROMIUM_ARGS, ...(extra ?? chromiumArgsFromEnv())];
}

/* ------------------------------------------------------------------------------------------------
 * Nothing outlives the run: signals close every open door first
 * ---------------------------------------------------------------------------------------------- */

const openDoors = new Set<() => Promise<void>>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function onSignal(signal: NodeJS.Signals): void {
  for (const s of SIGNALS) process.off(s, onSignal);
  // someone else handles the signal (the CLI stops the run, writes its reports and exits 130):
  // close the browsers and leave the rest to them; otherwise re-raise it once closed
  const handledElsewhere = process.listenerCount(signal) > 0;
  const all = Promise.allSettled([...openDoors].map((close) => close()));
  if (handledElsewhere) return void all;
  const grace = new Promise((ok) => setTimeout(ok, CLOSE_GRACE_MS).unref());
  void Promise.race([all, grace]).then(() => process.kill(process.pid, signal));
}
function register(close: () => Promise<void>): void {
  if (openDoors.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  openDoors.add(close);
}
function unregister(close: () => Promise<void>): void {
  openDoors.delete(close);
  if (openDoors.size === 0) for (const s of SIGNALS) process.off(s, onSignal);
}

/* ------------------------------------------------------------------------------------------------
 * The door
 * ---------------------------------------------------------------------------------------------- */

interface Generation {
  context: BrowserContext;
  page: Page;
  /** Set while the door itself navigates the page (the first load). */
  ourNavigation: boolean;
  closing: boolean;
  /** The fault that ended this page. */
  dead?: ContractFault;
  /** A fault that happened while no call ran: the next call gets it. */
  poison?: ContractFault;
}

interface Pending {
  gen: Generation;
  reject(e: Error): void;
  /** console.error lines while the call ran: a fault only if the call then returns normally. */
  consoleErrors: string[];
}

interface Description {
  fields: Record<string, unknown>;
  ops: string[];
  env: Omit<BrowserEnvironment, 'executablePath'>;
}

/**
 * Bundle `modulePath`, serve it, open it in headless Chromium, and return the proxy
 * implementation. Load problems (no Chromium, no playwright-core or esbuild, a module that does
 * not bundle, load or describe itself) are UsageErrors; close() when done.
 */
export async function createBrowserImplementation(modulePath: string, options: BrowserOptions = {}): Promise<BrowserImplementation> {
  // every missing peer and a missing Chromium in one message, before anything starts
  requirePeers('the browser door', { peers: [...BROWSER_DOOR_PEERS], chromium: { ...(options.executablePath ? { executable: options.executablePath } : {}) } });
  const executablePath = chromiumExecutable(options.executablePath);
  const abs = resolve(process.cwd(), modulePath);
  if (!options.entry && !existsSync(abs)) throw new UsageError(`cannot load ${modulePath}: no such file`);
  const [pw, es] = await Promise.all([loadPlaywright(), loadEsbuild()]);
  const [implJs, runtimeJs] = await Promise.all([bundleModule(es, modulePath, abs, options.entry, options.bundle), bundleRuntime(es)]);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const loadTimeoutMs = options.loadTimeoutMs ?? Math.max(60_000, timeoutMs);
  const maxReloads = options.maxReloads ?? DEFAULT_MAX_RESTARTS;
  const consoleFault = (options.consoleErrors ?? 'fault') === 'fault';

  const server = new DoorServer(
    {
      'index.html': { body: '<!doctype html><html><head><meta charset="utf-8"><title>bn-conformance</title><link rel="icon" href="data:,"><script src="runtime.js"></script></head><body></body></html>', type: CONTENT_TYPES['.html']! },
      'runtime.js': { body: runtimeJs, type: CONTENT_TYPES['.js']! },
      'impl.mjs': { body: implJs, type: CONTENT_TYPES['.mjs']! },
    },
    options.assets ?? {},
  );
  await server.start();
  const indexUrl = `${server.base}index.html`;

  // the restart and give-up rule shared by every door; a page is reloaded, so it says so
  const budget = new RestartBudget('page', maxReloads, (m) => new ContractFault('browser-gave-up', m), 'reloaded');
  /** Faults and reloads (also counted by the budget) and console lines, in order, for the report's footer. */
  const events: string[] = [];
  let browser: Browser | undefined;
  let current: Generation | undefined;
  let pending: Pending | undefined;
  let consoleLines = 0;
  let nextId = 1;
  let closed = false;

  const onDisconnect = (b: Browser) => () => {
    if (browser === b) browser = undefined;
    if (current && !current.closing) fault(current, 'browser-crashed', 'the browser exited');
  };
  const sharedListener = options.browser ? onDisconnect(options.browser) : undefined;
  if (sharedListener) options.browser!.on('disconnected', sharedListener);
  const launch = async (): Promise<Browser> => {
    try {
      const b = await pw.chromium.launch({
        executablePath,
        headless: true,
        args: chromiumArgs(options.args),
        // the door closes its browsers on these signals itself (register), then lets the signal act
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        timeout: loadTimeoutMs,
      });
      b.on('disconnected', onDisconnect(b));
      return b;
    } catch (e) {
      throw new UsageError(`cannot launch Chromium at ${executablePath}: ${errText(e).split('\n')[0]}`);
    }
  };

  /** End a page: reject the call that runs on it, or keep the fault for the next call. */
  function fault(gen: Generation, name: BrowserFaultName | 'timeout', message: string): void {
    if (gen.dead) return;
    const f = new ContractFault(name, message);
    gen.dead = f;
    events.push(f.message);
    budget.note(f.message);
    const p = pending;
    if (p && p.gen === gen) {
      pending = undefined;
      p.reject(f);
    } else gen.poison = f;
    void teardown(gen);
  }

  async function teardown(gen: Generation): Promise<void> {
    if (gen.closing) return;
    gen.closing = true;
    const closedInTime = await Promise.race([
      gen.context.close().then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((ok) => setTimeout(() => ok(false), CLOSE_GRACE_MS).unref()),
    ]);
    if (!closedInTime && browser && browser !== options.browser) {
      events.push(`the page did not close within ${CLOSE_GRACE_MS} ms: restarted the browser`);
      const b = browser;
      browser = undefined;
      await b.close().catch(() => undefined);
    }
  }

  const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`${what} did not finish within ${ms} ms`)), ms);
      p.then(
        (v) => {
          clearTimeout(t);
          ok(v);
        },
        (e) => {
          clearTimeout(t);
          fail(e);
        },
      );
    });

  /** A fresh context and page with the module loaded; throws a plain Error when it cannot. */
  const openPage = async (): Promise<{ gen: Generation; desc: Description }> => {
    browser ??= options.browser?.isConnected() ? options.browser : await launch();
    const context = await browser.newContext();
    const page = await context.newPage();
    const gen: Generation = { context, page, ourNavigation: true, closing: false };
    const loadErrors: string[] = [];
    page.on('crash', () => fault(gen, 'browser-crashed', "the page crashed (its renderer process died)"));
    page.on('close', () => {
      if (!gen.closing) fault(gen, 'browser-crashed', 'the page was closed');
    });
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame() && !gen.ourNavigation) fault(gen, 'browser-navigated', `the page navigated away, to ${frame.url()}: the module is gone`);
    });
    page.on('pageerror', (e) => {
      if (gen.ourNavigation) loadErrors.push(`${e.name}: ${e.message}`);
      else fault(gen, 'browser-uncaught-error', `uncaught in the page${pending?.gen === gen ? ' during the call' : ' between calls'}: ${e.name}: ${e.message}`);
    });
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text().slice(0, 500);
      if (gen.ourNavigation) loadErrors.push(`console.error: ${text}`);
      else if (consoleFault && pending?.gen === gen) pending.consoleErrors.push(text);
      else if (consoleLines++ < MAX_CONSOLE_EVENTS) events.push(`console.error in the page (${pending?.gen === gen ? 'during a call' : 'no call running'}${consoleFault ? '' : ', ignored'}): ${text}`);
      else if (consoleLines === MAX_CONSOLE_EVENTS + 1) events.push('console.error in the page: further lines not listed');
    });
    try {
      await page.goto(indexUrl, { timeout: loadTimeoutMs });
      const desc = (await withTimeout(page.evaluate('globalThis.__bn.load()'), loadTimeoutMs, 'loading the module in the page')) as Description;
      gen.ourNavigation = false;
      return { gen, desc };
    } catch (e) {
      gen.closing = true;
      await context.close().catch(() => undefined);
      const extra = loadErrors.length ? ` (the page said: ${loadErrors.slice(0, 3).join('; ')})` : '';
      throw new Error(`${errText(e).split('\n')[0]}${extra}`);
    }
  };

  const closeAll = async () => {
    closed = true;
    if (sharedListener) options.browser!.off('disconnected', sharedListener);
    const b = browser;
    browser = undefined;
    const gen = current;
    if (gen) gen.closing = true; // our own close is no fault
    current = undefined;
    // the browser first (a page must not see the server go); a shared one keeps running
    if (b && b === options.browser) await gen?.context.close().catch(() => undefined);
    else await b?.close().catch(() => undefined);
    await server.close().catch(() => undefined);
  };
  register(closeAll);
  const close = async () => {
    unregister(closeAll);
    await closeAll();
  };

  let desc: Description;
  try {
    const first = await openPage();
    current = first.gen;
    desc = first.desc;
  } catch (e) {
    await close();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot load ${modulePath} in the browser: ${errText(e)}`);
  }

  const reload = async (): Promise<Generation> => {
    budget.restart(); // or throws browser-gave-up, naming the faults seen
    events.push(budget.events.at(-1)!);
    try {
      const { gen } = await openPage();
      current = gen;
      return gen;
    } catch (e) {
      throw new ContractFault('browser-crashed', `the module did not load again in a fresh page: ${errText(e)}`);
    }
  };

  let queue: Promise<unknown> = Promise.resolve();
  const call = (op: string, args: unknown[]): Promise<unknown> => {
    const run = async () => {
      if (closed) throw new ContractFault('browser-crashed', 'the implementation was closed');
      let gen = current;
      if (gen?.poison) {
        const f = gen.poison;
        gen.poison = undefined;
        throw f;
      }
      if (!gen || gen.dead) gen = await reload();
      const id = nextId++;
      server.io.set(id, { req: encodeMessage({ op, args }) });
      const g = gen;
      try {
        return await new Promise<unknown>((ok, fail) => {
          // a little under the harness's own limit, so the door closes the page and names it
          const limit = Math.max(1, Math.floor(timeoutMs * 0.9));
          const timer = setTimeout(
            () => fault(g, 'timeout', `${op} did not return within ${limit} ms (a busy loop or a promise that never settles?); the page was closed and is reloaded for the next call`),
            limit,
          );
          const p: Pending = {
            gen: g,
            reject: (e) => {
              clearTimeout(timer);
              fail(e);
            },
            consoleErrors: [],
          };
          pending = p;
          const settle = (f: () => void) => {
            if (pending !== p) return; // a fault got there first
            pending = undefined;
            clearTimeout(timer);
            f();
          };
          g.page.evaluate(`globalThis.__bn.call(${id})`).then(
            () =>
              settle(() => {
                const bytes = server.io.get(id)?.res;
                if (!bytes) return fail(new ContractFault('browser-bad-result', `${op}: the page finished the call but posted no result`));
                let msg: { kind: string; result?: unknown; message?: string; changed?: string[][] };
                try {
                  msg = decodeMessage(bytes) as typeof msg;
                } catch (e) {
                  return fail(new ContractFault('browser-bad-result', `${op}: the page's answer cannot be decoded: ${errText(e)}`, e instanceof WireError ? undefined : e));
                }
                // a mutation outranks every other outcome, as in every door
                const changed = (msg.changed ?? []).flat();
                if (changed.length) fail(new ContractFault('input-mutated', `${op} modified its input ${changed.join(', ')}`));
                else if (msg.kind === 'ok' && p.consoleErrors.length) {
                  // the call returned as if all was well, but said otherwise on the console
                  fault(g, 'browser-console-error', `${op} returned, but wrote console.error while it ran: ${p.consoleErrors.slice(0, 3).join(' | ')}`);
                  g.poison = undefined; // delivered here, not to the next call
                  fail(g.dead!);
                } else if (msg.kind === 'ok') ok(msg.result);
                else if (msg.kind === 'threw') fail(new ContractFault('threw', `${op} threw ${msg.message}`));
                else if (msg.kind === 'rejected') fail(new Error(msg.message));
                else fail(new ContractFault('browser-bad-result', `${op}: ${msg.message ?? `unknown answer kind ${msg.kind}`}`));
              }),
            (e) => {
              // a navigation or crash also reports itself by event, sometimes after this rejection
              const text = errText(e).split('\n')[0]!;
              const name: BrowserFaultName = /context was destroyed|navigat/i.test(text)
                ? 'browser-navigated'
                : /crash|closed|disconnected/i.test(text)
                  ? 'browser-crashed'
                  : 'browser-bad-result';
              setTimeout(() => {
                if (pending === p) fault(g, name, `${op}: the page's runtime failed to run the call: ${text}`);
              }, 100);
            },
          );
        });
      } finally {
        server.io.delete(id);
      }
    };
    const p = queue.then(run, run);
    queue = p.catch(() => undefined);
    return p;
  };

  const environment: BrowserEnvironment = { ...desc.env, executablePath };
  const impl = {
    ...(desc.fields as unknown as BatchNormImplementation),
    get reloads() {
      return budget.restarts;
    },
    events,
    environment,
    close,
    dispose: close,
  } as BrowserImplementation;
  const ops = impl as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const op of desc.ops) ops[op] = (...args: unknown[]) => call(op, args);
  return impl;
}

/** One line for the terminal: which browser, which WebGL renderer, which WebGPU adapter. */
export function describeEnvironment(env: BrowserEnvironment): string {
  const chrome = /(?:Headless)?Chrom(?:e|ium)\/[\d.]+/.exec(env.userAgent)?.[0] ?? env.userAgent;
  const w = env.webgpu;
  const gpu =
    typeof w === 'string'
      ? `none (${w})`
      : `${[w.vendor, w.architecture, w.device, w.description].filter((v) => typeof v === 'string' && v !== '').join(' ') || 'an adapter'}${w.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
  return `${chrome} (${env.executablePath}); WebGL: ${env.webgl ?? 'none'}; WebGPU: ${gpu}`;
}
