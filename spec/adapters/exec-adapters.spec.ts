/**
 * The Python example adapters through --exec (few runs), when Python and the package exist.
 * Python: $BN_PYTHON, else /work/venv-torch/bin/python, else python3.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createExecImplementation } from '../../src/harness/exec.js';
import { runConformance } from '../../src/harness/runner.js';

const candidates = [process.env.BN_PYTHON, '/work/venv-torch/bin/python', 'python3'].filter((p): p is string => !!p && (p === 'python3' || existsSync(p)));
function pythonWith(mod: string): string | undefined {
  for (const py of candidates) {
    try {
      execFileSync(py, ['-c', `import ${mod}`], { stdio: 'ignore', timeout: 30_000 });
      return py;
    } catch {
      // next
    }
  }
  return undefined;
}
const numpyPy = pythonWith('numpy');
const torchPy = pythonWith('torch');

describe('python adapters through --exec', () => {
  it.skipIf(!numpyPy)(`numpy_adapter.py passes agreement, m = 1 and gradients (pytorch profile)${numpyPy ? '' : ' [skipped: no python with numpy]'}`, async () => {
    const impl = await createExecImplementation(`${numpyPy} examples/numpy_adapter.py`);
    try {
      const r = await runConformance(impl, { runs: 3, seed: 5, only: ['bn:agreement', 'bn:edge:m1', 'bn:gradients:analytic-training'], golden: false });
      expect(r.summary.total).toBeGreaterThan(0);
      expect(r.results.filter((x) => x.status === 'fail').map((x) => x.failure?.message)).toEqual([]);
    } finally {
      await impl.close();
    }
  }, 30_000);
  it.skipIf(!torchPy)(`torch_adapter.py: torch refuses m = 1 (an error answer), and passes agreement (float32, float64, mixed half forward)${torchPy ? '' : ' [skipped: no python with torch]'}`, async () => {
    const impl = await createExecImplementation(`${torchPy} examples/torch_adapter.py`);
    try {
      expect(impl.profile).toBe('pytorch');
      // float32 / float64, and mixed float16 / bfloat16 over the wire (torch's pure half and mixed
      // backward are findings, docs/adapters.md)
      expect(impl.precisions).toContainEqual({ dtype: 'bfloat16', paramDtype: 'float32' });
      const r = await runConformance(impl, {
        runs: 2,
        seed: 5,
        only: [
          'bn:agreement:forward-infer:dtype=float32;*',
          'bn:agreement:forward-infer:dtype=float64;*',
          'bn:edge:m1:dtype=float64;*',
          'bn:agreement:forward-train:dtype=float16;params=float32;*',
          'bn:edge:half-running-var-overflow:dtype=bfloat16;params=float32;*',
        ],
        golden: false,
      });
      expect(r.results.filter((x) => x.status === 'fail').map((x) => x.failure?.message)).toEqual([]);
      expect(r.summary.passed).toBeGreaterThan(0);
    } finally {
      await impl.close();
    }
  }, 60_000);
});
