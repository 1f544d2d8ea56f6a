import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIPPED = new Set(['node_modules', 'cdk.out', '.data', '.git', 'reports', 'out', 'dist']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name)) return [];
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|tsx|mts)$/.test(entry.name) ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1] as string);
}

function resolvesInto(file: string, specifier: string, folder: string): boolean {
  if (!specifier.startsWith('.')) return false;
  const target = path.relative(ROOT, path.resolve(path.dirname(file), specifier));
  return target === folder || target.startsWith(`${folder}${path.sep}`);
}

test('nothing outside stacks/ and bin/ imports stacks/', () => {
  const offenders = sourceFiles(ROOT)
    .filter((file) => !/^(stacks|bin)\//.test(path.relative(ROOT, file)))
    .flatMap((file) =>
      importsOf(file)
        .filter((spec) => resolvesInto(file, spec, 'stacks'))
        .map((spec) => `${path.relative(ROOT, file)} imports ${spec}`),
    );
  expect(offenders).toEqual([]);
});

test('config/ is a leaf: it imports nothing of ours', () => {
  const offenders = sourceFiles(path.join(ROOT, 'config'))
    .filter((file) => !file.endsWith('.test.ts'))
    .flatMap((file) =>
      importsOf(file)
        .filter((spec) => spec.startsWith('.') && !resolvesInto(file, spec, 'config'))
        .map((spec) => `${path.relative(ROOT, file)} imports ${spec}`),
    );
  expect(offenders).toEqual([]);
});
