#!/usr/bin/env node
/**
 * The command line: `bn-conformance check <module>` and friends.
 * Exit codes: 0 every supported check passed, 1 a check failed (or was inconclusive, without
 * --allow-inconclusive), 2 usage or load error (a run that checked nothing included), 130 / 143
 * interrupted by SIGINT / SIGTERM (the reports hold what finished).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BUILTINS, createBuiltin } from '../harness/builtins.js';
import type { BatchNormImplementation, ProfileName } from '../contract/contract.js';
import { BnConformanceError, UsageError } from '../contract/errors.js';
import { type Format, formatJson, formatJunit, formatText, verdictLine } from '../harness/format.js';
import { DEFAULT_RUNS, DEFAULT_TIMEOUT_MS, packageVersion, planRun, runConformance } from '../harness/runner.js';
import { PROFILE_NAMES } from '../contract/profiles.js';
import { createExecImplementation } from '../harness/exec.js';
import { createIsolatedImplementation } from '../harness/isolate.js';
import { describeLoadError } from '../harness/load-error.js';
import { announceBrowser, applyBrowserCliOptions, browserTarget, type BrowserCliOptions } from '../harness/browser/cli.js';
import { mergeReports, readReportFile } from '../harness/merge.js';
import { explain, renderPlot, topicList } from '../teach/index.js';
import { formatHtml } from '../teach/html.js';
import { sampleErrorRatios } from '../teach/error-ratios.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130, terminated: 143 } as const;

/**
 * Ctrl-C (SIGINT) or SIGTERM during `check`: the run stops cleanly (runConformance's `signal`),
 * the reports asked for are written with what finished (marked interrupted), and the exit code
 * is 128 + the signal's number (130, 143). A second signal exits at once.
 */
function interruptOnSignals(): { signal: AbortSignal; code(): number | undefined; dispose(): void } {
  const controller = new AbortController();
  let code: number | undefined;
  const handlers: Array<[NodeJS.Signals, () => void]> = [];
  for (const [name, exit] of [['SIGINT', EXIT.interrupted], ['SIGTERM', EXIT.terminated]] as const) {
    const handler = () => {
      if (controller.signal.aborted) {
        process.stderr.write(`\n${name} again: exiting now, without reports\n`);
        process.exit(code ?? exit);
      }
      code = exit;
      process.stderr.write(`\n${name}: interrupted; finishing the reports with the checks done so far (${name} again to quit at once)\n`);
      controller.abort();
    };
    handlers.push([name, handler]);
    process.on(name, handler);
  }
  return { signal: controller.signal, code: () => code, dispose: () => handlers.forEach(([name, h]) => process.off(name, h)) };
}

/** Import a user's module; its default export or `implementation` is the implementation. */
export async function loadImplementation(path: string): Promise<BatchNormImplementation> {
  const url = pathToFileURL(resolve(process.cwd(), path)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    // file:line:column where Node or the stack can say (Node 20 names no file for a syntax error)
    throw new UsageError(`cannot load ${path}: ${await describeLoadError(e, path)}`);
  }
  const impl = (await (mod.default ?? mod.implementation)) as BatchNormImplementation | undefined;
  if (!impl) throw new UsageError(`${path} has no default export and no export named "implementation"`);
  return impl;
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
const integer = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
};
const patterns = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** Read a skips file: one ID pattern per line, `#` comments. */
export function readSkipsFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read skips file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

interface CheckOptions {
  builtin?: string;
  profile?: string;
  runs: number;
  seed?: number;
  only: string[];
  skip: string[];
  skipsFile?: string;
  format: Format;
  out?: string;
  timeoutMs: number;
  replay?: string;
  golden: boolean;
  verbose?: boolean;
  allowInconclusive?: boolean;
  exec?: string;
  isolate: boolean;
  shard?: { index: number; count: number };
  gpuMode?: string;
  browser?: boolean;
  browserExecutable?: string;
  browserArg?: string[];
  browserConsoleErrors?: 'fault' | 'ignore';
}

interface TargetOptions extends BrowserCliOptions {
  builtin?: string;
  profile?: string;
  exec?: string;
  isolate?: boolean;
  timeoutMs?: number;
}

/** The implementation, and how to release it (an --exec child, an isolation worker). */
async function resolveTarget(module: string | undefined, opts: TargetOptions): Promise<BatchNormImplementation & { close?(): Promise<void>; events?: string[] }> {
  if ([opts.builtin, module, opts.exec].filter(Boolean).length > 1) throw new UsageError('give one of a module, --builtin or --exec');
  if (opts.browser && (opts.builtin || opts.exec)) throw new UsageError('--browser runs a module in Chromium: give a module path, not --builtin or --exec');
  if (opts.builtin) return createBuiltin(opts.builtin, opts.profile as ProfileName | undefined);
  if (opts.exec) return createExecImplementation(opts.exec, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  if (opts.browser && module) return browserTarget(module, { ...opts, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  if (!module) throw new UsageError('nothing to check: give a module path, --builtin NAME (see --builtin list) or --exec "CMD"');
  // a module runs in a worker thread by default, so a busy loop cannot block the run
  if (opts.isolate !== false) return createIsolatedImplementation(module, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  return loadImplementation(module);
}

const shardSpec = (v: string) => {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError('must be i/n with 1 <= i <= n, e.g. 2/4');
  return { index, count };
};

function printBuiltins(): void {
  for (const [name, b] of Object.entries(BUILTINS)) process.stdout.write(`${name.padEnd(16)} ${b.description}\n`);
}

async function check(module: string | undefined, opts: CheckOptions): Promise<number> {
  if (opts.builtin === 'list') {
    printBuiltins();
    return EXIT.ok;
  }
  if (opts.gpuMode) process.env.BN_GPU_MODE = opts.gpuMode; // read by the gpu built-in
  applyBrowserCliOptions(opts);
  // installed before the target starts: a Ctrl-C while a browser or child loads ends cleanly too
  const interrupt = interruptOnSignals();
  try {
    let impl: Awaited<ReturnType<typeof resolveTarget>>;
    try {
      impl = await resolveTarget(module, opts);
    } catch (e) {
      // (a browser or child started in our process group got the same Ctrl-C and died)
      const code = interrupt.code();
      if (code === undefined) throw e;
      process.stdout.write('INTERRUPTED: stopped while loading the implementation; no check ran\n');
      return code;
    }
    announceBrowser(impl);
    try {
      return await checkImpl(impl, module, opts, interrupt);
    } finally {
      await impl.close?.();
      // a built-in holding resources (the gpu built-in: GL context, compiled kernels) is freed here
      if (opts.builtin) await (impl as { dispose?: () => unknown }).dispose?.();
      // an --exec child or isolation worker that had to be restarted: say so
      if (impl.events?.length) process.stderr.write(`note: ${impl.events.length} event(s) from the implementation's process:\n${impl.events.map((e) => `  ${e}`).join('\n')}\n`);
    }
  } finally {
    interrupt.dispose();
  }
}

async function checkImpl(impl: BatchNormImplementation, module: string | undefined, opts: CheckOptions, interrupt: ReturnType<typeof interruptOnSignals>): Promise<number> {
  const fromFile = opts.skipsFile ? readSkipsFile(opts.skipsFile) : [];
  const tty = process.stderr.isTTY === true;
  let planned: number | undefined;
  const report = await runConformance(impl, {
    signal: interrupt.signal,
    ...(opts.allowInconclusive ? { allowInconclusive: true } : {}),
    ...(opts.profile ? { profile: opts.profile as never } : {}),
    runs: opts.runs,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    only: opts.only,
    skip: opts.skip,
    // a skips file is shared between implementations and versions: an entry matching nothing is a warning (array-api-tests), not an error
    skipsFile: fromFile,
    onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
    timeoutMs: opts.timeoutMs,
    golden: opts.golden,
    ...(opts.shard ? { shard: opts.shard } : {}),
    ...(opts.replay ? { replayPath: opts.replay } : {}),
    onProgress: (e) => {
      planned = e.total;
      if (!tty) return;
      if (!e.result) process.stderr.write(`\r\x1b[K[${e.index + 1}/${e.total}] ${e.id}`);
      else if (e.index + 1 === e.total) process.stderr.write('\r\x1b[K');
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  const target = opts.builtin ? `--builtin ${opts.builtin}` : opts.exec ? `--exec ${JSON.stringify(opts.exec)}` : opts.browser ? `--browser ${module}` : module;
  const replayPrefix = `bn-conformance check ${target}${opts.profile ? ` --profile ${opts.profile}` : ''}`;
  let text: string;
  if (opts.format === 'json') text = formatJson(report);
  else if (opts.format === 'junit') text = formatJunit(report, replayPrefix);
  else if (opts.format === 'html') {
    // the report has no per-element errors: sample the implementation directly for the error plot
    let samplingNote: string | undefined;
    const errorSamples = [];
    if (report.interrupted) samplingNote = 'The run was interrupted: no error distribution was sampled.';
    else if (impl.forwardTrain) {
      try {
        errorSamples.push(await sampleErrorRatios(impl, { requests: 60, seed: report.options.seed }));
      } catch (e) {
        samplingNote = `Error sampling failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    } else samplingNote = `${impl.name} has no forwardTrain, so no error distribution was sampled.`;
    text = formatHtml(report, { errorSamples, replayPrefix, ...(samplingNote ? { samplingNote } : {}) });
  }
  else text = formatText(report, { color: process.stdout.isTTY === true && !process.env.NO_COLOR, verbose: opts.verbose ?? false, replayPrefix });
  if (opts.out) {
    writeFileSync(opts.out, text);
    // a short verdict still goes to the terminal
    process.stdout.write(`${verdictLine(report, planned)}; ${opts.format} report written to ${opts.out}\n`);
  } else {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    // an interrupted run ends with a verdict line that says so (stderr beside a machine-readable report)
    const lastLine = text.trimEnd().split('\n').at(-1) ?? '';
    if (report.interrupted && !/interrupted/i.test(lastLine)) (opts.format === 'text' ? process.stdout : process.stderr).write(`${verdictLine(report, planned)}\n`);
  }
  if (report.interrupted) return interrupt.code() ?? EXIT.interrupted;
  return report.ok ? EXIT.ok : EXIT.failed;
}

/**
 * The options that choose the implementation and which checks run. `check` and `list` both take
 * exactly these (one definition, so they cannot drift): `list --only X` lists what `check --only X` runs.
 */
function addTargetAndSelectionOptions(cmd: Command): Command {
  return cmd
    .argument('[module]', 'path to an ES module exporting a BatchNormImplementation')
    .option('--builtin <name>', 'a built-in implementation instead of a module; "list" lists them')
    .option('--exec <command>', 'a child process that speaks the NDJSON protocol (any language; see CONTRACT.md)')
    .option('--no-isolate', 'load a module in this process instead of a worker thread (a busy loop then blocks the run)')
    .addOption(new Option('--gpu-mode <mode>', 'mode of --builtin gpu (also BN_GPU_MODE); cpu is labelled NOT a GPU').choices(['headlessgl', 'webgl2', 'webgl', 'webgpu', 'cpu']))
    .option('--browser', 'run the module in headless Chromium (bundled with esbuild, served from 127.0.0.1); the judge stays here')
    .option('--browser-executable <path>', 'the Chromium for --browser and the browser built-ins (also BN_CHROMIUM; default /usr/bin/chromium)')
    .option('--browser-arg <flag>', 'an extra Chromium flag for --browser and the browser built-ins (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--timeout-ms <n>', 'time limit for one call', positiveInt('--timeout-ms'), DEFAULT_TIMEOUT_MS)
    .addOption(new Option('--profile <profile>', 'check against this profile instead of the one the implementation claims').choices(PROFILE_NAMES))
    .option('--only <patterns>', "run only checks whose ID matches (comma-separated, * wildcard, or a prefix ending at ':' or ';'; repeatable; one matching nothing is an error)", patterns, [])
    .option('--skip <patterns>', 'skip checks whose ID matches (as --only; one matching nothing is an error)', patterns, [])
    .option('--skips-file <file>', 'a file of ID patterns to skip, one per line, # comments; warns on entries matching nothing')
    .option('--no-golden', 'do not replay the golden TensorFlow fixtures')
    .option('--shard <i/n>', 'run only the i-th of n deterministic slices of the checks (for CI matrices; join with `merge`)', shardSpec);
}

/** What `list` receives: the shared options (addTargetAndSelectionOptions). */
type ListOptions = Pick<CheckOptions, 'builtin' | 'exec' | 'isolate' | 'gpuMode' | 'browser' | 'browserExecutable' | 'browserArg' | 'timeoutMs' | 'profile' | 'only' | 'skip' | 'skipsFile' | 'golden' | 'shard'>;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('bn-conformance')
    .description('Checks a Batch Normalization implementation against a high-precision reference, property by property.')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  addTargetAndSelectionOptions(program.command('check').description('check an implementation: a module (default export or `implementation`) or a built-in'))
    .option('--runs <n>', 'fast-check runs per property', positiveInt('--runs'), DEFAULT_RUNS)
    .option('--seed <n>', 'seed of the run (random when absent; printed in the report)', integer)
    .addOption(new Option('--format <format>', 'report format').choices(['text', 'json', 'junit', 'html']).default('text'))
    .option('--out <file>', 'write the report to a file (a one-line verdict still goes to stdout)')
    .option('--replay <path>', 'replay one failure: the fast-check path from its report (with --only ID --seed S)')
    .option('--verbose', 'list passing checks too')
    .option('--allow-inconclusive', 'a check whose every comparison was inconclusive (no informative bound) does not fail the run (exit 0 if nothing failed)')
    .addOption(new Option('--browser-console-errors <what>', 'console.error during a --browser call that returns normally: a fault, or ignored (listed after the report)').choices(['fault', 'ignore']))
    .action(async (module: string | undefined, opts: CheckOptions) => {
      process.exitCode = await check(module, opts);
    });

  program
    .command('merge')
    .description('join the JSON reports of sharded runs into one verdict (exit 0 or 1) and optionally one JUnit file')
    .argument('<reports...>', 'JSON reports written by check --format json --out FILE')
    .option('--junit <file>', 'write the merged JUnit XML here')
    .option('--json <file>', 'write the merged JSON report here')
    .action(async (files: string[], opts: { junit?: string; json?: string }) => {
      const merged = mergeReports(files.map(readReportFile));
      if (opts.junit) writeFileSync(opts.junit, formatJunit(merged));
      if (opts.json) writeFileSync(opts.json, formatJson(merged));
      process.stdout.write(`${formatText(merged, { color: process.stdout.isTTY === true && !process.env.NO_COLOR })}\n`);
      process.exitCode = merged.ok ? EXIT.ok : EXIT.failed;
    });

  addTargetAndSelectionOptions(
    program.command('list').description("list the check IDs that would run for an implementation, with check's own selection options (--profile, --only, --skip, --skips-file, --no-golden, --shard): what it lists is what check runs"),
  ).action(async (module: string | undefined, opts: ListOptions) => {
    if (opts.builtin === 'list') return printBuiltins();
    if (opts.gpuMode) process.env.BN_GPU_MODE = opts.gpuMode; // read by the gpu built-in
    applyBrowserCliOptions(opts);
    const impl = await resolveTarget(module, opts);
    try {
      // the run's own plan and selection (golden cases included unless --no-golden): exactly the cases check runs
      const { cases } = planRun(impl, {
        ...(opts.profile ? { profile: opts.profile as ProfileName } : {}),
        only: opts.only,
        skip: opts.skip,
        skipsFile: opts.skipsFile ? readSkipsFile(opts.skipsFile) : [],
        onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
        golden: opts.golden,
        timeoutMs: opts.timeoutMs,
        ...(opts.shard ? { shard: opts.shard } : {}),
      });
      for (const c of cases) process.stdout.write(`${c.def.id}\t${c.def.title}\n`);
    } finally {
      await impl.close?.();
    }
  });
  program
    .command('explain')
    .description('numeric edge cases of Batch Normalization, walked through with numbers computed by the reference')
    .argument('[topic]', 'a topic ID; without one, the list of topics')
    .option('--svg <file>', "write the topic's plot (its first one) as SVG")
    .option('--json', "print the topic's numbers as JSON instead of the walk-through")
    .action(async (topic: string | undefined, opts: { svg?: string; json?: boolean }) => {
      if (!topic) {
        process.stdout.write(`${topicList()}\n`);
        return;
      }
      const r = await explain(topic);
      process.stdout.write(opts.json ? `${JSON.stringify(r.data, null, 2)}\n` : `${r.text}\n`);
      if (opts.svg) {
        writeFileSync(opts.svg, await renderPlot(topic));
        process.stderr.write(`plot written to ${opts.svg}\n`);
      }
    });

  program
    .command('plot')
    .description('write one of the teaching plots as SVG (names: bn-conformance explain)')
    .argument('<name>', 'a plot name, or a topic ID for its first plot')
    .option('--out <file>', 'output file (default: stdout)')
    .action(async (name: string, opts: { out?: string }) => {
      const svg = await renderPlot(name);
      if (opts.out) writeFileSync(opts.out, svg);
      else process.stdout.write(svg);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return EXIT.usage;
    if (e instanceof BnConformanceError) {
      process.stderr.write(`bn-conformance: ${e.name}: ${e.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`bn-conformance: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.usage;
  }
}

// Run when executed directly (not when imported by tests).
const invoked = process.argv[1] ? pathToFileURL(resolve(process.argv[1])).href : '';
if (import.meta.url === invoked || process.argv[1]?.endsWith('/bn-conformance')) {
  // a reader that stops early (`list … | head`) closes the pipe: that is not an error of ours
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw e;
  });
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
