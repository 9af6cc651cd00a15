import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planCases } from '../../src/checks/index.js';
import { goldenCases } from '../../src/checks/golden.js';
import { idMatcher } from '../../src/harness/runner.js';
import { createReference } from '../../src/reference/reference.js';
import { plotIndex, TOPICS } from '../../src/teach/index.js';

const doc = readFileSync('docs/edge-cases.md', 'utf8');
const ref = createReference('keras');
const ids = [...planCases(ref).map((c) => c.def.id), ...goldenCases(ref).map((c) => c.id)];

describe('docs/edge-cases.md', () => {
  it('links every topic to its explain command, its plots and its checks', () => {
    for (const t of TOPICS) {
      expect(doc).toContain(`bn-conformance explain ${t.id}\``);
      for (const p of Object.keys(t.plots)) expect(doc).toContain(`(plots/${p}.svg)`);
      for (const c of t.checks) expect(doc).toContain(`\`${c}\``);
    }
    expect(plotIndex().length).toBeGreaterThanOrEqual(6);
  });
  it('every check ID or pattern it names (and every topic names) exists', () => {
    const named = [...doc.matchAll(/`((?:bn|ln|rms|gn|in):[^`\s]+)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(20);
    for (const pattern of [...named, ...TOPICS.flatMap((t) => t.checks)]) {
      const prefix = pattern.slice(0, pattern.indexOf(':'));
      // The normalization family's checks (ln:, rms:, gn:, in:) land after the topics that name them
      // (which-axes, rms-norm): while a prefix has no planned check, its patterns must name one of
      // the family's check families; once it has one, they must match planned IDs like bn:'s.
      if (prefix !== 'bn' && !ids.some((id) => id.startsWith(`${prefix}:`))) expect(pattern).toMatch(/^(ln|rms|gn|in):(normalization|invariance|agreement|gradients|edge|identities):/);
      else expect(ids.some(idMatcher(pattern)), pattern).toBe(true);
    }
  });
});
