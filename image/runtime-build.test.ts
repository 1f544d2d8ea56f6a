import { execFile, spawn } from 'node:child_process';
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
const ENTRY_POINTS = [
  'billing',
  'control-plane',
  'cost-guard',
  'db-watchdog',
  'dr-drill',
  'synth-k8s',
  'tenant',
  'with-heartbeat',
] as const;

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

/** Package name of a bare import specifier (`@scope/name/sub` -> `@scope/name`), or undefined for node: and paths. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('node:') || specifier.startsWith('/'))
    return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

describe('what the image needs', () => {
  test('every package a compiled module imports is a production dependency, so npm ci --omit=dev suffices', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const imported = new Set<string>();
    for (const file of compiledFiles(DIST)) {
      const text = readFileSync(file, 'utf8');
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]!);
      for (const specifier of specifiers) {
        const name = packageOf(specifier);
        if (name) imported.add(name);
      }
    }
    expect([...imported]).toEqual(expect.arrayContaining(['fastify', 'pg', 'cdk8s-plus-28', 'commander']));
    // manifest-validation.ts loads kubernetes-models by computed path, which no import statement shows.
    imported.add('kubernetes-models');
    expect([...imported].filter((name) => !(name in pkg.dependencies))).toEqual([]);
  });

  test('the compiled synth-k8s renders the self-hosted package from values on stdin, as YAML on stdout', async () => {
    const child = spawn(
      process.execPath,
      [
        path.join(DIST, 'bin', 'synth-k8s.js'),
        '--target',
        'self-hosted',
        '--env',
        'prod',
        '--values',
        '-',
        '--out',
        '-',
      ],
      { cwd: '/', env: runtimeEnv() },
    );
    child.stdin.end(
      'image: registry.example.com/agent-platform:1.0.0\ndomain: agents.customer.example\ndataNetworkCidr: 10.50.0.0/16\ntlsSecretName: agent-platform-tls\n',
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const kinds = stdout.split(/^---$/m).map((doc) => /^kind: (\w+)$/m.exec(doc)?.[1]);
    expect(kinds).toEqual(expect.arrayContaining(['Namespace', 'Deployment', 'Ingress', 'NetworkPolicy']));
    expect(stdout).not.toMatch(/amazonaws|arn:aws|CronJob/);
  });
});
