/**
 * A reusable barrier over a SharedArrayBuffer, for threads that must meet (a gang's replicas
 * exchanging partial sums). Pass `barrier.buffer` to the other threads (postMessage shares a
 * SharedArrayBuffer) and rebuild it there with `new Barrier(buffer)`.
 *
 * Layout (Int32): [0] arrivals in this generation, [1] generation, [2] broken flag, [3] parties.
 * The last thread to arrive resets the count, bumps the generation and wakes the others, so the
 * same barrier serves any number of rounds. `break()` (called by the pool when a gang member
 * throws) wakes every waiter with BrokenBarrierError instead of leaving it blocked forever.
 */

const ARRIVED = 0;
const GENERATION = 1;
const BROKEN = 2;
const PARTIES = 3;

export class BrokenBarrierError extends Error {
  override name = 'BrokenBarrierError';
}

export class Barrier {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;

  /** `new Barrier(parties)` makes one; `new Barrier(buffer)` opens an existing one in another thread. */
  constructor(partiesOrBuffer: number | SharedArrayBuffer) {
    if (typeof partiesOrBuffer === 'number') {
      if (!Number.isInteger(partiesOrBuffer) || partiesOrBuffer < 1) throw new RangeError(`barrier parties must be a positive integer, got ${partiesOrBuffer}`);
      this.buffer = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
      this.cells = new Int32Array(this.buffer);
      this.cells[PARTIES] = partiesOrBuffer;
    } else {
      this.buffer = partiesOrBuffer;
      this.cells = new Int32Array(this.buffer);
    }
  }

  get parties(): number {
    return Atomics.load(this.cells, PARTIES);
  }

  get broken(): boolean {
    return Atomics.load(this.cells, BROKEN) !== 0;
  }

  /**
   * Block until all parties have called wait() in this round. Returns true in exactly one thread
   * per round (the last to arrive), which may then do the round's serial work. Throws
   * BrokenBarrierError if the barrier is (or becomes) broken, or when timeoutMs passes (the
   * barrier is then broken for everyone: a party that never comes would otherwise hang the rest).
   */
  wait(timeoutMs = Infinity): boolean {
    const c = this.cells;
    if (Atomics.load(c, BROKEN)) throw new BrokenBarrierError('barrier is broken (a party failed)');
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.add(c, ARRIVED, 1) === Atomics.load(c, PARTIES) - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return true;
    }
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(c, GENERATION) === generation) {
      if (Atomics.load(c, BROKEN)) throw new BrokenBarrierError('barrier is broken (a party failed)');
      const left = deadline - Date.now();
      if (left <= 0) {
        this.break();
        throw new BrokenBarrierError(`barrier wait timed out after ${timeoutMs} ms`);
      }
      Atomics.wait(c, GENERATION, generation, Math.min(left, 1000));
    }
    return false;
  }

  /** Mark the barrier broken and wake every waiter (they throw BrokenBarrierError). */
  break(): void {
    Atomics.store(this.cells, BROKEN, 1);
    Atomics.notify(this.cells, GENERATION);
  }
}
