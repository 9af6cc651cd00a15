/**
 * Render every teaching plot into docs/plots/<name>.svg (spec/teach/svg.spec.ts checks they are
 * up to date). Usage: npx tsx scripts/render-plots.ts [outDir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOPICS } from '../src/teach/index.js';

async function main() {
  const out = process.argv[2] ?? 'docs/plots';
  mkdirSync(out, { recursive: true });
  for (const topic of TOPICS) {
    const names = Object.keys(topic.plots);
    if (!names.length) continue;
    const data = await topic.compute();
    for (const name of names) {
      const file = join(out, `${name}.svg`);
      writeFileSync(file, topic.plots[name]!(data));
      process.stdout.write(`${file}\n`);
    }
  }
}

void main();
