import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../tenants/testing/pg.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(ROOT, 'dist');

/** The entry points the image runs; each must start from compiled JavaScript alone. */
const ENTRY_POINTS = ['control-plane', 'cost-guard', 'dr-drill', 'tenant', 'with-heartbeat'] as const;

/** Plain node: no tsx loader, no inherited NODE_OPTIONS, no AWS variables. */
function runtimeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...extra };
}

function compiledFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return compiledFiles(full);
    return entry.name.endsWith('.js') ? [full] : [];
  });
}

let database: TestDatabase;

beforeAll(async () => {
  await run('npm', ['run', 'build'], { cwd: ROOT });
  database = await createTestDatabase('runtime_build');
}, 180_000);

afterAll(async () => {
  await database?.drop();
});

describe('the compiled runtime', () => {
  test.each(ENTRY_POINTS)('node dist/bin/%s.js --help runs without tsx', async (name) => {
    const { stdout } = await run(process.execPath, [path.join(DIST, 'bin', `${name}.js`), '--help'], {
      cwd: ROOT,
      env: runtimeEnv(),
    });
    expect(stdout).toMatch(new RegExp(`^Usage: ${name} `));
  });

  test('no compiled module imports tsx or a TypeScript file', () => {
    for (const file of compiledFiles(DIST)) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/from ['"]tsx|import\(['"]tsx|from ['"][^'"]+\.ts['"]/);
    }
  });

  test('the compiled tenant CLI migrates a fresh catalog from the SQL files the build ships', async () => {
    const { stdout } = await run(process.execPath, [path.join(DIST, 'bin', 'tenant.js'), 'list', '--json'], {
      cwd: ROOT,
      env: runtimeEnv({ DATABASE_URL: database.url }),
    });
    expect(JSON.parse(stdout)).toEqual([]);
  });
});
