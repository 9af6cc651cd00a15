/**
 * The float16 / bfloat16 conversions (src/numerics/half.ts), exhaustively against an independent
 * path: every one of the 65,536 bit patterns of each format decoded by numpy / ml_dtypes, and
 * ~200,000 roundings from float64 per format (every midpoint, the float64 values beside it, every
 * value, overflow, random values) whose expected patterns spec/numerics/half_oracle.py computes
 * exactly and cross-checks against numpy float16 and ml_dtypes bfloat16 (one Python call).
 * Python: $BN_PYTHON, else /work/venv-torch/bin/python, else python3, with numpy and ml_dtypes;
 * without one the Python part skips and says so, except where BN_PYTHON is set (CI): then a
 * missing module fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeHalf, encodeHalf, HALF_FORMATS, roundToHalf, type HalfDType } from '../../src/numerics/half.js';
import { toContractRequest } from '../../src/contract/dtypes.js';

const candidates = [process.env.BN_PYTHON, '/work/venv-torch/bin/python', 'python3'].filter((p): p is string => !!p && (p === 'python3' || existsSync(p)));
function pythonWith(mods: string): string | undefined {
  for (const py of candidates) {
    try {
      execFileSync(py, ['-c', `import ${mods}`], { stdio: 'ignore', timeout: 30_000 });
      return py;
    } catch {
      // next
    }
  }
  return undefined;
}
const py = pythonWith('numpy, ml_dtypes');
const required = !!process.env.BN_PYTHON;

interface Oracle {
  versions: Record<string, string>;
  bfloat16_mldtypes_float64_double_rounded: number;
  float16: { decode: string; cases: string; expected: string };
  bfloat16: { decode: string; cases: string; expected: string };
}

const f64 = (b64: string) => {
  const b = Buffer.from(b64, 'base64');
  return new Float64Array(b.buffer, b.byteOffset, b.length / 8);
};
const u16 = (b64: string) => {
  const b = Buffer.from(b64, 'base64');
  return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

describe('float16 / bfloat16 conversions', () => {
  it('has Python with numpy and ml_dtypes where CI provides one (BN_PYTHON)', () => {
    if (required) expect(py, `BN_PYTHON=${process.env.BN_PYTHON} lacks numpy or ml_dtypes`).toBeDefined();
  });

  it.skipIf(!py)(`agrees with numpy float16 and ml_dtypes bfloat16 on all 65,536 patterns and every midpoint${py ? '' : ' [SKIPPED: no python with numpy and ml_dtypes]'}`, () => {
    const oracle = JSON.parse(execFileSync(py!, ['spec/numerics/half_oracle.py'], { maxBuffer: 64 << 20, timeout: 60_000 }).toString()) as Oracle;
    for (const dtype of ['float16', 'bfloat16'] as HalfDType[]) {
      const o = oracle[dtype];
      const decoded = f64(o.decode);
      expect(decoded.length).toBe(65536);
      const badDecode: string[] = [];
      const badRoundTrip: string[] = [];
      for (let bits = 0; bits < 65536; bits++) {
        const v = decodeHalf(bits, dtype);
        if (!(Object.is(v, decoded[bits]) || (Number.isNaN(v) && Number.isNaN(decoded[bits])))) badDecode.push(`0x${bits.toString(16)}: ${v} vs ${decoded[bits]}`);
        // every non-NaN pattern encodes back to itself (-0 included)
        if (!Number.isNaN(v) && encodeHalf(v, dtype) !== bits) badRoundTrip.push(`0x${bits.toString(16)}`);
      }
      expect(badDecode.slice(0, 5), `${dtype} decode`).toEqual([]);
      expect(badRoundTrip.slice(0, 5), `${dtype} round trip`).toEqual([]);
      const cases = f64(o.cases);
      const expected = u16(o.expected);
      expect(cases.length).toBeGreaterThan(190_000);
      const badRound: string[] = [];
      for (let i = 0; i < cases.length; i++) {
        const got = encodeHalf(cases[i]!, dtype);
        if (got !== expected[i]) badRound.push(`${cases[i]} -> 0x${got.toString(16)}, expected 0x${expected[i]!.toString(16)}`);
        // roundToHalf is the value of the encoded pattern
        const r = roundToHalf(cases[i]!, dtype);
        if (!(Object.is(r, decodeHalf(got, dtype)) || Number.isNaN(r))) badRound.push(`roundToHalf(${cases[i]}) = ${r}`);
      }
      expect(badRound.slice(0, 5), `${dtype} rounding from float64`).toEqual([]);
    }
    // the reason bfloat16's expectations are computed exactly: ml_dtypes rounds float64 through float32
    expect(oracle.bfloat16_mldtypes_float64_double_rounded).toBeGreaterThan(0);
  }, 60_000);

  it('rounds from the exact float64 value once, never through float32', () => {
    // 1 + 2^-8 + 2^-30: float32 would round it to the tie 1 + 2^-8, then to even (1)
    expect(roundToHalf(1 + 2 ** -8 + 2 ** -30, 'bfloat16')).toBe(1 + 2 ** -7);
    expect(roundToHalf(1 + 2 ** -8, 'bfloat16')).toBe(1);
    expect(roundToHalf(1 + 3 * 2 ** -8, 'bfloat16')).toBe(1 + 2 ** -6);
    expect(roundToHalf(1 + 2 ** -11 + 2 ** -40, 'float16')).toBe(1 + 2 ** -10);
    expect(roundToHalf(65519.99, 'float16')).toBe(65504);
    expect(roundToHalf(65520, 'float16')).toBe(Infinity);
    expect(roundToHalf(-1e6, 'float16')).toBe(-Infinity);
    expect(roundToHalf(2 ** -25, 'float16')).toBe(0); // a tie with 0: even
    expect(roundToHalf(2 ** -25 + 2 ** -60, 'float16')).toBe(2 ** -24);
    expect(roundToHalf(1e-5, 'float16')).toBe(0.0000100135803222656250); // eps = 1e-5 held in float16
    expect(roundToHalf(1e-8, 'float16')).toBe(0); // eps = 1e-8 is below float16's smallest subnormal / 2
    expect(Object.is(roundToHalf(-1e-42, 'bfloat16'), -0)).toBe(true);
    expect(encodeHalf(NaN, 'float16')).toBe(0x7e00);
    expect(HALF_FORMATS.bfloat16.max).toBe(decodeHalf(0x7f7f, 'bfloat16'));
  });

  it('sends a check\'s numbers as bit patterns, and refuses a value that would need rounding', () => {
    const req = { x: Float64Array.of(1.5, -2, 65504), shape: [3, 1], axis: 1, gamma: Float64Array.of(0.5), beta: Float64Array.of(0), eps: 1e-5, runningMean: Float64Array.of(0), runningVar: Float64Array.of(1e5), momentum: 0.9 };
    const sent = toContractRequest(req, { dtype: 'float16', paramDtype: 'float32' });
    expect(sent.x).toBeInstanceOf(Uint16Array);
    expect(Array.from(sent.x)).toEqual([0x3e00, 0xc000, 0x7bff]);
    expect(sent.runningVar).toBeInstanceOf(Float32Array);
    expect((sent as { dtype?: string }).dtype).toBe('float16');
    // 0.1 is no float32 value, 1e5 no float16 value: a check that built them has a bug, never silently rounded
    expect(() => toContractRequest({ ...req, gamma: Float64Array.of(0.1) }, { dtype: 'float16', paramDtype: 'float32' })).toThrow(/gamma\[0\] = 0.1 is not a float32 value/);
    expect(() => toContractRequest(req, { dtype: 'float16', paramDtype: 'float16' })).toThrow(/runningVar\[0\] = 100000 is not a float16 value/);
  });
});
