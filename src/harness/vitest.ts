/**
 * vitest integration: one vitest test per conformance check, in the user's own spec file.
 *
 *   // bn.spec.ts
 *   import { defineConformanceSuite } from 'bn-conformance/vitest';
 *   import impl from './my-bn.js';
 *   defineConformanceSuite(impl, { seed: 1, runs: 25 });
 *
 * The whole run happens once (in beforeAll); each check is then an `it` that fails with the
 * report's failure block (formatFailure) as its message, and a skipped or not-supported check is
 * an `it.skip` whose title carries the reason. An inconclusive check (nothing it compared had an
 * informative bound) fails its test, as it fails the CLI's run, unless `allowInconclusive` is set
 * (then it is skipped, saying so: it proved nothing). A run that checks nothing at all fails
 * (runConformance's UsageError). vitest is a peer dependency of this entry point.
 *
 * Time limits: every call's synchronous part runs under the in-process watchdog (a synchronous
 * busy loop becomes a `timeout` failure, src/harness/call.ts). For the full guarantee (a busy
 * loop after an await, native code, process.exit), isolate the module in a worker:
 *
 *   defineConformanceSuite(await createIsolatedImplementation('./src/my-bn.js'), { seed: 1 });
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { BatchNormImplementation } from '../contract/contract.js';
import { formatFailure } from './format.js';
import { planRun, runConformance, type ConformanceOptions } from './runner.js';
import type { ConformanceReport } from './types.js';

export interface SuiteOptions extends ConformanceOptions {
  /** The describe block's title; default "bn-conformance: <implementation name>". */
  title?: string;
  /** Time limit for the whole run (the beforeAll hook), ms. Default 600 000. */
  runTimeoutMs?: number;
}

export function defineConformanceSuite(impl: BatchNormImplementation, options: SuiteOptions = {}): void {
  const { title, runTimeoutMs, ...conf } = options;
  // the check IDs are known without running anything, so vitest can list one test per check
  // (golden cases share one test below); a filter that matches nothing throws here, as in the CLI
  const ids = planRun(impl, conf).cases.filter((c) => c.def.family !== 'golden').map((c) => c.def.id);
  describe(title ?? `bn-conformance: ${impl.name}`, () => {
    // an isolated implementation (createIsolatedImplementation) is closed with the suite
    afterAll(async () => {
      await (impl as { close?: () => Promise<void> }).close?.();
    });
    let report: ConformanceReport | undefined;
    let runError: unknown;
    beforeAll(async () => {
      try {
        report = await runConformance(impl, conf);
      } catch (e) {
        runError = e;
      }
    }, runTimeoutMs ?? 600_000);

    const byId = () => new Map((report?.results ?? []).map((r) => [r.id, r]));
    for (const id of ids) {
      it(id, (ctx) => {
        if (runError) throw runError instanceof Error ? runError : new Error(String(runError));
        const r = byId().get(id);
        if (!r) throw new Error(`${id} was planned but the run did not report it`);
        if (r.status === 'skipped' || r.status === 'not-supported') {
          ctx.skip(`${r.status}: ${r.reason ?? ''}`);
          return;
        }
        if (r.status === 'fail') throw new Error(formatFailure(r));
        if (r.status === 'inconclusive') {
          const n = r.comparisons ? ` (${r.comparisons.inconclusive} of ${r.comparisons.values} values had no informative bound)` : '';
          const what = `inconclusive: ${id} ran, nothing failed, but nothing it compared could be bounded${n}, so it proved nothing`;
          if (conf.allowInconclusive) return ctx.skip(`${what}; allowed by allowInconclusive`);
          throw new Error(`${what}; pass allowInconclusive: true to accept that`);
        }
      });
    }
    // nothing planned: one test that carries the run's verdict (a UsageError: nothing was checked)
    if (ids.length === 0 && conf.golden === false) {
      it('bn-conformance run', () => {
        if (runError) throw runError instanceof Error ? runError : new Error(String(runError));
      });
    }
    // golden fixtures are planned by the runner itself: one test for all of them
    if (conf.golden !== false) {
      it('bn:golden (TensorFlow fixtures)', (ctx) => {
        if (runError) throw runError instanceof Error ? runError : new Error(String(runError));
        const golden = (report?.results ?? []).filter((r) => r.family === 'golden');
        if (!golden.length) return ctx.skip('no golden fixture applies to this implementation and profile');
        const failed = golden.filter((r) => r.status === 'fail');
        if (failed.length) throw new Error(failed.map((r) => formatFailure(r)).join('\n\n'));
        const vague = golden.filter((r) => r.status === 'inconclusive');
        if (vague.length && !conf.allowInconclusive) throw new Error(`inconclusive (no informative bound; pass allowInconclusive: true to accept): ${vague.map((r) => r.id).join(', ')}`);
      });
    }
  });
}
