/**
 * Threads or one thread? 'auto' decides by measuring itself. Whether splitting a large call over
 * the cores pays depends on the machine as much as on the shape: the caller copies the workers'
 * parts into and out of shared memory, which only pays when another core is actually free. On
 * the 2-core development machine shared by a load of 20-25 runnable threads, a woken worker
 * waited milliseconds for its turn and the split lost in every large cell measured (0.5-0.97x of
 * one thread, side by side; docs/bench.md). A fixed size threshold cannot know that, so each kind
 * of call (op, layout family, size to within a factor of 2) keeps the last KEEP times per element
 * of each path, takes the path with the smaller median, and re-times the other path every
 * EXPLORE_EVERY-th call, so a change of load is noticed; every EXPLORE_RARELY-th call when the
 * other is FAR_APART slower (each re-timing costs the difference: at 16 and 1.4x, 2.5% of every
 * call on average; at 128, 0.3%). The first 2·KEEP calls alternate the paths, so each is judged
 * on KEEP times: a path's first calls run cold (the JIT, the caches, a worker's first task; the
 * first threaded call of NCHW [32,64,56,56] training took 24 ms against 6.7 ms warm), and a
 * path judged on its cold times alone stayed unused (a bench showed inference at 0.52x of one
 * thread, the training pipeline at 0.8x).
 *
 * The median, neither the mean nor the minimum: a call that loses its core for a while takes many
 * times longer, and the mean follows those losses back and forth between the paths; the median
 * of 5 ignores up to 2 of them. The minimum, used before, picked a path for its lucky times: on 2
 * cores a threaded call competes with the runtime's own garbage-collection threads, which run
 * whenever the process allocates a lot (as a bench, or any training loop, does): the pipelined
 * training forward of NCHW [32,64,56,56] took 6.6 ms with the core and 12-15 ms without
 * (7.1 ms under node --single-threaded-gc), so its minimum said threads while its median said
 * one thread.
 *
 * The two paths give results within the declared accumulation's bound of each other, not
 * always bit-identical (see ./threads.ts): a repeated call may differ in the last bit.
 */
export type PathName = 'single' | 'threads';

/** One call in this many takes the path that is currently slower, to re-time it. */
export const EXPLORE_EVERY = 16;
/** ... and one in this many while that path is at least FAR_APART times slower. */
export const EXPLORE_RARELY = 128;
export const FAR_APART = 1.25;
/**
 * Threads are taken only when their median is at least this many times faster: a split occupies
 * a second core and leaves the call at the mercy of that core's scheduling, which is worth it for
 * a clear gain, not for noise (in a process whose garbage collector kept the cores busy, medians
 * within 10% of each other flipped back and forth and the default trailed one thread by 12%).
 */
export const SPLIT_MARGIN = 1.1;
/** Times kept per path (the newest; odd, for a median); the first calls alternate until each path has this many. */
export const KEEP = 5;

interface Record {
  single: number[];
  threads: number[];
  calls: number;
}

const records = new Map<string, Record>();

const keyOf = (kind: string, n: number) => `${kind}:${Math.round(Math.log2(n))}`;
const median = (t: number[]) => [...t].sort((a, b) => a - b)[t.length >> 1]!;

/** Which path the next call of this kind and size takes. */
export function choosePath(kind: string, n: number): PathName {
  const key = keyOf(kind, n);
  let r = records.get(key);
  if (!r) records.set(key, (r = { single: [], threads: [], calls: 0 }));
  r.calls++;
  if (r.threads.length < KEEP || r.single.length < KEEP) return r.threads.length <= r.single.length ? 'threads' : 'single';
  const [t, s] = [median(r.threads), median(r.single)];
  const faster: PathName = t * SPLIT_MARGIN < s ? 'threads' : 'single';
  const every = Math.max(t, s) >= FAR_APART * Math.min(t, s) ? EXPLORE_RARELY : EXPLORE_EVERY;
  if (r.calls % every === 0) return faster === 'threads' ? 'single' : 'threads';
  return faster;
}

/** Record a call's time (ms) for n elements on a path. */
export function recordPath(kind: string, n: number, path: PathName, ms: number): void {
  const r = records.get(keyOf(kind, n));
  if (!r) return;
  const t = r[path];
  t.push(ms / n);
  if (t.length > KEEP) t.shift();
}
