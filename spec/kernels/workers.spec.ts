/**
 * The worker pool (src/kernels/workers): results come back right and in order, a task that throws
 * fails its call but not the pool, a gang of more threads than cores really runs at once (its
 * barrier would otherwise time out), splitSync blocks until shared memory is written, and a
 * process that used the pool exits by itself.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokenBarrierError, taskRef, WorkerPool } from '../../src/kernels/workers/pool.js';
import * as tasks from './fixtures/pool-tasks.js';

const TASKS = new URL('./fixtures/pool-tasks.ts', import.meta.url).href;
const pool = new WorkerPool({ size: 2 });
afterAll(() => pool.dispose());

function numbers(n: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(8 * n);
  const a = new Float64Array(sab);
  for (let i = 0; i < n; i++) a[i] = i + 1;
  return sab;
}

describe('WorkerPool', () => {
  it('splits one job into parts that run on the workers and returns their results in order', async () => {
    const data = numbers(1000);
    const out = new SharedArrayBuffer(8 * 5);
    const parts = await pool.split<number>(taskRef(TASKS, 'partSum'), { data, out }, 5);
    expect(parts).toEqual([20100, 60100, 100100, 140100, 180100]);
    expect(Array.from(new Float64Array(out))).toEqual(parts);
  });

  it('survives a task that throws: the call rejects with its error, the next call works', async () => {
    await expect(pool.run(taskRef(TASKS, 'fail'), { message: 'on purpose' })).rejects.toMatchObject({ name: 'RangeError', message: 'on purpose' });
    await expect(pool.run(taskRef(TASKS, 'nope'), {})).rejects.toThrow(/no exported function "nope"/);
    expect(await pool.run<number>(taskRef(TASKS, 'partSum'), { data: numbers(10), out: new SharedArrayBuffer(8) })).toBe(55);
  });

  it('splitSync blocks until every part wrote shared memory, part 0 running inline', async () => {
    await pool.warm();
    const data = numbers(1000);
    const out = new SharedArrayBuffer(8 * 3);
    // size 2: two idle workers, so three parts with one inline fit
    expect(pool.splitSync(taskRef(TASKS, 'partSum'), { data, out }, 3, tasks.partSum)).toBe(true);
    expect(Array.from(new Float64Array(out))).toEqual([55945, 167501, 277054]) // 1..334, 335..668, 669..1000;
    expect(() => pool.splitSync(taskRef(TASKS, 'fail'), { message: 'sync failure' }, 2)).toThrow('sync failure');
    // more parts than idle workers: declines, runs nothing
    expect(pool.splitSync(taskRef(TASKS, 'partSum'), { data, out }, 9, tasks.partSum)).toBe(false);
  });

  it('runs a gang of 5 (more than cores) at the same time: the barrier round-trips twice', async () => {
    const k = 5;
    const results = await pool.gang<number[]>(taskRef(TASKS, 'exchange'), { cells: new SharedArrayBuffer(4 * k) }, k);
    const total = (k * (k + 1)) / 2;
    expect(results).toEqual(Array.from({ length: k }, () => [total, 2 * total]));
  });

  it('a gang member that throws breaks the barrier: the gang rejects with that error, not a hang', async () => {
    const gang = pool.gang(taskRef(TASKS, 'gangFail'), {}, 4);
    await expect(gang).rejects.toThrow('member 0 failed');
    await expect(gang).rejects.not.toBeInstanceOf(BrokenBarrierError);
    expect(await pool.run<number>(taskRef(TASKS, 'partSum'), { data: numbers(4), out: new SharedArrayBuffer(8) })).toBe(10);
  });

  it('lets a process that used it exit by itself', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'spec/kernels/fixtures/pool-exit.ts'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('sum 100\n');
  });
});
