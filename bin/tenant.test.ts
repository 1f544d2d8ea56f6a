import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createProvisioningFixture,
  footprint,
  type ProvisioningFixture,
} from '../tenants/provisioning-fixture.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let fx: ProvisioningFixture;

function cli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'bin/tenant.ts'),
        '--no-aws',
        '--manifests-dir',
        fx.manifestsDir,
        ...args,
      ],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: fx.database.url, LOG_LEVEL: 'silent', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  fx = await createProvisioningFixture('cli');
});

afterAll(async () => {
  await fx?.close();
});

describe('bad input: one line on stderr, exit 1, nothing changed', () => {
  test.each([
    [
      ['create', 'Acme', '--tier', 'pro'],
      {},
      'error: invalid tenant id "Acme": must start with a lowercase letter',
    ],
    [
      ['create', 'acme-cli', '--tier', 'gold'],
      {},
      "error: unknown tier 'gold': expected one of free, starter, pro, enterprise",
    ],
    [
      ['create', 'acme-cli', '--tier', 'pro'],
      { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none' },
      'error: PostgreSQL unreachable at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1',
    ],
    [
      ['move', 'acme-cli', '--to', 'cell-9', '--yes'],
      {},
      "error: unknown cell 'cell-9': the env config lists cell-1",
    ],
    [['move', 'nobody-here', '--to', 'cell-1', '--yes'], {}, "error: tenant 'nobody-here' does not exist"],
    [
      ['create', 'acme-cli', '--tier', 'pro'],
      { CELL_DATABASE_URLS: 'cell-1=postgresql://postgres@127.0.0.1:1/gone' },
      "error: cell 'cell-1' (127.0.0.1:1/gone) cannot be opened: connect ECONNREFUSED 127.0.0.1:1",
    ],
  ])('%j', async (args, env, line) => {
    const before = await footprint(fx.pool, ['Acme', 'acme-cli'], fx.cell);
    const result = await cli(args, env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(line);
    expect(result.stdout).toBe('');
    expect(await footprint(fx.pool, ['Acme', 'acme-cli'], fx.cell)).toEqual(before);
  });
});

test('move without --yes and without a terminal is refused before anything opens', async () => {
  const result = await cli(['move', 'acme-cli', '--to', 'cell-1']);
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    "error: moving 'acme-cli' needs --yes when stdin is not a terminal (or --dry-run to see the plan)",
  );
});

test('create, rerun, dry run, show and list', async () => {
  const id = fx.tenantId('cli');
  const created = await cli(['--json', 'create', id, '--tier', 'starter']);
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  const result = JSON.parse(created.stdout);
  expect(result).toMatchObject({ ready: true, tenant: { id, status: 'active', tier: 'starter' } });
  expect(result.apiKey.key).toMatch(/^apk_/);

  const plan = await cli(['create', id, '--tier', 'starter', '--dry-run']);
  expect(plan.code).toBe(0);
  expect(plan.stdout).toContain('dry run, nothing changed');
  expect(plan.stdout).not.toContain('planned');

  const shown = JSON.parse((await cli(['--json', 'show', id])).stdout);
  expect(shown).toMatchObject({ id, hostname: `${id}.app.dev.agents.example.com`, activeApiKeys: 1 });
  const listed = await cli(['list']);
  expect(listed.stdout).toMatch(new RegExp(`${id}\\s+starter\\s+active\\s+cell-1`));
}, 60_000);

test('create-many: a bad list creates nothing; a good one onboards every tenant and a rerun changes nothing', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenant-list-'));
  try {
    const [a, b] = [fx.tenantId('clibulk'), fx.tenantId('clibulk')];
    const bad = path.join(dir, 'bad.csv');
    await writeFile(bad, `id,tier\n${a},pro\n${b},platinum\n`);
    const before = await footprint(fx.pool, [a, b], fx.cell);
    const refused = await cli(['create-many', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `error: ${bad} line 3: unknown tier 'platinum': expected one of free, starter, pro, enterprise`,
    );
    expect(await footprint(fx.pool, [a, b], fx.cell)).toEqual(before);
    const missing = await cli(['create-many', path.join(dir, 'none.csv')]);
    expect(missing.stderr.trim()).toBe(`error: cannot read ${path.join(dir, 'none.csv')}: ENOENT`);

    const good = path.join(dir, 'good.json');
    await writeFile(
      good,
      JSON.stringify([
        { id: a, tier: 'pro' },
        { id: b, tier: 'free' },
      ]),
    );
    const created = await cli(['--json', 'create-many', good, '--concurrency', '2']);
    expect(created.code).toBe(0);
    const result = JSON.parse(created.stdout);
    expect(result.failed).toEqual([]);
    expect(result.onboarded.map((t: { id: string; status: string }) => [t.id, t.status])).toEqual([
      [a, 'active'],
      [b, 'active'],
    ]);
    const again = await cli(['create-many', good]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('onboarded 2 of 2 tenants');
    expect(again.stdout).toContain('0 changed, 2 already in sync, 0 failed');
    expect(again.stdout).not.toContain('api keys');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

test('change-tier needs --yes', async () => {
  const result = await cli(['change-tier', 'someone', '--tier', 'pro']);
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    "error: changing the tier of 'someone' needs --yes (or --dry-run to see the plan)",
  );
});

test('offboard refuses without --yes when stdin is not a terminal', async () => {
  const result = await cli(['offboard', 'someone', '--reason', 'contract ended']);
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    "error: offboarding 'someone' needs --yes when stdin is not a terminal (or --dry-run to see the plan)",
  );
});

test('offboard of a tenant that does not exist: one line, exit 1', async () => {
  const result = await cli(['offboard', 'nobody-here', '--reason', 'cleanup', '--yes']);
  expect(result.code).toBe(1);
  expect(result.stderr.trim()).toBe("error: tenant 'nobody-here' does not exist");
});
