/**
 * The package's entry points (package.json "exports") lead to modules that exist and export what
 * docs/api.md (the API the README links) promises from them: a user's import fails at install time otherwise,
 * where no other test looks. dist/ is built from src/ one to one (tsconfig.build.json), so each
 * entry is checked on its source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, string | { types: string; import: string }> };
const sourceOf = (dist: string) => dist.replace(/^\.\/dist\//, '../src/').replace(/\.js$/, '.ts');

/** Names each entry must export (docs/api.md). */
const PROMISED: Record<string, string[]> = {
  '.': ['createCpuF32', 'prewarmCpuF32Threads', 'runConformance', 'createReference', 'oracleForwardTrain', 'toFloat16Bits', 'fromFloat16Bits', 'toBfloat16Bits', 'fromBfloat16Bits'],
  './cpu-f32': ['createCpuF32', 'prewarmCpuF32Threads'],
  './vitest': ['defineConformanceSuite'],
  './half': ['toFloat16Bits', 'fromFloat16Bits', 'toBfloat16Bits', 'fromBfloat16Bits'],
};

describe('package entry points', () => {
  const entries = Object.entries(pkg.exports).filter(([k]) => k !== './package.json');
  it('every entry is promised here (a new one needs its names listed)', () => {
    expect(entries.map(([k]) => k).sort()).toEqual(Object.keys(PROMISED).sort());
  });
  it.each(entries)('%s leads to a module with its promised exports', async (name, target) => {
    const { types, import: js } = typeof target === 'string' ? { types: target.replace(/\.js$/, '.d.ts'), import: target } : target;
    expect(types.replace(/\.d\.ts$/, '.js'), 'types beside the module').toBe(js);
    const source = new URL(sourceOf(js), import.meta.url);
    expect(existsSync(source), `${source.pathname} exists`).toBe(true);
    const mod = (await import(source.href)) as Record<string, unknown>;
    for (const n of PROMISED[name]!) expect(typeof mod[n], `${name} exports ${n}`).toBe('function');
  });
});
