/**
 * Isolation for a module implementation: `check <module>` loads the module inside a worker thread
 * and proxies every call to it, so a synchronous busy loop (or a crash) in the implementation
 * cannot block or kill the run. The CLI does this by default for modules (`--no-isolate` to run
 * in-process); API users who pass an object to runConformance stay in-process.
 *
 * Each call sends copies of the request's arrays (transferred); the worker snapshots them, calls
 * the op, and sends back the result plus the inputs the implementation modified, found by the
 * same code as in process (src/harness/guard.ts, embedded in the worker's source), so a mutation
 * is named 'input-mutated' with the same words by both doors. A synchronous throw comes back as
 * fault 'threw', a rejection as 'rejected'. The result arrives as a structured clone, and
 * callImplementation copies it again like any result. Restarts follow the one rule of
 * src/harness/restarts.ts. Faults of the isolation itself:
 *
 *   timeout        no answer within the time limit: the worker is terminated (even mid busy
 *                  loop) and a fresh one loads the module for the next call
 *   worker-died    the worker exited or crashed (process.exit, an uncaught error) during a call
 *   not-cloneable  the result cannot be sent between threads (functions, class instances with
 *                  private state)
 */
import { Worker } from 'node:worker_threads';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyOp, AnyRequest, BatchNormImplementation, FamilyRequest } from '../contract/contract.js';
import { FAMILY_OPS, OPS, SYNC_OPS } from '../contract/contract.js';
import { UsageError } from '../contract/errors.js';
import { ContractFault, type Fault } from './call.js';
import { inputChanges, snapshotInputs } from './guard.js';
import { describeLoadError, type ErrorInfo } from './load-error.js';
import { DEFAULT_MAX_RESTARTS, RestartBudget } from './restarts.js';

/** Every op a module may define (BN, synchronized, the family's): the worker offers those it has. */
const ALL_OPS: readonly AnyOp[] = [...OPS, ...SYNC_OPS, ...FAMILY_OPS];

export interface IsolateOptions {
  /** Time limit for one call; on expiry the worker is terminated. Default 10 s. */
  timeoutMs?: number;
  /** Restarts allowed before later calls fail at once (fault worker-gave-up). Default DEFAULT_MAX_RESTARTS (5). */
  maxRestarts?: number;
}

export interface IsolatedImplementation extends BatchNormImplementation {
  readonly restarts: number;
  readonly events: string[];
  close(): Promise<void>;
}

const fault = (name: Fault, message: string) => new ContractFault(name, message);

/** The worker's source: plain JS (no loader needed), evaluated with `eval: true`. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const OPS = ${JSON.stringify(ALL_OPS)};
const errText = (e) => (e instanceof Error ? e.name + ': ' + e.message : String(e));
// the harness's own mutation check (src/harness/guard.ts), embedded as source
${snapshotInputs.toString()}
${inputChanges.toString()}
(async () => {
  let impl;
  try {
    const mod = await import(workerData.url);
    impl = await (mod.default ?? mod.implementation);
  } catch (e) {
    // the stack too: the main thread finds file:line:column in it (src/harness/load-error.ts)
    const error = e instanceof Error ? { name: e.name, message: e.message, stack: String(e.stack ?? ''), ...(typeof e.code === 'string' ? { code: e.code } : {}) } : { message: String(e) };
    parentPort.postMessage({ type: 'load-error', message: errText(e), error });
    return;
  }
  if (!impl || typeof impl !== 'object') {
    parentPort.postMessage({ type: 'load-error', message: 'no default export and no export named "implementation" (or it is not an object)' });
    return;
  }
  let desc;
  try {
    desc = { name: impl.name, profile: impl.profile, dtypes: impl.dtypes, precisions: impl.precisions, axes: impl.axes, accumulation: impl.accumulation,
      ops: OPS.filter((op) => typeof impl[op] === 'function') };
    parentPort.postMessage({ type: 'ready', desc });
  } catch (e) {
    parentPort.postMessage({ type: 'load-error', message: 'its description cannot be sent between threads: ' + errText(e) });
    return;
  }
  parentPort.on('message', async ({ id, op, req }) => {
    const before = snapshotInputs(req);
    const changed = () => inputChanges(req, before);
    let pending;
    try {
      pending = impl[op](req);
    } catch (e) {
      parentPort.postMessage({ id, kind: 'threw', message: errText(e), changed: changed() });
      return;
    }
    let result;
    try {
      result = await pending;
    } catch (e) {
      parentPort.postMessage({ id, kind: 'rejected', message: errText(e), changed: changed() });
      return;
    }
    try {
      parentPort.postMessage({ id, kind: 'ok', result, changed: changed() });
    } catch (e) {
      parentPort.postMessage({ id, kind: 'not-cloneable', message: errText(e), changed: changed() });
    }
  });
})();
`;

interface Pending {
  id: number;
  op: AnyOp;
  req: AnyRequest | FamilyRequest;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

interface Description {
  name: string;
  profile: BatchNormImplementation['profile'];
  dtypes: BatchNormImplementation['dtypes'];
  precisions?: BatchNormImplementation['precisions'];
  axes?: BatchNormImplementation['axes'];
  accumulation?: BatchNormImplementation['accumulation'];
  ops: AnyOp[];
}

/** Load `modulePath` in a worker thread and return a proxy implementation. */
export async function createIsolatedImplementation(modulePath: string, options: IsolateOptions = {}): Promise<IsolatedImplementation> {
  const url = pathToFileURL(resolve(process.cwd(), modulePath)).href;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const budget = new RestartBudget('worker', options.maxRestarts ?? DEFAULT_MAX_RESTARTS, (m) => fault('worker-gave-up', m));
  let nextId = 1;
  let worker: Worker | undefined;
  let ready: Promise<Description> | undefined;
  let pending: Pending | undefined;
  let closed = false;

  const stop = (why: string) => {
    const w = worker;
    worker = undefined;
    ready = undefined;
    if (w) {
      w.removeAllListeners('message');
      void w.terminate();
    }
    budget.note(why);
  };

  /**
   * Whether the worker keeps the process alive: only while it loads (someone awaits it) or a call
   * is in flight, so a script that never calls close() still exits by itself when its own work is
   * done. Set after every change of either; idempotent.
   */
  let loading = false;
  const holdIfBusy = () => {
    if (!worker) return;
    if (loading || pending) worker.ref();
    else worker.unref();
  };

  const start = (): Promise<Description> => {
    let loadError: Promise<void> | undefined;
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { url }, stdout: false, stderr: false });
    worker = w;
    loading = true;
    ready = new Promise<Description>((res, rej) => {
      w.on('message', (m: { type?: string; desc?: Description; message?: string; error?: ErrorInfo; id?: number; kind?: string; result?: unknown; changed?: string[] }) => {
        if (m.type === 'ready' || m.type === 'load-error') {
          loading = false;
          holdIfBusy();
          if (m.type === 'ready') return res(m.desc!);
          if (!m.error) return rej(new UsageError(`cannot load ${modulePath}: ${m.message}`));
          // where it failed (file:line:column) may take a child process to find: the worker's exit meanwhile is no news
          loadError = describeLoadError(m.error, modulePath).then((where) => rej(new UsageError(`cannot load ${modulePath}: ${where}`)));
          return;
        }
        const p = pending;
        if (!p || m.id !== p.id) return;
        pending = undefined;
        holdIfBusy();
        clearTimeout(p.timer);
        // a mutation outranks whatever else happened, as in process
        if (m.changed?.length) p.reject(new ContractFault('input-mutated', `${p.op} modified its input ${m.changed.join(', ')}`));
        else if (m.kind === 'ok') p.resolve(m.result);
        else if (m.kind === 'threw') p.reject(new ContractFault('threw', `${p.op} threw ${m.message}`));
        else if (m.kind === 'rejected') p.reject(new Error(m.message));
        else p.reject(fault('not-cloneable', `${p.op} returned a result that cannot be sent between threads: ${m.message}`));
      });
      const died = (why: string) => {
        if (worker !== w) return;
        if (!loadError) rej(new UsageError(`cannot load ${modulePath}: the worker ${why} before it was ready`));
        const p = pending;
        pending = undefined;
        stop(`worker-died: the worker ${why}`);
        if (p) {
          clearTimeout(p.timer);
          p.reject(fault('worker-died', `${p.op}: the implementation's worker ${why}; a fresh one is started for the next call`));
        }
      };
      w.on('error', (e) => died(`crashed (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`));
      w.on('exit', (code) => died(`exited (code ${code})`));
    });
    // after the listeners: attaching a 'message' listener refs a worker again (Node 20), so an
    // unref() before it would keep the process alive (src/kernels/workers/pool.ts does the same)
    holdIfBusy();
    ready.catch(() => undefined);
    return ready;
  };

  const desc = await start();
  if (!desc.ops.length) {
    stop('');
    throw new UsageError(`invalid implementation ${JSON.stringify(desc.name ?? '')}: it implements none of ${ALL_OPS.join(', ')}`);
  }

  let queue: Promise<unknown> = Promise.resolve();
  const call = (op: AnyOp, req: AnyRequest | FamilyRequest): Promise<unknown> => {
    const run = async () => {
      if (closed) throw fault('worker-died', 'the implementation was closed');
      if (!worker) {
        budget.restart();
        start();
      }
      try {
        await ready;
      } catch (e) {
        stop('');
        throw fault('worker-died', `the module did not load again in a fresh worker: ${e instanceof Error ? e.message : String(e)}`);
      }
      const w = worker!;
      // copies of the arrays, transferred; the harness keeps its own for the mutation check
      const copy: Record<string, unknown> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [k, v] of Object.entries(req)) {
        if (v instanceof Float32Array || v instanceof Float64Array) {
          const c = v.slice();
          copy[k] = c;
          transfer.push(c.buffer as ArrayBuffer);
        } else copy[k] = Array.isArray(v) ? v.slice() : v;
      }
      const id = nextId++;
      return new Promise((res, rej) => {
        const timer = setTimeout(() => {
          pending = undefined;
          stop(`timeout: terminated the worker, ${op} did not answer within ${timeoutMs} ms`);
          rej(new ContractFault('timeout', `${op} did not return within ${timeoutMs} ms (a busy loop?); its worker was terminated and is restarted for the next call`));
        }, timeoutMs);
        pending = { id, op, req, resolve: res, reject: rej, timer };
        holdIfBusy(); // a call in flight keeps the process alive until it settles
        w.postMessage({ id, op, req: copy }, transfer);
      });
    };
    const p = queue.then(run, run);
    queue = p.catch(() => undefined);
    return p;
  };

  const impl: IsolatedImplementation = {
    name: desc.name,
    profile: desc.profile,
    dtypes: desc.dtypes,
    ...(desc.precisions !== undefined ? { precisions: desc.precisions } : {}),
    ...(desc.axes !== undefined ? { axes: desc.axes } : {}),
    ...(desc.accumulation !== undefined ? { accumulation: desc.accumulation } : {}),
    get restarts() {
      return budget.restarts;
    },
    events: budget.events,
    async close() {
      closed = true;
      // a call still in flight (the run was interrupted): it ends now, its time limit's timer too,
      // which would otherwise keep the process alive for up to timeoutMs
      const p = pending;
      pending = undefined;
      if (p) {
        clearTimeout(p.timer);
        p.reject(fault('worker-died', `${p.op}: the implementation was closed while it ran`));
      }
      stop('');
    },
  };
  const ops = impl as unknown as Record<AnyOp, (req: AnyRequest | FamilyRequest) => Promise<unknown>>;
  for (const op of desc.ops) ops[op] = (req) => call(op, req);
  return impl;
}
