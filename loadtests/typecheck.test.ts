import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

// The root tsconfig excludes loadtests/, so these two projects are the suites' type check:
// the k6 side with @types/k6 only (no Node globals), and the Node side (gate, bundler, tests).
test.each([
  ['k6 scripts', 'loadtests/tsconfig.json'],
  ['Node side and tests', 'loadtests/tsconfig.node.json'],
])('%s type-check with tsc -p %s', (_label, project) => {
  const run = spawnSync(process.execPath, [TSC, '-p', project, '--noEmit'], { cwd: ROOT, encoding: 'utf8' });
  expect(run.stdout + run.stderr).toBe('');
  expect(run.status).toBe(0);
});
