import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSyncFixtures } from '../../src/fixtures/sync-fixtures.js';
import type { BatchNormImplementation, ForwardTrainRequest } from '../../src/contract/contract.js';
import { FixtureError } from '../../src/contract/errors.js';
import { profiles } from '../../src/contract/profiles.js';
import { createReference } from '../../src/reference/reference.js';
import { assessFixture, fixtureApplies, goldenCases, profilesEquivalent } from '../../src/checks/golden.js';
import {
  defaultFixturesDir,
  type Fixture,
  FixtureFileError,
  loadFixtures,
  manifestText,
  sha256Hex,
  stringifyFixture,
} from '../../src/fixtures/index.js';
import { f32Train as f32ForwardTrain } from '../../src/teach/f32-kernel.js';
import { FAMILY_FIXTURE_SOURCES } from '../../src/fixtures/format.js';

const loaded = loadFixtures();
const all = loaded.fixtures;
const tf = all.filter((f) => f.source === 'tensorflow');
const tfjs = all.filter((f) => f.source === 'tfjs');

describe('committed fixtures', () => {
  it('verify against the manifest and the schema, from the package fixtures/ directory', () => {
    expect(loaded.dir).toBe(defaultFixturesDir());
    expect(loaded.dir.endsWith('fixtures')).toBe(true);
    expect(tf.length).toBeGreaterThanOrEqual(60);
    expect(tfjs.length).toBeGreaterThanOrEqual(30);
    const manifest = JSON.parse(readFileSync(join(loaded.dir, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
    // synchronized cases (keras-sync/) are in the manifest too, parsed by loadSyncFixtures; the
    // normalization family's (keras-family/, tfjs-family/) by spec/golden/family-fixtures.spec.ts
    const family = Object.keys(manifest.files).filter((f) => FAMILY_FIXTURE_SOURCES.includes(f.split('/')[0] as never)).length;
    expect(Object.keys(manifest.files).length).toBe(all.length + loadSyncFixtures(loaded.dir).length + family);
    for (const f of all) expect(f.sha256).toBe(manifest.files[f.file]);
  });

  it('cover the issue list: layouts, ranks 2-5, m = 1 and 2, constant channel, eps 1e-5..1, offset 1e4, float64, momenta', () => {
    const tags = (fs: Fixture[]) => new Set(fs.flatMap((f) => f.tags));
    const t = tags(tf);
    for (const tag of ['channels-last', 'channels-first', 'rank2', 'rank3', 'rank4', 'rank5', 'm1', 'm2', 'constant-channel', 'eps-1e-05', 'eps-1', 'momentum-0', 'momentum-0.5', 'momentum-0.99', 'multi-step', 'api-keras', 'api-moments', 'api-fused']) {
      expect(t, tag).toContain(tag);
    }
    expect(tf.some((f) => f.dtype === 'float32' && f.data.offsetToSpread === 1e4)).toBe(true);
    expect(tf.some((f) => f.dtype === 'float64')).toBe(true);
    expect(tf.some((f) => f.profileName === 'tensorflow-fused')).toBe(true);
    const j = tags(tfjs);
    for (const tag of ['api-layers', 'api-moments', 'm1', 'm2', 'constant-channel', 'ill-conditioned', 'momentum-0', 'momentum-0.5', 'momentum-0.99']) expect(j, tag).toContain(tag);
    for (const f of all) {
      expect(f.generator.packages, f.name).toBeTypeOf('object');
      expect(Object.keys(f.api).length, f.name).toBeGreaterThan(0);
    }
  });

  it('replay as contract requests with typed arrays of the fixture dtype', () => {
    for (const f of all) {
      const ctor = f.dtype === 'float32' ? Float32Array : Float64Array;
      for (const s of f.steps) {
        expect(s.request.x).toBeInstanceOf(ctor);
        expect(s.request.shape).toEqual(f.shape);
        expect(s.request.axis).toBe(f.axis);
      }
      // Multi-step cases chain: the state after step k is the state before step k+1.
      const train = f.steps.filter((s) => s.op === 'forwardTrain');
      for (let k = 0; k + 1 < train.length; k++) {
        const after = train[k]!.result.runningMean;
        if (after) expect(Array.from(train[k + 1]!.request.runningMean)).toEqual(Array.from(after));
      }
    }
  });
});

describe('TensorFlow against the exact answer', () => {
  it('every TensorFlow fixture is within its own float32/float64 bound of the reference', () => {
    for (const f of tf) {
      for (const a of assessFixture(f)) expect(a.exact, `${f.name} step ${a.step} ${a.op} ${JSON.stringify(a.ratios)}`).toBe(true);
    }
  });

  it('TF.js channels-first fixtures are detected as off the exact answer (tfjs#1106), and only they', () => {
    for (const f of tfjs) {
      const off = assessFixture(f).some((a) => !a.exact);
      expect(off, f.name).toBe(f.knownIssues.length > 0);
    }
    expect(tfjs.filter((f) => f.knownIssues.length > 0).length).toBeGreaterThanOrEqual(2);
  });
});

describe('golden checks', () => {
  it('the reference passes every TensorFlow and TF.js fixture under the matching profile', async () => {
    // PyTorch and ONNX fixtures: spec/golden/pytorch-onnx.spec.ts
    let covered = 0;
    for (const name of ['keras', 'tfjs', 'tensorflow-fused'] as const) {
      const cases = goldenCases(createReference(name), { fixtures: loaded }).filter((c) => c.fixture.source === 'tensorflow' || c.fixture.source === 'tfjs');
      covered += name === 'tfjs' ? 0 : cases.length;
      for (const c of cases) {
        expect(c.id).toBe(`bn:golden:${c.fixture.name}`);
        const r = await c.run();
        expect(r.ok, `${c.id}: ${r.message}`).toBe(true);
        expect(r.basis).toBe(c.fixture.knownIssues.length ? 'reference' : 'tensorflow');
        if (r.basis === 'reference') expect(r.message).toMatch(/off the exact answer.*compared with the exact answer/);
      }
    }
    expect(covered).toBe(tf.length + tfjs.length);
  });

  it('selects fixtures by resolved profile semantics, dtype and axis', () => {
    expect(profilesEquivalent(profiles.keras, { ...profiles.keras, name: 'my-keras' })).toBe(true);
    expect(profilesEquivalent(profiles.keras, profiles['tensorflow-fused'])).toBe(false);
    const ids = (impl: BatchNormImplementation) => goldenCases(impl, { fixtures: loaded }).map((c) => c.fixture);
    const custom = ids({ ...createReference('keras'), profile: { ...profiles.keras, name: 'custom' } });
    expect(custom.length).toBe(all.filter((f) => f.profile.runningVar === 'biased').length);
    expect(new Set(ids(createReference('pytorch')).map((f) => f.source))).toEqual(new Set(['pytorch']));
    // (0.3.0: precisions imply their dtypes, so narrowing to float32 names the precision too)
    const f32Last = ids({ ...createReference('keras'), dtypes: ['float32'], precisions: [{ dtype: 'float32', paramDtype: 'float32' }], axes: 'last' });
    expect(f32Last.length).toBeGreaterThan(0);
    expect(f32Last.every((f) => f.dtype === 'float32' && f.axis === f.shape.length - 1)).toBe(true);
    const first = tf.find((f) => f.axis === 1 && f.shape.length > 2 && f.profileName === 'keras')!;
    expect(fixtureApplies({ ...createReference('keras'), axes: 'first' }, first)).toBe(true);
    expect(fixtureApplies({ ...createReference('keras'), axes: 'last' }, first)).toBe(false);
  });

  it('fails a wrong implementation with a message that names step, output and bound', async () => {
    const ref = createReference('keras');
    const broken: BatchNormImplementation = {
      ...ref,
      name: 'off-by-eps',
      forwardTrain: async (req) => {
        const r = await ref.forwardTrain!(req);
        r.y[0] = r.y[0]! + 1e-3;
        return r;
      },
    };
    const c = goldenCases(broken, { fixtures: loaded }).find((c) => c.fixture.name === 'tf-keras-nc-float32')!;
    const r = await c.run();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/step 0 forwardTrain y\[0\].*allowed/);
    expect(r.worst?.output).toBe('y');
  });

  it('rejects the one-pass float32 variance at |mean|/std = 1e4 and accepts two-pass', async () => {
    const mk = (variant: 'one-pass' | 'two-pass'): BatchNormImplementation => ({
      name: variant,
      profile: 'keras',
      dtypes: ['float32'],
      accumulation: { dtype: 'float32', order: 'sequential' },
      forwardTrain: (req: ForwardTrainRequest) => f32ForwardTrain(profiles.keras, req, variant),
    });
    const run = async (impl: BatchNormImplementation) => {
      const c = goldenCases(impl, { fixtures: loaded }).find((c) => c.fixture.name === 'tf-keras-offset1e4-float32')!;
      return c.run();
    };
    const one = await run(mk('one-pass'));
    expect(one.ok).toBe(false);
    expect(one.unsupported).toEqual(['forwardInfer', 'backward']);
    expect(one.message).toMatch(/not supported by the implementation, not checked: forwardInfer, backward/);
    const two = await run(mk('two-pass'));
    expect(two.ok, two.message).toBe(true);
  });

  it('reports a throwing implementation as a failure, and does not let it modify the fixture', async () => {
    const ref = createReference('keras');
    const f = tf.find((f) => f.name === 'tf-keras-nc-float32')!;
    const before = Float32Array.from(f.steps[0]!.request.x);
    const vandal: BatchNormImplementation = {
      ...ref,
      forwardTrain: (req) => {
        req.x.fill(0);
        throw new Error('boom');
      },
    };
    const r = await goldenCases(vandal, { fixtures: [f] })[0]!.run();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/step 0 forwardTrain threw: boom/);
    expect(Array.from(f.steps[0]!.request.x)).toEqual(Array.from(before));
  });
});

describe('tamper detection (temp copies)', () => {
  let tmp: string | undefined;
  afterEach(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    tmp = undefined;
  });
  const copy = () => {
    tmp = mkdtempSync(join(tmpdir(), 'bn-fixtures-'));
    cpSync(loaded.dir, tmp, { recursive: true });
    return tmp;
  };
  const FILE = 'tensorflow/tf-keras-nc-float32.json';
  /** Rewrite one file and fix its manifest entry, so the schema (not the checksum) is what is tested. */
  const rewrite = (dir: string, file: string, text: string) => {
    writeFileSync(join(dir, file), text);
    const mpath = join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(mpath, 'utf8')) as { files: Record<string, string> };
    m.files[file] = sha256Hex(text);
    writeFileSync(mpath, manifestText(m.files));
  };
  const expectError = (dir: string, re: RegExp, field?: string) => {
    let err: unknown;
    try {
      loadFixtures(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FixtureError);
    expect(err).toBeInstanceOf(FixtureFileError);
    expect((err as Error).message).toMatch(re);
    if (field) expect((err as FixtureFileError).field).toBe(field);
    return err as FixtureFileError;
  };

  it('a temp copy loads as-is', () => {
    expect(loadFixtures(copy()).fixtures.length).toBe(all.length);
  });

  it('one changed byte: sha256 mismatch naming the file', () => {
    const dir = copy();
    const p = join(dir, FILE);
    const bytes = readFileSync(p);
    const at = bytes.indexOf('"x": [') + 8;
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
    writeFileSync(p, bytes);
    const e = expectError(dir, /tf-keras-nc-float32\.json: field \(sha256\): expected sha256 [0-9a-f]{64}/, '(sha256)');
    expect(e.file).toBe(FILE);
  });

  it('malformed JSON', () => {
    const dir = copy();
    rewrite(dir, FILE, readFileSync(join(dir, FILE), 'utf8').slice(0, 500));
    expectError(dir, /tf-keras-nc-float32\.json: field \(document\): expected valid JSON/, '(document)');
  });

  it('a missing field', () => {
    const dir = copy();
    const doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as { steps: Array<{ request: Record<string, unknown> }> };
    delete doc.steps[1]!.request.gamma;
    rewrite(dir, FILE, stringifyFixture(doc));
    expectError(dir, /field steps\[1\]\.request\.gamma: expected an array of 3 numbers.*got nothing \(field missing\)/, 'steps[1].request.gamma');
  });

  it('a wrong length', () => {
    const dir = copy();
    const doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as { steps: Array<{ result: Record<string, number[]> }> };
    doc.steps[0]!.result.y!.pop();
    rewrite(dir, FILE, stringifyFixture(doc));
    expectError(dir, /field steps\[0\]\.result\.y: expected an array of 18 numbers \(length 18\), got an array of length 17/, 'steps[0].result.y');
  });

  it('a float32 value that is not a float32', () => {
    const dir = copy();
    const doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as { steps: Array<{ request: Record<string, number[]> }> };
    doc.steps[0]!.request.x![2] = 0.1;
    rewrite(dir, FILE, stringifyFixture(doc));
    expectError(dir, /field steps\[0\]\.request\.x\[2\]: expected a float32 value written as its exact double, got 0\.1/);
  });

  it('a wrong format, profile, and a file missing from the manifest', () => {
    let dir = copy();
    let doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Record<string, unknown>;
    doc.profile = 'caffe';
    rewrite(dir, FILE, stringifyFixture(doc));
    expectError(dir, /field profile: expected one of keras/, 'profile');
    rmSync(dir, { recursive: true, force: true });
    dir = copy();
    writeFileSync(join(dir, 'tfjs', 'extra.json'), '{}');
    expectError(dir, /tfjs\/extra\.json: field \(manifest\)/, '(manifest)');
    rmSync(dir, { recursive: true, force: true });
    dir = copy();
    doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Record<string, unknown>;
    doc.format = 'something/2';
    rewrite(dir, FILE, stringifyFixture(doc));
    expectError(dir, /field format: expected "bn-conformance-fixture\/1"/, 'format');
  });

  it('a deleted file and a broken manifest', () => {
    const dir = copy();
    rmSync(join(dir, FILE));
    expectError(dir, /tf-keras-nc-float32\.json: field \(file\)/, '(file)');
    writeFileSync(join(dir, 'manifest.json'), '{"format":"bn-conformance-manifest/1","algorithm":"md5","files":{}}');
    expectError(dir, /manifest\.json: field algorithm: expected "sha256"/, 'algorithm');
    expect(() => loadFixtures(join(dir, 'nope'))).toThrow(FixtureFileError);
  });
});

describe('deterministic writer', () => {
  it('re-serializing a committed file reproduces its bytes (TF.js files are written by this writer)', () => {
    for (const f of tfjs.slice(0, 5)) {
      const text = readFileSync(join(loaded.dir, f.file), 'utf8');
      expect(stringifyFixture(JSON.parse(text))).toBe(text);
    }
  });
  it('the manifest text is what both exporters write', () => {
    const text = readFileSync(join(loaded.dir, 'manifest.json'), 'utf8');
    const m = JSON.parse(text) as { files: Record<string, string> };
    expect(manifestText(m.files)).toBe(text);
  });
  it('refuses NaN', () => {
    expect(() => stringifyFixture({ a: [1, NaN] })).toThrow(/NaN/);
  });
});
