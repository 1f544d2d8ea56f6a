// Bundles a suite script and its local imports into one ES module for a ConfigMap:
// ConfigMap keys cannot hold directories, so the k6-operator cannot resolve ../lib imports otherwise.
import path from 'node:path';
import { buildSync } from 'esbuild';
import { scriptPath } from './gate.ts';
import type { SuiteName } from './suites.ts';

/** The suite as one JavaScript module; only `k6` and `k6/*` stay as imports. */
export function bundleSuite(suite: SuiteName): string {
  const entry = scriptPath(suite);
  const result = buildSync({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    external: ['k6', 'k6/*'],
    write: false,
    legalComments: 'none',
    charset: 'utf8',
    banner: { js: `// k6 suite '${suite}', bundled from loadtests/scripts/${path.basename(entry)}` },
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for ${entry}`);
  return file.text;
}
