import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Runs every `bench/*-bench.ts`, one after the other, each in its own process so one's memory and JIT state do
// not colour the next one's figures. `npm run bench -- zip` runs only those whose file name contains "zip".
// Benches print their own figures and set a non-zero exit code when they miss a target.

const benchFolder = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const benches = readdirSync(benchFolder)
  .filter((file) => file.endsWith('-bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

if (benches.length === 0) {
  console.error(`no bench matches ${filters.join(', ')}`);
  process.exit(2);
}

const failed: string[] = [];
for (const bench of benches) {
  console.log(`\n== ${bench}`);
  const result = spawnSync(process.execPath, [join(benchFolder, bench)], { stdio: 'inherit' });
  if (result.status !== 0) failed.push(`${bench} (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
}
if (failed.length > 0) {
  console.error(`\nmissed a target or failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
