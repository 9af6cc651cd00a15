/**
 * The normalization family's teaching topics (which-axes, rms-norm): every fact they print is
 * checked here against an independent float64 computation from the ops' definitions (which
 * values share statistics, written out per op below, not read from src/contract/grouping.ts),
 * and the float16 facts against the format's own limits.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { HALF_FORMATS, roundToHalf } from '../../src/numerics/half.js';
import { num } from '../../src/teach/common.js';
import { explain, renderPlot } from '../../src/teach/index.js';
import { rmsNorm, type RmsNormData } from '../../src/teach/topics/rms-norm.js';
import { whichAxes, type AxesOp, type WhichAxesData } from '../../src/teach/topics/which-axes.js';
import { findAll, hasClass, parseXml } from './xml.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
const meanOf = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

describe('which-axes', () => {
  let d: WhichAxesData;
  beforeAll(() => {
    d = whichAxes.compute() as WhichAxesData;
  });
  const dims = () => {
    const [N, C, H, W] = d.shape;
    return { N, C, S: H * W, G: d.gnGroups };
  };
  /** Each op's group of element (n, c, s), from the ops' definitions. */
  const definition = (op: AxesOp, n: number, c: number): number => {
    const { C, G } = dims();
    return { BN: c, LN: n, RMS: n, IN: n * C + c, GN: n * G + Math.floor(c / (C / G)) }[op];
  };

  it('group counts and sizes per op follow the definitions: BN C × N·H·W, LN/RMS N × C·H·W, IN N·C × H·W, GN N·G × (C/G)·H·W', () => {
    const { N, C, S, G } = dims();
    const expected: Record<AxesOp, [number, number]> = { BN: [C, N * S], LN: [N, C * S], RMS: [N, C * S], IN: [N * C, S], GN: [N * G, (C / G) * S] };
    expect(d.ops.map((o) => o.op)).toEqual(['BN', 'LN', 'IN', 'GN', 'RMS']);
    for (const o of d.ops) {
      expect([o.groups, o.m], o.op).toEqual(expected[o.op]);
      expect(o.members).toHaveLength(o.groups);
      for (const mb of o.members) expect(mb.indices).toHaveLength(o.m);
    }
  });

  it("every element's group is the one its definition names, and each group lists exactly its elements", () => {
    const { N, C, S } = dims();
    for (const o of d.ops) {
      for (let n = 0; n < N; n++)
        for (let c = 0; c < C; c++)
          for (let s = 0; s < S; s++) {
            const i = (n * C + c) * S + s;
            expect(o.groupOf[i], `${o.op} element ${i}`).toBe(definition(o.op, n, c));
          }
      const seen = o.members.flatMap((mb, g) => mb.indices.map((i) => (expect(o.groupOf[i]).toBe(g), i)));
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: N * C * S }, (_, i) => i));
    }
    const slices = Object.fromEntries(d.ops.map((o) => [o.op, o.members.map((mb) => mb.slice)]));
    expect(slices.BN![1]).toBe('x[:, 1, :, :]');
    expect(slices.LN![0]).toBe('x[0, :, :, :]');
    expect(slices.IN![5]).toBe('x[1, 1, :, :]');
    expect(slices.GN![1]).toBe('x[0, 2..3, :, :]');
  });

  it("each group's statistics and every y are the definition's, computed independently in float64", () => {
    for (const o of d.ops) {
      const centred = o.op !== 'RMS';
      o.members.forEach((mb, g) => {
        const v = mb.indices.map((i) => d.x[i]!);
        const mu = meanOf(v);
        const second = centred ? meanOf(v.map((a) => (a - mu) ** 2)) : meanOf(v.map((a) => a * a));
        if (centred) expect(rel(o.mean[g]!, mu), `${o.op} mean ${g}`).toBeLessThan(1e-14);
        else expect(o.mean[g]).toBe(0);
        expect(rel(o.variance[g]!, second), `${o.op} variance ${g}`).toBeLessThan(1e-13);
        for (const i of mb.indices) {
          const want = ((centred ? d.x[i]! - mu : d.x[i]!) / Math.sqrt(second + d.eps));
          expect(Math.abs(o.y[i]! - want), `${o.op} y[${i}]`).toBeLessThan(1e-13 * Math.max(1, Math.abs(want)));
        }
      });
    }
    // BN's channels really differ (a statistic per batch, not per feature, would show)
    const bn = d.ops.find((o) => o.op === 'BN')!;
    expect(new Set(bn.mean.map((v) => v.toFixed(2))).size).toBe(4);
  });

  it("changing sample 1 moves BN's outputs for sample 0 and no one else's; sample 0 alone differs only under BN", () => {
    const per = d.x.length / d.shape[0];
    expect(d.xChanged.slice(0, per)).toEqual(d.x.slice(0, per));
    for (let i = per; i < d.x.length; i++) expect(d.xChanged[i]).not.toBe(d.x[i]);
    for (const o of d.ops) {
      expect(o.dSample1, `${o.op}: sample 1's own outputs change`).toBeGreaterThan(0.1);
      if (o.op === 'BN') {
        expect(o.dSample0).toBeGreaterThan(0.1);
        expect(o.dAlone).toBeGreaterThan(0.1);
        expect(o.y.slice(0, per)).not.toEqual(o.yChanged.slice(0, per));
      } else {
        expect(o.dSample0, o.op).toBe(0);
        expect(o.dAlone, o.op).toBe(0);
        expect(o.yChanged.slice(0, per)).toEqual(o.y.slice(0, per));
      }
    }
    expect(d.lnLastAxis).toEqual({ groups: d.shape[0] * d.shape[1] * d.shape[2], m: d.shape[3] });
  });

  it('the text shows the groupings, the statistics and the contrast; the diagram draws each grouping cell by cell', () => {
    const text = whichAxes.render(d);
    const bn = d.ops.find((o) => o.op === 'BN')!;
    const gn = d.ops.find((o) => o.op === 'GN')!;
    expect(text).toContain('BN: BatchNorm (forwardTrain, channel axis 1): 4 groups of m = 8 values');
    expect(text).toContain('IN: InstanceNorm (instanceNorm, channel axis 1): 8 groups of m = 4 values');
    expect(text).toContain(num(bn.variance[2]!, 5));
    expect(text).toContain(num(gn.mean[3]!, 5));
    expect(text).toMatch(new RegExp(`BN +4 × 8 +${num(bn.dSample0, 4).replace('.', '\\.')} `));
    expect(text).toMatch(/LN +2 × 16 +0 +/);
    expect(text).toContain("Sample 0's outputs move when sample 1 changes: BN;");
    expect(text).toContain('Bit-identical outputs for sample 0 either way: LN, IN, GN, RMS.');
    expect(text).toContain('16 groups of 2');

    const root = parseXml(whichAxes.plots['which-axes-groups']!(d));
    const panels = findAll(root, hasClass('panel'));
    expect(panels).toHaveLength(5);
    panels.forEach((p, k) => {
      const o = d.ops[k]!;
      expect(Number(p.attrs['data-groups'])).toBe(o.groups);
      expect(Number(p.attrs['data-m'])).toBe(o.m);
      const cells = findAll(p, hasClass('cell'));
      expect(cells).toHaveLength(d.x.length);
      for (const c of cells) expect(Number(c.attrs['data-group'])).toBe(definition(o.op, Number(c.attrs['data-n']), Number(c.attrs['data-c'])));
    });
  });
});

describe('rms-norm', () => {
  let d: RmsNormData;
  beforeAll(() => {
    d = rmsNorm.compute() as RmsNormData;
  });
  const rmsRow = (x: number[], eps: number) => {
    const s = Math.sqrt(meanOf(x.map((v) => v * v)) + eps);
    return x.map((v) => v / s);
  };

  it('RMSNorm is not shift-invariant (LayerNorm is), and both are scale-invariant up to eps', () => {
    const s = d.shift;
    const shifted = s.x.map((v) => v + s.t);
    rmsRow(s.x, s.eps).forEach((w, i) => expect(rel(s.rmsBefore[i]!, w)).toBeLessThan(1e-13));
    rmsRow(shifted, s.eps).forEach((w, i) => expect(rel(s.rmsAfter[i]!, w)).toBeLessThan(1e-13));
    const mu = meanOf(s.x);
    const sd = Math.sqrt(meanOf(s.x.map((v) => (v - mu) ** 2)) + s.eps);
    s.x.forEach((v, i) => expect(Math.abs(s.lnAfter[i]! - (v - mu) / sd)).toBeLessThan(1e-13));
    expect(s.dRms).toBeGreaterThan(0.5);
    expect(s.dLn).toBeLessThan(1e-14);
    // scaling by 2 changes y only through eps: |Δy| <= |y| (1 − √((ms + eps)/(4 ms + eps)) · 2) ~ 3/8 · eps/ms · |y|
    const ms = meanOf(s.x.map((v) => v * v));
    expect(s.dScaled).toBeLessThan(Math.max(...s.rmsBefore.map(Math.abs)) * s.eps / ms);
    expect(s.dScaled).toBeGreaterThan(0);
  });

  it('eps conventions: torch finfo eps per dtype (as torch.finfo prints them), Keras 1e-6 / 1e-7, ONNX 1e-5', () => {
    const by = Object.fromEntries(d.conventions.map((c) => [c.label, c.eps]));
    // torch 2.13: torch.finfo(float32 / float16 / bfloat16).eps
    expect(by['torch float32 (eps=None)']).toBe(1.1920928955078125e-7);
    expect(by['torch float16 (eps=None)']).toBe(0.0009765625);
    expect(by['torch bfloat16 (eps=None)']).toBe(0.0078125);
    expect(by['Keras layer']).toBe(1e-6);
    expect(by['keras.ops (epsilon=None)']).toBe(1e-7);
    expect(by.ONNX).toBe(1e-5);
    for (const c of d.conventions) expect(c.source.length).toBeGreaterThan(10);
  });

  it('eps against a small row: the output RMS is √(ms / (ms + eps)), far below 1 for every default', () => {
    const ms = meanOf(d.tiny.x.map((v) => v * v));
    expect(rel(d.tiny.meanSquare, ms)).toBeLessThan(1e-14);
    expect(Math.sqrt(ms)).toBeGreaterThan(5e-5);
    expect(Math.sqrt(ms)).toBeLessThan(2e-4);
    let prev = Infinity;
    for (const r of [...d.tiny.rows].sort((a, b) => a.eps - b.eps)) {
      expect(rel(r.outRms, Math.sqrt(ms / (ms + r.eps))), r.label).toBeLessThan(1e-12);
      rmsRow(d.tiny.x, r.eps).forEach((w, i) => expect(rel(r.y[i]!, w)).toBeLessThan(1e-13));
      expect(r.outRms).toBeLessThan(prev); // larger eps, smaller y
      prev = r.outRms;
    }
    expect(d.tiny.rows[0]!.outRms).toBeCloseTo(1, 12);
    expect(d.tiny.rows.find((r) => r.label === 'ONNX')!.outRms).toBeLessThan(0.05);
    for (const s of d.curve.series) s.outRms.forEach((v, i) => expect(rel(v, Math.sqrt(d.curve.inputRms[i]! ** 2 / (d.curve.inputRms[i]! ** 2 + s.eps)))).toBeLessThan(1e-12));
  });

  it('float16: 256² is the first square to overflow; with float16 squares and sums the RMS is Infinity and y = 0, the exact answer is finite', () => {
    const f16 = HALF_FORMATS.float16;
    expect(d.squareLimit.firstOverflow).toBe(256);
    expect(256 * 256).toBeGreaterThanOrEqual(f16.overflowThreshold);
    expect(d.squareLimit.itsSquare16).toBe(Infinity);
    expect(d.squareLimit.largestFinite).toBe(256 - 2 ** -3); // float16 spacing in [128, 256) is 2^-3
    expect(d.squareLimit.itsSquare).toBeLessThanOrEqual(f16.max);

    for (const [h, name] of [[d.overflowSquare, 'square'], [d.overflowSum, 'sum']] as const) {
      expect(h.meanSquare16, name).toBe(Infinity);
      expect(h.rms16, name).toBe(Infinity);
      for (const y of h.y16) expect(Math.abs(y)).toBe(0); // ±0: x / Infinity
      expect(Number.isFinite(h.exactMeanSquare)).toBe(true);
      const exact = rmsRow(h.x, 1e-5);
      // the reference rounds y once to float16: within half a float16 ulp (2^-11 relative) of exact
      h.yReference.forEach((y, i) => {
        expect(y).toBe(roundToHalf(y, 'float16'));
        expect(rel(y, exact[i]!)).toBeLessThanOrEqual(2 ** -11);
        expect(Math.abs(y)).toBeGreaterThan(0.3);
      });
      // float32 squares and sums: y = the reference's or one float16 ulp (2^-10 relative) from it
      h.y32.forEach((y, i) => expect(rel(y, h.yReference[i]!)).toBeLessThanOrEqual(2 ** -10));
    }
    expect(d.overflowSquare.squares16[0]).toBe(Infinity);
    for (const q of d.overflowSum.squares16) expect(q).toBeLessThanOrEqual(f16.max);
    expect(d.overflowSum.sums16.at(-1)).toBe(Infinity);
  });

  it('long rows: the float16 sum of squares stops growing before it overflows, so y comes out too large', () => {
    const at = (m: number, a: number) => d.long.find((r) => r.m === m && r.a === a)!;
    expect(at(4, 200).meanSquare16).toBe(Infinity);
    expect(at(4, 200).y16[0]).toBe(0);
    // 4096 ones: the float16 sum stops at 2048 (2048 + 1 is a tie, rounded to the even 2048)
    expect(roundToHalf(2048 + 1, 'float16')).toBe(2048);
    expect(at(4096, 1).meanSquare16).toBe(0.5);
    expect(at(4096, 4).meanSquare16).toBeLessThan(16);
    for (const r of d.long.filter((x) => x.m === 4096)) {
      expect(r.y16[0]).toBeGreaterThan(1.4);
      expect(r.yReference[0]).toBe(1);
    }
  });

  it('the text shows the computed numbers', () => {
    const text = rmsNorm.render(d);
    expect(text).toContain(`max |Δy| from the shift: RMSNorm ${num(d.shift.dRms, 4)}`);
    expect(text).toContain('256² rounds to Infinity');
    expect(text).toContain('mean(x²) Infinity, rms Infinity, y = x / rms = [0, 0, 0, 0]');
    expect(text).toContain(num(d.tiny.rows.find((r) => r.label === 'ONNX')!.outRms, 4));
    expect(text).toContain('1.192e-7');
    expect(text).toContain('8192 times larger');
  });
});

describe('CLI: explain which-axes / rms-norm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-family-teach-'));
  const out: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    out.length = 0;
  });
  it('prints the walk-through with its guarding checks, --json the numbers, --svg the plot', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['node', 'bn-conformance', 'explain', 'which-axes'])).toBe(0);
    expect(out.join('')).toContain('Which values share statistics');
    expect(out.join('')).toContain('Guarded by: bn:consistency:batch-statistics:*');
    expect(out.join('')).toContain('ln:invariance:sample-independence:*');
    out.length = 0;
    expect(await main(['node', 'bn-conformance', 'explain', 'rms-norm', '--json'])).toBe(0);
    expect((JSON.parse(out.join('')) as RmsNormData).squareLimit.firstOverflow).toBe(256);
    out.length = 0;
    const file = join(dir, 'groups.svg');
    expect(await main(['node', 'bn-conformance', 'explain', 'which-axes', '--svg', file])).toBe(0);
    expect(findAll(parseXml(readFileSync(file, 'utf8')), hasClass('panel'))).toHaveLength(5);
    expect(await renderPlot('rms-norm')).toContain('RMSNorm: what eps leaves of a small row');
    expect((await explain('rms-norm')).text).toContain('Guarded by: rms:normalization:*');
  });
});
