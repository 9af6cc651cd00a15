/**
 * The PyTorch (fixtures/pytorch, torch 2.13 CPU) and ONNX (fixtures/onnx, onnx.reference at opset
 * 15) golden fixtures: what they cover, that each framework is within its own bound of the exact
 * answer except where a known issue says otherwise, that they become golden checks under their
 * profile, and that a planted convention bug fails them.
 */
import { describe, expect, it } from 'vitest';
import type { BatchNormImplementation, Profile } from '../../src/contract/contract.js';
import { profiles } from '../../src/contract/profiles.js';
import { createReference } from '../../src/reference/reference.js';
import { assessFixture, goldenCases } from '../../src/checks/golden.js';
import { type Fixture, loadFixtures } from '../../src/fixtures/index.js';
import { planRun, runConformance } from '../../src/harness/runner.js';
import { formatText } from '../../src/harness/format.js';

const loaded = loadFixtures();
const torch = loaded.fixtures.filter((f) => f.source === 'pytorch');
const onnx = loaded.fixtures.filter((f) => f.source === 'onnx');
const tags = (fs: Fixture[]) => new Set(fs.flatMap((f) => f.tags));
const precisions = (fs: Fixture[]) => new Set(fs.map((f) => `${f.dtype}/${f.paramDtype}`));

describe('PyTorch fixtures', () => {
  it('cover the ranks, channels-last memory, multi-step, m = 1 and 2, constant channel, offset 1e4, eps, float64 and mixed half', () => {
    expect(torch.every((f) => f.profileName === 'pytorch')).toBe(true);
    const t = tags(torch);
    for (const tag of ['rank2', 'rank3', 'rank4', 'rank5', 'channels-first', 'memory-format-channels-last', 'multi-step', 'm1', 'm2',
      'constant-channel', 'offset', 'eps-1e-05', 'eps-0.001', 'eps-1', 'momentum-0.1', 'momentum-0', 'momentum-1', 'api-module', 'api-functional']) {
      expect(t, tag).toContain(tag);
    }
    for (const p of ['float32/float32', 'float64/float64', 'float16/float32', 'bfloat16/float32']) expect(precisions(torch), p).toContain(p);
    expect(torch.some((f) => f.dtype === 'float32' && f.data.offsetToSpread === 1e4 && f.axis === f.shape.length - 1)).toBe(true);
    const ops = torch.flatMap((f) => f.steps.map((s) => (s.op === 'backward' ? `backward:${s.request.training}` : s.op)));
    for (const op of ['forwardTrain', 'forwardInfer', 'backward:true', 'backward:false']) expect(ops, op).toContain(op);
    // channels_last is recorded as the memory it is: NHWC / NDHWC row-major, channel axis last
    for (const f of torch.filter((f) => f.tags.includes('memory-format-channels-last'))) {
      expect(f.axis, f.name).toBe(f.shape.length - 1);
      expect(['NHWC', 'NDHWC'], f.name).toContain(f.layout);
      expect(f.generator.settings?.memoryFormat, f.name).toBe('channels_last');
    }
  });

  it('record what torch refuses, with its message (m = 1 in training; half activations with other parameter dtypes)', () => {
    const m1 = torch.find((f) => f.m === 1)!;
    expect(m1.steps.some((s) => s.op === 'forwardTrain')).toBe(false);
    expect(m1.omitted.join('\n')).toMatch(/Expected more than 1 value per channel when training/);
    for (const f of torch.filter((f) => f.dtype === 'float16' || f.dtype === 'bfloat16')) {
      expect(f.omitted.join('\n'), f.name).toMatch(/parameters: torch .* refuses: RuntimeError: mixed dtype \(CPU\)/);
    }
  });

  it("show torch's conventions in the recorded numbers: update fraction, unbiased running variance", () => {
    // momentum 1: the running statistics are the batch's, with the variance times m / (m - 1)
    const f = torch.find((f) => f.momentum === 1 && f.dtype === 'float32')!;
    const s = f.steps.find((s) => s.op === 'forwardTrain')!;
    if (s.op !== 'forwardTrain') throw new Error('unreachable');
    const { mean, variance, runningMean, runningVar } = s.result;
    for (let c = 0; c < mean!.length; c++) {
      expect(runningMean![c]).toBe(mean![c]);
      // float32 results: within a few float32 roundings (2^-24 each) of each other
      expect(Math.abs(runningVar![c]! - (variance![c]! * f.m) / (f.m - 1))).toBeLessThanOrEqual(8 * 2 ** -24 * runningVar![c]!);
    }
    // momentum 0: the running statistics stay where they were
    const z = torch.find((f) => f.momentum === 0)!;
    for (const st of z.steps) {
      if (st.op === 'forwardTrain') expect(Array.from(st.result.runningVar!)).toEqual(Array.from(st.request.runningVar));
    }
  });

  it('torch is within its own bound of the exact answer everywhere except its pure-half CPU path (a known issue)', () => {
    const off = torch.filter((f) => assessFixture(f).some((a) => !a.exact));
    expect(off.map((f) => f.name).sort()).toEqual(torch.filter((f) => f.knownIssues.length).map((f) => f.name).sort());
    for (const f of off) {
      expect(f.paramDtype, f.name).toBe(f.dtype); // pure half only: the mixed path (float32 parameters) is within bound
      expect(f.knownIssues.map((k) => k.id)).toEqual(['torch-cpu-half-statistics-in-half']);
    }
    expect(off.length).toBeGreaterThan(0);
  });
});

describe('ONNX fixtures', () => {
  it('cover inference and training mode at ranks 2-5, float32/float64, float16 and bfloat16 X with float32 statistics', () => {
    expect(onnx.every((f) => f.profileName === 'onnx' && f.axis === 1)).toBe(true);
    const t = tags(onnx);
    for (const tag of ['rank2', 'rank3', 'rank4', 'rank5', 'training-mode-0', 'training-mode-1', 'multi-step', 'm1', 'm2', 'constant-channel', 'offset']) {
      expect(t, tag).toContain(tag);
    }
    for (const p of ['float32/float32', 'float64/float64', 'float16/float32', 'bfloat16/float32']) expect(precisions(onnx), p).toContain(p);
    // no gradient in ONNX: said, not silently missing
    for (const f of onnx) {
      expect(f.steps.some((s) => s.op === 'backward')).toBe(false);
      expect(f.omitted.join('\n'), f.name).toMatch(/no BatchNormalization gradient/);
    }
  });

  it('record eps and momentum as the float32 attribute values the model holds', () => {
    for (const f of onnx) {
      expect(Math.fround(f.eps), f.name).toBe(f.eps);
      expect(Math.fround(f.momentum), f.name).toBe(f.momentum);
    }
    expect(onnx.some((f) => f.dtype === 'float64' && f.eps === Math.fround(1e-5))).toBe(true);
  });

  it("show ONNX's conventions in the recorded numbers: decay momentum, biased variance", () => {
    const f = onnx.find((f) => f.m === 2 && f.dtype === 'float32')!;
    const s = f.steps.find((s) => s.op === 'forwardTrain')!;
    if (s.op !== 'forwardTrain') throw new Error('unreachable');
    const x = s.request.x;
    const C = f.shape[1]!;
    for (let c = 0; c < C; c++) {
      const a = x[c]!;
      const b = x[C + c]!;
      const biased = ((a - b) / 2) ** 2;
      const want = f.momentum * s.request.runningVar[c]! + (1 - f.momentum) * biased;
      // float32 evaluator: a few roundings of the terms
      expect(Math.abs(s.result.runningVar![c]! - want), `channel ${c}`).toBeLessThanOrEqual(16 * 2 ** -24 * (Math.abs(want) + biased));
    }
  });

  it('the evaluator is within its own bound except its half paths (known issues: running statistics in T, half arithmetic)', () => {
    const off = onnx.filter((f) => assessFixture(f).some((a) => !a.exact));
    expect(off.map((f) => f.name).sort()).toEqual(onnx.filter((f) => f.knownIssues.length).map((f) => f.name).sort());
    expect(off.every((f) => f.dtype === 'float16' || f.dtype === 'bfloat16')).toBe(true);
    expect(new Set(off.flatMap((f) => f.knownIssues.map((k) => k.id)))).toContain('onnx-reference-running-stats-in-T');
  });
});

/** The reference computing with `bent` semantics while claiming `claims`: a convention bug. */
const planted = (claims: Profile, bent: Partial<Profile>): BatchNormImplementation => ({
  ...createReference({ ...claims, ...bent, name: `${claims.name}-planted` }),
  name: 'planted',
  profile: claims,
});

async function outcomes(impl: BatchNormImplementation) {
  const out: Array<{ f: Fixture; ok: boolean; basis: string; message: string }> = [];
  for (const c of goldenCases(impl, { fixtures: loaded })) {
    const r = await c.run();
    out.push({ f: c.fixture, ok: r.ok, basis: r.basis, message: r.message });
  }
  return out;
}

/**
 * Fixtures where a running-statistics convention shows: a training step whose momentum moves the
 * statistics, on well-conditioned data (at |mean|/std = 1e4 in float32 the variance's own bound
 * can exceed the m/(m - 1) difference at m = 16: no verdict either way is claimed there).
 */
const trainsWith = (f: Fixture, pred: (momentum: number) => boolean) =>
  f.steps.some((s) => s.op === 'forwardTrain') && pred(f.momentum) && !f.tags.includes('ill-conditioned');

describe('golden checks from the PyTorch and ONNX fixtures', () => {
  it('the reference passes every PyTorch fixture under pytorch and every ONNX fixture under onnx', async () => {
    for (const [name, own] of [['pytorch', torch], ['onnx', onnx]] as const) {
      const res = (await outcomes(createReference(name))).filter((o) => o.f.source === name);
      expect(res.map((o) => o.f.name).sort(), name).toEqual(own.map((f) => f.name).sort());
      for (const o of res) {
        expect(o.ok, `${o.f.name}: ${o.message}`).toBe(true);
        expect(o.basis, o.f.name).toBe(o.f.knownIssues.length ? 'reference' : 'tensorflow');
      }
    }
    // the two profiles' semantics differ: neither replays the other's fixtures
    expect(goldenCases(createReference('pytorch'), { fixtures: loaded }).every((c) => c.fixture.source === 'pytorch')).toBe(true);
    expect(goldenCases(createReference('onnx'), { fixtures: loaded }).some((c) => c.fixture.source === 'pytorch')).toBe(false);
  });

  it('a biased running variance under pytorch fails every PyTorch fixture that trains with momentum > 0', async () => {
    const res = (await outcomes(planted(profiles.pytorch, { runningVar: 'biased' }))).filter((o) => trainsWith(o.f, (mo) => mo > 0));
    expect(res.length).toBeGreaterThanOrEqual(30);
    for (const o of res) {
      expect(o.ok, o.f.name).toBe(false);
      expect(o.message, o.f.name).toMatch(/runningVar/);
    }
  });

  it("the decay convention under pytorch (momentum read as Keras's) fails every PyTorch fixture that trains with momentum != 0.5", async () => {
    const res = (await outcomes(planted(profiles.pytorch, { momentum: 'decay' }))).filter((o) => trainsWith(o.f, (mo) => mo !== 0.5));
    expect(res.length).toBeGreaterThanOrEqual(25);
    for (const o of res) expect(o.ok, `${o.f.name}: ${o.message}`).toBe(false);
  });

  it("an unbiased running variance or torch's momentum under onnx fails the ONNX training fixtures", async () => {
    const unbiased = (await outcomes(planted(profiles.onnx, { runningVar: 'unbiased' }))).filter((o) => o.f.source === 'onnx' && o.f.m > 1 && trainsWith(o.f, (mo) => mo < 1));
    expect(unbiased.length).toBeGreaterThanOrEqual(10);
    for (const o of unbiased) expect(o.ok, `${o.f.name}: ${o.message}`).toBe(false);
    const fraction = (await outcomes(planted(profiles.onnx, { momentum: 'update-fraction' }))).filter((o) => o.f.source === 'onnx' && trainsWith(o.f, (mo) => mo !== 0.5));
    expect(fraction.length).toBeGreaterThanOrEqual(10);
    for (const o of fraction) expect(o.ok, `${o.f.name}: ${o.message}`).toBe(false);
  });

  it('under --profile pytorch the run plans at least 30 golden checks and the report says how many, and says so when none', async () => {
    const ref = createReference('pytorch');
    const plan = planRun(ref, { profile: 'pytorch', only: ['bn:golden'] });
    expect(plan.cases.length).toBeGreaterThanOrEqual(30);
    expect(plan.cases.every((c) => c.def.family === 'golden' && /^bn:golden:torch-/.test(c.def.id))).toBe(true);
    expect(plan.golden).toEqual({ fixtures: plan.cases.length, sources: { pytorch: plan.cases.length } });
    const onnxPlan = planRun(createReference('onnx'), { only: ['bn:golden'] });
    expect(onnxPlan.golden.sources.onnx).toBe(onnx.length);

    const report = await runConformance(ref, { profile: 'pytorch', only: ['bn:golden:torch-m2-nc-float32'], seed: 1 });
    expect(report.golden?.fixtures).toBe(plan.cases.length);
    expect(formatText(report)).toContain(`golden fixtures: ${plan.cases.length} (pytorch ${plan.cases.length})`);

    // the paper profile has no fixture: the report says so instead of staying silent
    const none = planRun(createReference('paper'), {});
    expect(none.golden.fixtures).toBe(0);
    expect(none.golden.note).toMatch(/no golden fixture applies to profile paper.*fixtures exist for profiles .*pytorch/);
    expect(planRun(ref, { golden: false }).golden.note).toMatch(/not replayed/);
  });
});
