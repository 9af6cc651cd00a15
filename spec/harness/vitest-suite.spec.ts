// defineConformanceSuite in a real spec file: one test per check of the reference (few checks).
import { createReference } from '../../src/reference/reference.js';
import { defineConformanceSuite } from '../../src/harness/vitest.js';

defineConformanceSuite(createReference('keras'), { runs: 2, seed: 1, only: ['bn:agreement', 'bn:edge:m1'], golden: false, title: 'defineConformanceSuite: reference' });
