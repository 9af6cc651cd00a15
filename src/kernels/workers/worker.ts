/**
 * The pool's worker entry (see ./pool.ts for the protocol and the API). It imports task modules
 * on first use (cached), runs one task at a time, and answers twice: through `signal` (shared
 * status cells the caller may be blocked on with Atomics.wait) when the job has one, and always
 * by a message (the pool's asynchronous path). A task that throws is reported, never fatal: the
 * worker stays in the pool. A gang member that throws breaks the gang's barrier so the other
 * members stop waiting for it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Barrier } from './barrier.js';
import type { JobMessage, ReplyMessage, TaskContext, TaskFunction } from './pool.js';
import { SIGNAL_ERROR, SIGNAL_OK, writeSignalText } from './signal.js';

const port = parentPort!;
const modules = new Map<string, Promise<Record<string, unknown>>>();

function loadModule(module: string): Promise<Record<string, unknown>> {
  let mod = modules.get(module);
  if (!mod) {
    mod = import(module) as Promise<Record<string, unknown>>;
    modules.set(module, mod);
    mod.catch(() => modules.delete(module));
  }
  return mod;
}

function loadTask(module: string, name: string): Promise<TaskFunction> {
  return loadModule(module).then((m) => {
    const fn = m[name];
    if (typeof fn !== 'function') throw new TypeError(`task module ${module} has no exported function ${JSON.stringify(name)}`);
    return fn as TaskFunction;
  });
}

const errorOf = (e: unknown) =>
  e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };

/** Import task modules ahead of their first job (the pool's warmInBackground). */
export async function preload(urls: string[] = [], announce = false): Promise<void> {
  // a module that fails to load fails its jobs later, with the error; not the worker now
  await Promise.all(urls.map((u) => loadModule(u).catch(() => undefined)));
  if (!announce) return;
  // the shared cell first: a caller blocked in synchronous work sees it without an event-loop turn
  const loaded = (workerData as { loaded?: Int32Array } | undefined)?.loaded;
  if (loaded) Atomics.store(loaded, 0, 1);
  port.postMessage({ ready: true });
}

port.on('message', async (job: JobMessage | { preload: string[] }) => {
  if ('preload' in job) {
    await preload(job.preload);
    return;
  }
  const barrier = job.barrier ? new Barrier(job.barrier) : undefined;
  const ctx: TaskContext = { index: job.index, count: job.count, ...(barrier ? { barrier } : {}) };
  let reply: ReplyMessage;
  try {
    const fn = await loadTask(job.module, job.name);
    const value = await fn(job.args, ctx);
    reply = { id: job.id, ok: true, value: job.signal ? undefined : value };
    if (job.signal) {
      const status = new Int32Array(job.signal, 0, job.count);
      Atomics.store(status, job.index, SIGNAL_OK);
      Atomics.notify(status, job.index);
    }
  } catch (e) {
    barrier?.break();
    const error = errorOf(e);
    reply = { id: job.id, ok: false, error };
    if (job.signal) {
      writeSignalText(job.signal, job.count, job.index, `${error.name}: ${error.message}`);
      const status = new Int32Array(job.signal, 0, job.count);
      Atomics.store(status, job.index, SIGNAL_ERROR);
      Atomics.notify(status, job.index);
    }
  }
  try {
    port.postMessage(reply);
  } catch (e) {
    port.postMessage({ id: job.id, ok: false, error: { name: 'DataCloneError', message: `the task's result cannot be sent between threads: ${errorOf(e).message}` } });
  }
});

// `ready` is posted by the bootstrap, through preload(workerData.preload, true), once the
// modules to preload are in.
