// defineConformanceSuite in a real spec file: one test per check of the reference (few checks),
// and of a correct kernel that reuses its output buffers: the same checks as the hostile spec
// runs through the CLI and runConformance, which must all pass here too (same verdict).
import { createReference } from '../../src/reference/reference.js';
import { defineConformanceSuite } from '../../src/harness/vitest.js';
import { createIsolatedImplementation } from '../../src/harness/isolate.js';
// @ts-expect-error plain JavaScript
import reusesBuffers from '../fixtures/hostile/reuses-buffers.mjs';

defineConformanceSuite(createReference('keras'), { runs: 2, seed: 1, only: ['bn:agreement', 'bn:edge:m1'], golden: false, title: 'defineConformanceSuite: reference' });

defineConformanceSuite(reusesBuffers, {
  runs: 1,
  seed: 1,
  only: ['bn:normalization:affine:dtype=float32', 'bn:invariance:batch-permutation:dtype=float32', 'bn:running-stats:closed-form:dtype=float32'],
  golden: false,
  title: 'defineConformanceSuite: a kernel that reuses its output buffers',
});

// the same kernel isolated in a worker, as the CLI runs it (closed by the suite's afterAll)
defineConformanceSuite(await createIsolatedImplementation('spec/fixtures/hostile/reuses-buffers.mjs'), {
  runs: 1,
  seed: 1,
  only: ['bn:normalization:affine:dtype=float32', 'bn:invariance:batch-permutation:dtype=float32', 'bn:running-stats:closed-form:dtype=float32'],
  golden: false,
  title: 'defineConformanceSuite: the buffer-reusing kernel in a worker',
});
