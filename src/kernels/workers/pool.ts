/**
 * The one worker-thread pool of the project: kernels split a large call across the cores with it,
 * and the synchronized mode runs its replicas on it as a gang. Workers are kept warm between
 * calls, unref'd while idle (a CLI, a vitest file or a script exits when its own work is done),
 * and run from TypeScript source (vitest, tsx: the worker registers tsx first) or from dist/.
 *
 * Tasks. A task is an exported function of some module, named by its file URL and export name
 * (`taskRef(import.meta.url, 'name')`), so any module can define tasks without touching this one:
 *
 *     export function scale(args: { data: SharedArrayBuffer; k: number }, ctx: TaskContext) {...}
 *     const SCALE = taskRef(import.meta.url, 'scale');
 *
 * A task receives `args` (structured-cloned; SharedArrayBuffers are shared, not copied) and
 * `ctx = { index, count, barrier? }`, and may return a value (cloned back) or a promise. Data
 * moves through SharedArrayBuffers; a task writes its part of the result there.
 *
 * API (getPool() is the process-wide pool; `new WorkerPool({ size })` a private one):
 *   pool.size                           threads a split uses by default (availableParallelism())
 *   pool.warm(n = size)                 start n workers; resolves when they have loaded
 *   pool.warmInBackground(n = size, modules?)
 *                                       the same without keeping the process alive meanwhile;
 *                                       every worker (now and later) also imports `modules` (task
 *                                       module URLs) before it counts as loaded, so the first
 *                                       splitSync does not wait for an import
 *   pool.idleReady                      workers loaded and idle now
 *   pool.run(task, args)                one task on one worker → Promise<result>
 *   pool.split(task, args, parts=size)  parts tasks (ctx.index 0..parts-1), queued over the
 *                                       workers → Promise<results in index order>
 *   pool.splitSync(task, args, parts, inline?)
 *                                       blocks the calling thread until all parts are done
 *                                       (Atomics.wait on shared status cells; for a synchronous
 *                                       API such as a kernel op). With `inline`, part 0 runs on
 *                                       the calling thread meanwhile (main thread + workers =
 *                                       every core). Returns false, having run nothing, when
 *                                       fewer idle loaded workers than needed exist (it then
 *                                       warms the pool in the background: do the work inline).
 *                                       A part's error is rethrown after every part finished.
 *   pool.gang(task, args, k)            k tasks guaranteed to run at the same time on k distinct
 *                                       threads (k <= MAX_GANG, more than cores is fine: the pool
 *                                       starts workers as needed and keeps them). ctx.barrier is a
 *                                       Barrier (./barrier.ts) over shared memory for k parties;
 *                                       a member that throws breaks it, so the rest stop waiting
 *                                       (BrokenBarrierError) and the gang rejects with the error.
 *   pool.dispose()                      terminate every worker; pending jobs reject.
 *
 * Failures: a task that throws rejects its job and the worker stays; a worker that dies (an
 * uncaught error, process.exit) rejects its job and is replaced on demand. splitSync gives up
 * after `timeoutMs` (default 60 s), terminating the late worker.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Barrier, BrokenBarrierError } from './barrier.js';
import { makeSignal, readSignalText, SIGNAL_ERROR, SIGNAL_PENDING } from './signal.js';

export { Barrier, BrokenBarrierError } from './barrier.js';

/** The largest gang: each member is a thread of its own. */
export const MAX_GANG = 64;

export interface TaskRef {
  /** File URL of the module that exports the task. */
  readonly module: string;
  /** Name of the exported function. */
  readonly name: string;
}

export interface TaskContext {
  /** This part's index, 0..count-1. */
  index: number;
  /** Parts in this split or members in this gang. */
  count: number;
  /** Gangs only: a barrier for `count` parties. */
  barrier?: Barrier;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskFunction<A = any, R = unknown> = (args: A, ctx: TaskContext) => R | Promise<R>;

export const taskRef = (moduleUrl: string, name: string): TaskRef => ({ module: moduleUrl, name });

/** @internal the message a worker receives. */
export interface JobMessage {
  id: number;
  module: string;
  name: string;
  args: unknown;
  index: number;
  count: number;
  barrier?: SharedArrayBuffer;
  signal?: SharedArrayBuffer;
}

/** @internal the message a worker answers with. */
export type ReplyMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string } };

/** The error a failed task rejects with (its name and message are the task's). */
export class TaskError extends Error {
  constructor(name: string, message: string, readonly taskStack?: string) {
    super(message);
    this.name = name;
  }
}

/** Worker bootstrap (plain JS, evaluated): register tsx when running from source, load the entry. */
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  const entry = await import(workerData.entry);
  await entry.preload(workerData.preload, true);
})().catch((e) => parentPort.postMessage({ loadError: String((e && e.stack) || e) }));
`;

interface EntryPlan {
  entry: string;
  tsx?: string;
}

let entryPlan: EntryPlan | undefined;
function planEntry(): EntryPlan {
  if (entryPlan) return entryPlan;
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return (entryPlan = { entry: new URL('./worker.js', here).href });
  // From TypeScript source (vitest, tsx): the worker needs tsx's ESM hooks before the entry.
  let api: string;
  try {
    api = createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  } catch {
    throw new Error('the worker pool runs from TypeScript source here, which needs the dev dependency tsx (or build: npm run build)');
  }
  if (!existsSync(api)) throw new Error(`tsx's ESM API was not found at ${api}`);
  return (entryPlan = { entry: new URL('./worker.ts', here).href, tsx: pathToFileURL(api).href });
}

interface Job {
  msg: JobMessage;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Gang: break this barrier if the worker dies. */
  barrier?: Barrier;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  /** Loaded: seen through `loaded` (no event-loop turn needed) or the worker's message. */
  isReady: boolean;
  /** Int32 cell the worker sets to 1 once loaded, readable while the caller never yields. */
  loaded: Int32Array;
  /** Reserved or running a job (async job, sync part or gang member). */
  busy: boolean;
  /** The async job it runs, if any. */
  job?: Job;
  /** Id of the sync part it runs, if any. */
  syncId?: number;
  dead: boolean;
  /** Outstanding reasons to keep the process alive (a job, an awaited warm-up, queued work). */
  refs: number;
  /** Ref'd while loading because queued work waits for it. */
  loadRef: boolean;
}

export interface WorkerPoolOptions {
  /** Threads a split uses by default; default os.availableParallelism(). */
  size?: number;
}

export class WorkerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private disposed = false;
  private readonly preloads: string[] = [];

  constructor(options: WorkerPoolOptions = {}) {
    const size = options.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, got ${size}`);
    this.size = size;
  }

  /** Workers loaded and idle now. */
  get idleReady(): number {
    let n = 0;
    for (const s of this.slots) if (isLoaded(s) && !s.busy && !s.dead) n++;
    return n;
  }

  /** Workers alive (loaded or loading). */
  get threads(): number {
    return this.slots.length;
  }

  /** Start workers until n exist; resolve when they have all loaded. */
  async warm(n = this.size): Promise<void> {
    this.checkOpen();
    while (this.slots.length < n) this.spawn();
    const slots = this.slots.slice(0, n);
    for (const s of slots) this.ref(s);
    try {
      await Promise.all(slots.map((s) => s.ready));
    } finally {
      for (const s of slots) this.unref(s);
    }
  }

  /**
   * Start workers until n exist, without waiting and without keeping the process alive; every
   * worker imports `modules` (task module URLs) before it counts as loaded.
   */
  warmInBackground(n = this.size, modules: string[] = []): void {
    if (this.disposed) return;
    for (const m of modules) {
      if (this.preloads.includes(m)) continue;
      this.preloads.push(m);
      for (const s of this.slots) if (!s.dead) s.worker.postMessage({ preload: [m] });
    }
    while (this.slots.length < n) this.spawn();
  }

  run<R = unknown>(task: TaskRef, args: unknown): Promise<R> {
    return this.split<R>(task, args, 1).then((r) => r[0]!);
  }

  split<R = unknown>(task: TaskRef, args: unknown, parts = this.size): Promise<R[]> {
    this.checkOpen();
    checkCount('parts', parts, Infinity);
    const jobs: Promise<unknown>[] = [];
    for (let index = 0; index < parts; index++) {
      jobs.push(new Promise((resolve, reject) => {
        this.queue.push({ msg: this.message(task, args, index, parts), resolve, reject });
      }));
    }
    this.pump();
    return Promise.all(jobs) as Promise<R[]>;
  }

  /**
   * Run `parts` parts and block until all are done (see the module header). `inline`, when given,
   * is the task's own function, run as part 0 on the calling thread.
   */
  splitSync(task: TaskRef, args: unknown, parts: number, inline?: TaskFunction, timeoutMs = 60_000): boolean {
    this.checkOpen();
    checkCount('parts', parts, Infinity);
    const first = inline ? 1 : 0;
    const idle = this.slots.filter((s) => isLoaded(s) && !s.busy && !s.dead);
    if (idle.length < parts - first) {
      this.warmInBackground(Math.max(this.size, parts - first));
      return false;
    }
    const signal = makeSignal(parts);
    const status = new Int32Array(signal, 0, parts);
    const running: Array<{ slot: Slot; index: number }> = [];
    for (let index = first; index < parts; index++) {
      const slot = idle[index - first]!;
      const msg = this.message(task, args, index, parts);
      msg.signal = signal;
      slot.busy = true;
      slot.syncId = msg.id;
      slot.worker.postMessage(msg);
      running.push({ slot, index });
    }
    let inlineError: unknown;
    if (inline) {
      try {
        const r = inline(args, { index: 0, count: parts });
        if (r instanceof Promise) throw new TypeError('splitSync: the inline task must be synchronous');
      } catch (e) {
        inlineError = e;
      }
    }
    const deadline = Date.now() + timeoutMs;
    let failure: unknown = inlineError;
    for (const { slot, index } of running) {
      while (Atomics.load(status, index) === SIGNAL_PENDING) {
        const left = deadline - Date.now();
        if (left <= 0 || Atomics.wait(status, index, SIGNAL_PENDING, left) === 'timed-out') break;
      }
      const s = Atomics.load(status, index);
      if (s === SIGNAL_PENDING) {
        failure ??= new Error(`splitSync: part ${index} of ${task.name} did not finish within ${timeoutMs} ms; its worker was terminated`);
        this.kill(slot, 'timed out');
        continue;
      }
      slot.busy = false;
      slot.syncId = undefined;
      if (s === SIGNAL_ERROR) failure ??= errorFromText(readSignalText(signal, parts, index));
    }
    if (failure !== undefined) throw failure;
    this.pump();
    return true;
  }

  async gang<R = unknown>(task: TaskRef, args: unknown, k: number, options: { timeoutMs?: number } = {}): Promise<R[]> {
    this.checkOpen();
    checkCount('gang size', k, MAX_GANG);
    // Reserve k workers now (idle ones, then new ones): members never queue behind other work,
    // so all k run at once and a barrier among them cannot deadlock.
    const members: Slot[] = [];
    for (const s of this.slots) if (members.length < k && !s.busy && !s.dead) members.push(s);
    while (members.length < k) members.push(this.spawn());
    for (const s of members) {
      s.busy = true;
      this.ref(s);
    }
    const barrier = new Barrier(k);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.all(members.map((s) => s.ready));
      if (options.timeoutMs !== undefined) timer = setTimeout(() => barrier.break(), options.timeoutMs);
      const results = await Promise.allSettled(members.map((slot, index) => new Promise((resolve, reject) => {
        const msg = this.message(task, args, index, k);
        msg.barrier = barrier.buffer;
        this.start(slot, { msg, resolve, reject, barrier });
      })));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      if (failed.length) throw failed.find((e) => !(e instanceof BrokenBarrierError || (e instanceof Error && e.name === 'BrokenBarrierError'))) ?? failed[0];
      return results.map((r) => (r as PromiseFulfilledResult<R>).value);
    } finally {
      if (timer) clearTimeout(timer);
      for (const s of members) {
        if (!s.job) s.busy = false;
        this.unref(s);
      }
      this.pump();
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const err = new Error('the worker pool was disposed');
    for (const j of this.queue.splice(0)) j.reject(err);
    await Promise.all(this.slots.slice().map((s) => this.kill(s, 'disposed')));
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.disposed) throw new Error('the worker pool was disposed');
  }

  private message(task: TaskRef, args: unknown, index: number, count: number): JobMessage {
    return { id: this.nextId++, module: task.module, name: task.name, args, index, count };
  }

  private spawn(): Slot {
    const plan = planEntry();
    const loaded = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { ...plan, preload: this.preloads.slice(), loaded } });
    let markReady!: () => void;
    let fail!: (e: unknown) => void;
    const slot: Slot = {
      worker,
      ready: new Promise<void>((res, rej) => {
        markReady = res;
        fail = rej;
      }),
      isReady: false,
      loaded,
      busy: false,
      dead: false,
      refs: 0,
      loadRef: false,
    };
    slot.ready.catch(() => undefined);
    worker.on('message', (m: ReplyMessage | { ready: true } | { loadError: string }) => {
      if ('ready' in m) {
        slot.isReady = true;
        markReady();
        this.pump();
        if (slot.loadRef) {
          slot.loadRef = false;
          this.unref(slot);
        }
        return;
      }
      if ('loadError' in m) {
        // the same would happen to any fresh worker: fail the queued work instead of respawning
        const err = new Error(`a pool worker failed to load: ${m.loadError}`);
        fail(err);
        for (const j of this.queue.splice(0)) j.reject(err);
        void this.kill(slot, 'failed to load');
        return;
      }
      const job = slot.job;
      if (!job || job.msg.id !== m.id) return; // the reply of a sync part: already accounted for
      slot.job = undefined;
      slot.busy = false;
      this.unref(slot);
      if (m.ok) job.resolve(m.value);
      else job.reject(new TaskError(m.error.name, m.error.message, m.error.stack));
      this.pump();
    });
    worker.on('error', (e) => void this.kill(slot, `crashed (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`));
    worker.on('exit', (code) => void this.kill(slot, `exited (code ${code})`));
    // after the listeners: attaching a 'message' listener refs the worker again (Node 20), so an
    // unref() before it would keep the process alive
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, job: Job): void {
    slot.busy = true;
    slot.job = job;
    this.ref(slot);
    slot.worker.postMessage(job.msg);
  }

  /** Give queued jobs to idle loaded workers; start workers (up to size) for the rest. */
  private pump(): void {
    if (this.disposed) return;
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (isLoaded(slot) && !slot.busy && !slot.dead) this.start(slot, this.queue.shift()!);
    }
    const loading = this.slots.filter((s) => !s.isReady && !s.dead && !s.busy).length;
    let want = Math.min(this.queue.length - loading, this.size - this.slots.length);
    while (want-- > 0) this.spawn();
    // a loading worker that will take queued work keeps the process alive until it is loaded
    for (const s of this.slots) {
      if (!s.isReady && !s.dead && !s.loadRef) {
        s.loadRef = true;
        this.ref(s);
      }
    }
  }

  private ref(slot: Slot): void {
    if (slot.refs++ === 0) slot.worker.ref();
  }

  private unref(slot: Slot): void {
    if (slot.refs > 0 && --slot.refs === 0) slot.worker.unref();
  }

  private kill(slot: Slot, why: string): Promise<unknown> {
    if (slot.dead) return Promise.resolve();
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const err = new Error(`a pool worker ${why}`);
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      job.barrier?.break();
      job.reject(err);
    }
    slot.refs = 0;
    slot.worker.removeAllListeners('message');
    const done = slot.worker.terminate();
    slot.worker.unref();
    if (!slot.isReady) {
      // jobs queued for it go to other workers
      queueMicrotask(() => this.pump());
    }
    return done;
  }
}

/**
 * Whether a worker has loaded. The worker also says so in a shared cell, so a caller that never
 * yields to the event loop (a synchronous loop of kernel calls) still sees its pool warm up.
 */
function isLoaded(s: Slot): boolean {
  if (!s.isReady && Atomics.load(s.loaded, 0) === 1) s.isReady = true;
  return s.isReady;
}

function checkCount(what: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`${what} must be an integer in 1..${max}, got ${n}`);
}

function errorFromText(text: string): Error {
  const colon = text.indexOf(': ');
  return colon > 0 ? new TaskError(text.slice(0, colon), text.slice(colon + 2)) : new TaskError('Error', text);
}

let shared: WorkerPool | undefined;

/** The process-wide pool (created on first use; a fresh one after dispose()). */
export function getPool(): WorkerPool {
  if (!shared || (shared as unknown as { disposed: boolean }).disposed) shared = new WorkerPool();
  return shared;
}
