/**
 * The language-neutral door (`check --exec "CMD"`, docs/CONTRACT.md): a child process that
 * speaks newline-delimited JSON on stdin/stdout, one request a line, one answer a line; arrays are
 * `{"b64": "<base64 of the little-endian bytes>"}`.
 *
 * `createExecImplementation` does the `describe` handshake and returns a BatchNormImplementation
 * whose ops send requests to the child. An `{"id":N,"error":"msg"}` answer becomes a rejected
 * Error (so an adapter that refuses m = 1 passes the m = 1 rule). Everything else that can go
 * wrong on the wire is a named ExecFault (a ContractFault, so the report names it):
 *
 *   exec-died           the child exited (or could not be spawned) while a request was pending
 *   exec-stdout-closed  the child closed its stdout but kept running
 *   exec-bad-json       a line that is not a JSON object
 *   exec-wrong-id       an answer whose id is not the pending request's
 *   exec-line-too-long  a line longer than maxLineBytes (default 64 MiB), or 4 x the request's line
 *                       plus 1 MiB when that is more; nothing past it is kept
 *   exec-bad-array      a {"b64"} value that is not a whole number of elements
 *   exec-timeout        no answer within the time limit (the child is killed)
 *   exec-gave-up        the child was restarted maxRestarts times; later calls fail at once
 *
 * After any of these the child is killed and the next call starts a fresh one (`restarts` and
 * `events` say how often and why). Requests are sent one at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { AnyOp, AnyRequest, AnySyncRequest, Arr, BatchNormImplementation, DType, FamilyRequest, Precision, Profile, ProfileName, SyncOp } from '../contract/contract.js';
import { DTYPES, FAMILY_OPS, OPS, SYNC_OPS } from '../contract/contract.js';
import { dtypesOf, fieldDtype, precisionOfRequest } from '../contract/dtypes.js';
import { ProfileError, UsageError } from '../contract/errors.js';
import { validateAccumulation } from '../contract/declaration.js';
import { resolveProfile } from '../contract/profiles.js';
import { ContractFault, type ExecFaultName } from './call.js';
import { DEFAULT_MAX_RESTARTS, RestartBudget } from './restarts.js';

export type { ExecFaultName };

/** A transport fault of the --exec child; `fault` is one of ExecFaultName. */
export class ExecFault extends ContractFault {
  constructor(fault: ExecFaultName, message: string) {
    super(fault, message);
    this.name = 'ExecFault';
  }
}

export interface ExecOptions {
  /** Time limit for one answer (the describe handshake gets max(this, 30 s)). Default 10 s. */
  timeoutMs?: number;
  /** Longest accepted line, in bytes. Default 64 MiB. */
  maxLineBytes?: number;
  /** Restarts allowed before every later call fails with exec-gave-up. Default DEFAULT_MAX_RESTARTS (5). */
  maxRestarts?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ExecImplementation extends BatchNormImplementation {
  /** The command line. */
  readonly command: string;
  /** How many times the child was restarted after a fault. */
  readonly restarts: number;
  /** One line per fault and restart, for the report's footer. */
  readonly events: string[];
  /** Kill the child. Safe to call twice. */
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

/**
 * The largest answer an honest adapter sends: bn:scale's grid data reach 2^21 float64 values per
 * array (src/checks/scale.ts GRID_SIZES), 16 MiB of bytes, 22.4 MiB in base64, and a forwardTrain
 * answer carries y beside the per-channel arrays. 64 MiB leaves room for that and for JSON's
 * framing, while a child that streams garbage without a newline is still cut off.
 */
const DEFAULT_MAX_LINE = 64 * 1024 * 1024;

export function encodeArray(a: ArrayBufferView): { b64: string } {
  return { b64: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') };
}

/**
 * Decode {"b64"} to a typed array of dtype (or of the value's own "dtype" tag, if it has one);
 * float16 / bfloat16 arrive as the little-endian 16-bit patterns, into a Uint16Array.
 */
export function decodeArray(v: { b64: string; dtype?: unknown }, dtype: DType, field: string): Arr {
  const dt = (DTYPES as readonly unknown[]).includes(v.dtype) ? (v.dtype as DType) : dtype;
  const bytes = Buffer.from(v.b64, 'base64');
  const size = dt === 'float32' ? 4 : dt === 'float64' ? 8 : 2;
  if (bytes.length % size !== 0) throw new ExecFault('exec-bad-array', `"${field}" has ${bytes.length} bytes, not a whole number of ${dt} elements`);
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  return dt === 'float32' ? new Float32Array(buf) : dt === 'float64' ? new Float64Array(buf) : new Uint16Array(buf);
}

function encodeRequest(id: number, op: string, dtype: DType | undefined, req?: AnyRequest | AnySyncRequest | FamilyRequest): string {
  const msg: Json = { id, op };
  if (dtype) msg.dtype = dtype;
  if (req) for (const [k, v] of Object.entries(req)) msg[k] = ArrayBuffer.isView(v) ? encodeArray(v) : k === 'shards' ? encodeShards(v) : v;
  return `${JSON.stringify(msg)}\n`;
}

// --- synchronized ops (0.2.0): shards out, replicas back -------------------------------------

const isSyncOp = (op: string): op is SyncOp => (SYNC_OPS as readonly string[]).includes(op);

/** shards: [{ x, shape, dy? }, …] with every typed array as {"b64"}. */
function encodeShards(shards: unknown): unknown {
  if (!Array.isArray(shards)) return shards;
  return shards.map((s) =>
    typeof s === 'object' && s !== null ? Object.fromEntries(Object.entries(s).map(([k, v]) => [k, ArrayBuffer.isView(v) ? encodeArray(v) : v])) : s,
  );
}

/**
 * A synchronized answer: `replicas` is a list of objects ({ y, runningMean, runningVar } or
 * { dx }), the rest are global; y and dx are in the request's dtype, everything else in its
 * paramDtype (unless a value carries its own "dtype" tag). Anything malformed is passed on as
 * is, for the guarded call to name (missing-output, not-a-typed-array, …).
 */
function decodeSyncAnswer(answer: Json, req: AnySyncRequest): Record<string, unknown> {
  const dtypeOf = (k: string) => (k === 'y' || k === 'dx' ? req.dtype : req.paramDtype);
  const decode = (k: string, v: unknown) => (isB64(v) ? decodeArray(v as { b64: string; dtype?: unknown }, dtypeOf(k) as DType, k) : v);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(answer)) {
    if (k === 'id') continue;
    if (k === 'replicas' && Array.isArray(v)) {
      out[k] = v.map((rep) =>
        typeof rep === 'object' && rep !== null && !Array.isArray(rep) ? Object.fromEntries(Object.entries(rep as Json).map(([rk, rv]) => [rk, decode(rk, rv)])) : rep,
      );
    } else out[k] = decode(k, v);
  }
  return out;
}

const isB64 = (v: unknown): v is { b64: string } => typeof v === 'object' && v !== null && typeof (v as { b64?: unknown }).b64 === 'string';

interface Pending {
  id: number;
  resolve(v: Json): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

/** One child process and its line reader. */
class Child {
  readonly proc: ChildProcess;
  pending?: Pending;
  dead = false;
  /** A fault seen while nothing was pending; the next request gets it. */
  poison?: ExecFault;
  private chunks: Buffer[] = [];
  private lineBytes = 0;
  /**
   * The longest answer line accepted now: maxLineBytes, or for a large request 4 x its line plus
   * 1 MiB. An honest answer carries outputs no larger than the request's inputs in the same
   * encoding (y or dx the size of x; per-group and per-parameter arrays at most one per element,
   * mean and invStdDev together at most twice x's count), so this bounds it whatever the check's
   * size (a float64 LayerNorm backward at m = 2^21 answers dx and dgamma of 2^21 values each), while
   * a child that streams without a newline is still cut off.
   */
  private lineLimit: number;
  private discarding = false;
  /** The first and last 2000 characters of its stderr: where Node prints file:line, and where a traceback ends. */
  private stderrHead = '';
  stderrTail = '';
  private stderrChars = 0;
  /** Exited: 'exit' came (its report may wait for the rest of stderr). */
  private exited = false;

  constructor(
    command: string,
    private readonly opts: Required<Pick<ExecOptions, 'maxLineBytes'>> & ExecOptions,
    private readonly onFault: (f: ExecFault) => void,
  ) {
    this.lineLimit = opts.maxLineBytes;
    this.proc = spawn(command, {
      shell: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: process.platform !== 'win32', // its own process group, so a kill reaches grandchildren
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: opts.env ?? process.env,
    });
    this.proc.stdin!.on('error', () => undefined); // EPIPE when it died: reported by 'exit'
    this.proc.stdout!.on('data', (b: Buffer) => this.onData(b));
    this.proc.stdout!.on('end', () => {
      if (!this.dead) {
        // give 'exit' a moment to win, so a plain death is reported as a death
        setTimeout(() => {
          if (!this.dead && !this.exited) this.fail(new ExecFault('exec-stdout-closed', `the child closed its stdout but is still running${this.tail()}`));
        }, 50);
      }
    });
    this.proc.stderr!.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      if (this.stderrHead.length < 2000) this.stderrHead += s.slice(0, 2000 - this.stderrHead.length);
      this.stderrTail = (this.stderrTail + s).slice(-2000);
      this.stderrChars += s.length;
    });
    this.proc.on('error', (e) => this.fail(new ExecFault('exec-died', `could not run the child: ${e.message}`)));
    this.proc.on('exit', (code, signal) => {
      if (this.dead) return;
      this.exited = true;
      // 'exit' can come before the last of stderr is read (a child that dies at start: a syntax
      // error, a missing module): wait for stderr's end, briefly (a grandchild may hold it open)
      const report = () => {
        if (!this.dead) this.fail(new ExecFault('exec-died', `the child exited (${signal ? `signal ${signal}` : `code ${code}`})${this.tail()}`));
      };
      const err = this.proc.stderr!;
      if (err.readableEnded || err.destroyed) return report();
      const t = setTimeout(report, 250);
      err.once('end', () => {
        clearTimeout(t);
        report();
      });
    });
  }

  /**
   * Its stderr for a message: all of it when short, else its start (where Node names file:line
   * and draws the caret) and its end (where a Python traceback ends); Node's internal stack
   * frames left out.
   */
  private tail(): string {
    const text = this.stderrChars <= 2000 ? this.stderrTail : `${this.stderrHead.slice(0, 700)}\n…\n${this.stderrTail.slice(-700)}`;
    const t = text
      .split('\n')
      .filter((l) => !/^\s+at .*\(?node:internal\//.test(l))
      .join('\n')
      .trim();
    return t ? `; its stderr${this.stderrChars <= 2000 ? '' : ' (start and end)'}:\n${t.split('\n').map((l) => `    ${l}`).join('\n')}` : '';
  }

  private onData(b: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = b.indexOf(0x0a, start);
      const piece = nl < 0 ? b.subarray(start) : b.subarray(start, nl);
      if (!this.discarding) {
        this.lineBytes += piece.length;
        if (this.lineBytes > this.lineLimit) {
          this.discarding = true;
          this.chunks = [];
          this.fail(new ExecFault('exec-line-too-long', `the child sent a line longer than ${this.lineLimit} bytes (the limit); the rest was discarded`));
        } else this.chunks.push(Buffer.from(piece));
      }
      if (nl < 0) return;
      if (!this.discarding) {
        const line = Buffer.concat(this.chunks).toString('utf8');
        this.onLine(line);
      }
      this.chunks = [];
      this.lineBytes = 0;
      this.discarding = false;
      start = nl + 1;
      if (this.dead) return;
    }
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(new ExecFault('exec-bad-json', `the child printed a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`));
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.fail(new ExecFault('exec-bad-json', `the child printed JSON that is not an object: ${line.slice(0, 200)}`));
      return;
    }
    const m = msg as Json;
    const p = this.pending;
    if (!p) {
      this.fail(new ExecFault('exec-wrong-id', `the child sent an answer (id ${JSON.stringify(m.id)}) when no request was pending`));
      return;
    }
    if (m.id !== p.id) {
      this.fail(new ExecFault('exec-wrong-id', `the child answered id ${JSON.stringify(m.id)} to request ${p.id}`));
      return;
    }
    this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    p.resolve(m);
  }

  /** A transport fault: reject what is pending (or keep it for the next request) and kill. */
  fail(f: ExecFault): void {
    if (this.dead) return;
    this.dead = true;
    this.onFault(f);
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(f);
    } else this.poison = f;
    this.kill();
  }

  /** Reject the request in flight, if any, and stop its timer (close() during a request: an interrupted run). */
  abandon(f: ExecFault): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    p.reject(f);
  }

  kill(): void {
    this.dead = true;
    const pid = this.proc.pid;
    try {
      if (pid !== undefined && process.platform !== 'win32') process.kill(-pid, 'SIGKILL');
      else this.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
    this.proc.stdin?.destroy();
    this.proc.stdout?.destroy();
    this.proc.stderr?.destroy();
    this.proc.unref();
  }

  send(id: number, line: string, timeoutMs: number): Promise<Json> {
    return new Promise<Json>((resolve, reject) => {
      if (this.poison) {
        const f = this.poison;
        reject(f);
        return;
      }
      if (this.dead) {
        reject(new ExecFault('exec-died', 'the child is not running'));
        return;
      }
      const p: Pending = { id, resolve, reject };
      this.lineLimit = Math.max(this.opts.maxLineBytes, 4 * line.length + (1 << 20));
      p.timer = setTimeout(() => this.fail(new ExecFault('exec-timeout', `no answer to request ${id} within ${timeoutMs} ms; the child was killed`)), timeoutMs);
      this.pending = p;
      this.proc.stdin!.write(line);
    });
  }
}

interface Description {
  name: string;
  profile: ProfileName | Profile;
  dtypes: DType[];
  /** Extension (0.2.0): supported (dtype, paramDtype) pairs. */
  precisions?: Precision[];
  ops: AnyOp[];
  axes?: 'first' | 'last' | 'any';
  /** The contract extension: how the child's sums run (see AccumulationInfo). */
  accumulation?: BatchNormImplementation['accumulation'];
}

function parseDescription(m: Json, command: string): Description {
  const problems: string[] = [];
  if (typeof m.error === 'string') throw new UsageError(`--exec "${command}" refused describe: ${m.error}`);
  if (typeof m.name !== 'string' || !m.name) problems.push('"name" must be a non-empty string');
  if (!(typeof m.profile === 'string' || (typeof m.profile === 'object' && m.profile !== null))) problems.push('"profile" must be a profile name or object');
  const knownDtype = (d: unknown) => (DTYPES as readonly unknown[]).includes(d);
  if (!Array.isArray(m.dtypes) || !m.dtypes.length || m.dtypes.some((d) => !knownDtype(d))) problems.push(`"dtypes" must be a non-empty list of ${DTYPES.map((d) => `"${d}"`).join(' | ')}`);
  if (m.precisions !== undefined && (!Array.isArray(m.precisions) || m.precisions.some((p) => typeof p !== 'object' || p === null || !knownDtype(p.dtype) || !knownDtype(p.paramDtype)))) {
    problems.push('"precisions" must be a list of {"dtype", "paramDtype"}');
  }
  // the family's ops (0.3.0) travel like BN's: the same fields as the JS request, arrays as {"b64"}
  const knownOps: readonly string[] = [...OPS, ...SYNC_OPS, ...FAMILY_OPS];
  if (!Array.isArray(m.ops) || !m.ops.length || m.ops.some((o) => !knownOps.includes(o as string))) problems.push(`"ops" must be a non-empty list of ${knownOps.join(', ')}`);
  if (m.axes !== undefined && !['first', 'last', 'any'].includes(m.axes as string)) problems.push('"axes" must be "first", "last" or "any"');
  if (problems.length) throw new UsageError(`--exec "${command}": bad describe answer ${JSON.stringify(m).slice(0, 300)}: ${problems.join('; ')}`);
  // the same rules and named errors as a JS object's declaration (src/contract/declaration.ts)
  try {
    resolveProfile(m.profile as string);
  } catch (e) {
    throw e instanceof ProfileError ? new ProfileError(`--exec "${command}" (describe answer): ${e.message}`) : e;
  }
  // a dtype only "precisions" names is declared too (src/contract/dtypes.ts precisionsOf)
  validateAccumulation(m.accumulation, dtypesOf({ dtypes: m.dtypes as DType[], ...(m.precisions ? { precisions: m.precisions as Precision[] } : {}) }), `--exec "${command}" (describe answer)`);
  return m as unknown as Description;
}

/** Start the child, do the describe handshake, and return the implementation. */
export async function createExecImplementation(command: string, options: ExecOptions = {}): Promise<ExecImplementation> {
  if (!command.trim()) throw new UsageError('--exec needs a command');
  const opts = { ...options, maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE };
  const timeoutMs = options.timeoutMs ?? 10_000;
  const budget = new RestartBudget('child', options.maxRestarts ?? DEFAULT_MAX_RESTARTS, (m) => new ExecFault('exec-gave-up', m));
  const events = budget.events;
  let nextId = 0;
  let child: Child | undefined;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  const onFault = (f: ExecFault) => budget.note(f.message);
  const start = () => {
    child = new Child(command, opts, onFault);
    return child;
  };

  // handshake
  const first = start();
  let desc: Description;
  try {
    const answer = await first.send(nextId++, encodeRequest(0, 'describe', undefined), Math.max(timeoutMs, 30_000));
    desc = parseDescription(answer, command);
  } catch (e) {
    first.kill();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--exec "${command}": the describe handshake failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  const request = (op: AnyOp, req: AnyRequest | AnySyncRequest | FamilyRequest): Promise<Record<string, unknown>> => {
    // a synchronized request names its dtype and paramDtype (required fields); the others may leave them to the arrays
    const precision = isSyncOp(op) ? { dtype: (req as AnySyncRequest).dtype, paramDtype: (req as AnySyncRequest).paramDtype } : precisionOfRequest(req as AnyRequest | FamilyRequest);
    const dtype = precision.dtype;
    const run = async () => {
      if (closed) throw new ExecFault('exec-died', 'the implementation was closed');
      let c = child!;
      if (c.dead && !c.poison) {
        budget.restart();
        c = start();
      }
      const id = nextId++;
      try {
        // a little under the harness's own limit, so the child is killed and the fault named as exec-timeout
        const answer = await c.send(id, encodeRequest(id, op, dtype, req), Math.max(1, Math.floor(timeoutMs * 0.9)));
        if (typeof answer.error === 'string' || (answer.error !== undefined && answer.error !== null)) {
          throw new Error(typeof answer.error === 'string' ? answer.error : JSON.stringify(answer.error));
        }
        if (isSyncOp(op)) return decodeSyncAnswer(answer, req as AnySyncRequest);
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(answer)) {
          if (k === 'id') continue;
          out[k] = isB64(v) ? decodeArray(v as { b64: string; dtype?: unknown }, fieldDtype(k, precision), k) : v;
        }
        return out;
      } finally {
        if (c.poison) c.poison = undefined; // delivered once; the next call restarts
      }
    };
    const p = queue.then(run, run);
    queue = p.catch(() => undefined);
    return p;
  };

  const impl: ExecImplementation = {
    name: desc.name,
    profile: desc.profile,
    dtypes: desc.dtypes,
    ...(desc.precisions ? { precisions: desc.precisions } : {}),
    ...(desc.axes ? { axes: desc.axes } : {}),
    ...(desc.accumulation ? { accumulation: desc.accumulation } : {}),
    command,
    get restarts() {
      return budget.restarts;
    },
    events,
    async close() {
      closed = true;
      // a request in flight ends now: its timer would keep the process alive for up to timeoutMs
      child?.abandon(new ExecFault('exec-died', 'the implementation was closed while a request ran'));
      child?.kill();
    },
  };
  const ops = impl as unknown as Record<AnyOp, (req: AnyRequest | AnySyncRequest | FamilyRequest) => Promise<unknown>>;
  for (const op of desc.ops) ops[op] = (req) => request(op, req);
  return impl;
}
