/**
 * The shared status cells of a blocking (sync) job: Int32 status per part, then a fixed text slot
 * per part for an error message (the caller is blocked in Atomics.wait and cannot receive a
 * message, so the worker writes the error where the caller can read it).
 */
export const SIGNAL_PENDING = 0;
export const SIGNAL_OK = 1;
export const SIGNAL_ERROR = 2;
const TEXT_BYTES = 512;

const textOffset = (count: number) => ((count * 4 + 7) & ~7);

export function makeSignal(count: number): SharedArrayBuffer {
  return new SharedArrayBuffer(textOffset(count) + count * TEXT_BYTES);
}

export function writeSignalText(signal: SharedArrayBuffer, count: number, index: number, text: string): void {
  const bytes = new Uint8Array(signal, textOffset(count) + index * TEXT_BYTES, TEXT_BYTES);
  const { written } = new TextEncoder().encodeInto(text.slice(0, TEXT_BYTES / 4), bytes.subarray(2));
  bytes[0] = written & 0xff;
  bytes[1] = written >> 8;
}

export function readSignalText(signal: SharedArrayBuffer, count: number, index: number): string {
  const bytes = new Uint8Array(signal, textOffset(count) + index * TEXT_BYTES, TEXT_BYTES);
  const n = bytes[0]! | (bytes[1]! << 8);
  return new TextDecoder().decode(bytes.slice(2, 2 + n));
}
