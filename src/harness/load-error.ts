/**
 * Where a module failed to load, as `file:line:column: Name: message`, for every JS module door
 * (the CLI's in-process import, the isolation worker; the browser door gets the same from
 * esbuild, the --exec door from the child's stderr).
 *
 * Node 20's error for a syntax error in an imported ES module names no file: its stack is
 * "SyntaxError: Unexpected token ';'" and Node-internal frames (Node prints the location only
 * for an uncaught error, from a field user code cannot read). So, in order:
 *   1. a location the error itself carries: a decorated first line "file:line" with the source
 *      and a caret under it (CommonJS, newer Nodes), or the first stack frame in a file outside
 *      this package (an error thrown while the module evaluates);
 *   2. for a SyntaxError without one, Node itself is asked, in a child process that never runs
 *      the module: it parses the module graph from the entry (vm.SourceTextModule, relative
 *      imports only: a syntax error inside an installed package is not the user's to fix) to
 *      find the file that does not parse, and `node --check` that file gives the line and the
 *      caret (the column). Failure path only, so the child's ~0.1 s is spent only then.
 * Without either, the message stays Node's and says how to ask Node by hand.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What crosses a thread boundary of an error (the worker posts this). */
export interface ErrorInfo {
  name?: string;
  message: string;
  stack?: string;
  code?: string;
}

export interface SourceLocation {
  /** Absolute path of the file. */
  file: string;
  line: number;
  column: number;
  /** The source line and a caret under the column, when Node printed them. */
  excerpt?: string;
}

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}), ...(typeof code === 'string' ? { code } : {}) };
  }
  return { message: String(e) };
}

/** This package's own code (dist/ or src/): a frame there is the harness importing, not the module failing. */
const OWN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const isOwn = (file: string) => file.startsWith(OWN + sep + 'dist' + sep) || file.startsWith(OWN + sep + 'src' + sep);

const toPath = (f: string) => {
  if (f.startsWith('file://')) {
    try {
      return fileURLToPath(f);
    } catch {
      return undefined;
    }
  }
  return isAbsolute(f) ? f : undefined;
};

/** "file:line" (Node's decoration), then the source line, then the caret: the column is where the caret starts. */
function fromDecoration(text: string): SourceLocation | undefined {
  const m = /^(file:\/\/\S+?|\/\S*?):(\d+)\r?\n([^\n]*)\r?\n( *)(\^+)[^\n]*$/m.exec(text);
  const file = m ? toPath(m[1]!) : undefined;
  if (!m || !file) return undefined;
  return { file, line: Number(m[2]), column: m[4]!.length + 1, excerpt: `${m[3]}\n${m[4]}${m[5]}` };
}

/** The first stack frame in a file that is not Node's and not this package's. */
function fromFrames(stack: string): SourceLocation | undefined {
  for (const line of stack.split('\n')) {
    const m = /^\s+at (?:.*?\()?((?:file:\/\/|\/)[^()]*?):(\d+):(\d+)\)?\s*$/.exec(line);
    if (!m) continue;
    const file = toPath(m[1]!);
    if (file && !isOwn(file)) return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

/** A location the error carries itself (see the file comment, step 1). */
export function locationInError(e: ErrorInfo): SourceLocation | undefined {
  // a missing file or package: the message already names what and from where
  if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'ERR_UNSUPPORTED_DIR_IMPORT' || e.code === 'ERR_UNKNOWN_FILE_EXTENSION') return undefined;
  const stack = e.stack ?? '';
  return fromDecoration(stack) ?? fromFrames(stack);
}

/** The child's script (ES module, run with --experimental-vm-modules): prints JSON, never runs the module. */
const LOCATOR = `
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
const seen = new Set();
const queue = [process.argv[1]];
let found = null;
while (queue.length && !found && seen.size < 2000) {
  const url = queue.shift();
  if (seen.has(url) || !url.startsWith('file:') || !/\\.(mjs|js|cjs)$/.test(new URL(url).pathname)) continue;
  seen.add(url);
  let src;
  try { src = readFileSync(new URL(url), 'utf8'); } catch { continue; }
  let deps = [];
  let suspect = url.endsWith('.cjs');
  if (!suspect) {
    try { deps = new vm.SourceTextModule(src, { identifier: url }).dependencySpecifiers; }
    catch (e) { suspect = e instanceof SyntaxError; }
  }
  if (suspect) {
    // Node's own verdict, in the file's real format (CommonJS or ES module), with the caret
    const r = spawnSync(process.execPath, ['--check', fileURLToPath(url)], { encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0 && /SyntaxError/.test(r.stderr ?? '')) found = r.stderr;
  }
  for (const s of deps) if (/^(\\.{1,2}\\/|\\/|file:)/.test(s)) queue.push(new URL(s, url).href);
}
process.stdout.write(JSON.stringify(found));
`;

/** Ask Node where the module graph from `entryFile` stops parsing (step 2); undefined when it cannot say. */
export function locateSyntaxError(entryFile: string, timeoutMs = 20_000): Promise<SourceLocation | undefined> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--experimental-vm-modules', '--no-warnings', '--input-type=module', '-e', LOCATOR, '--', pathToFileURL(entryFile).href],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 20 },
      (err, stdout) => {
        if (err) return done(undefined);
        try {
          const checkOutput = JSON.parse(stdout) as string | null;
          done(checkOutput ? fromDecoration(checkOutput) : undefined);
        } catch {
          done(undefined);
        }
      },
    );
  });
}

/** A path as the user would type it: relative to the working directory when inside it. */
function shown(file: string): string {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : file;
}

/**
 * The words after "cannot load MODULE: " for an import of `modulePath` that failed with `e`:
 * `file:line:column: Name: message`, then the source line with a caret when known.
 */
export async function describeLoadError(e: unknown, modulePath: string): Promise<string> {
  const info = e !== null && typeof e === 'object' && 'message' in e && !(e instanceof Error) ? (e as ErrorInfo) : errorInfo(e);
  const head = info.name ? `${info.name}: ${info.message}` : info.message;
  // the module itself is missing (Node's words would say it was imported from the harness)
  if (info.code === 'ERR_MODULE_NOT_FOUND' && !existsSync(resolve(process.cwd(), modulePath))) return `no such file (${resolve(process.cwd(), modulePath)})`;
  let loc = locationInError(info);
  if (!loc && info.name === 'SyntaxError') loc = await locateSyntaxError(resolve(process.cwd(), modulePath));
  if (!loc) return info.name === 'SyntaxError' ? `${head} (Node named no file; \`node --check ${modulePath}\` may say where)` : head;
  const excerpt = loc.excerpt ? `\n${loc.excerpt.split('\n').map((l) => `    ${l}`).join('\n')}` : '';
  return `${shown(loc.file)}:${loc.line}:${loc.column}: ${head}${excerpt}`;
}
