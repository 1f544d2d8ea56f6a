import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hashApiKey } from './api-keys.ts';
import { createTenants, formatBulkResult, parseTenantList, TenantListError } from './bulk-onboarding.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';

describe('parseTenantList', () => {
  test('reads CSV with a header, comments and blank lines, and a JSON array', () => {
    const csv = 'id,tier\n# first wave\nacme,pro\n\n  globex , free \n';
    expect(parseTenantList(csv, 'wave.csv')).toEqual([
      { id: 'acme', tier: 'pro', where: 'line 3' },
      { id: 'globex', tier: 'free', where: 'line 5' },
    ]);
    expect(parseTenantList('[{"id":"acme","tier":"starter"}]', 'wave.json')).toEqual([
      { id: 'acme', tier: 'starter', where: 'entry 1' },
    ]);
  });

  test.each([
    ['acme,pro\nAcme,pro', 'wave.csv line 2: invalid tenant id "Acme": must start with a lowercase letter'],
    ['acme,gold', "wave.csv line 1: unknown tier 'gold': expected one of free, starter, pro, enterprise"],
    ['acme,pro\nglobex,free\nacme,free', "wave.csv line 3: tenant 'acme' is listed twice (first at line 1)"],
    ['acme', "wave.csv line 1: expected 'id,tier', got 'acme'"],
    ['acme,pro,extra', "wave.csv line 1: expected 'id,tier', got 'acme,pro,extra'"],
    ['# nothing yet\n', 'wave.csv lists no tenants'],
    [
      '[{"id":"acme","tier":"pro","plan":"x"}]',
      "wave.csv entry 1: unknown field 'plan' (expected id and tier)",
    ],
    ['[{"id":"acme"', 'wave.csv is not valid JSON:'],
    ['[1]', 'wave.csv entry 1: expected an object { id, tier }'],
  ])('refuses %j in one line naming the entry', (text, message) => {
    let thrown: unknown;
    try {
      parseTenantList(text, 'wave.csv');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TenantListError);
    const line = (thrown as Error).message;
    expect(line.startsWith(message)).toBe(true);
    expect(line).not.toContain('\n');
  });
});

describe('createTenants (PostgreSQL, two cells)', () => {
  let fx: ProvisioningFixture;

  beforeAll(async () => {
    fx = await createProvisioningFixture('bulk', 10, { cells: 2 });
  });

  afterAll(async () => {
    await fx?.close();
  });

  test('onboards a list concurrently across cells, reports a failing tenant alone, and a rerun converges', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => fx.tenantId(`bulk${i}`));
    const blocked = fx.tenantId('bulkrole');
    // A same-named role onboarding did not create: that tenant is refused, the others go on.
    await fx.cell.pool.query(`CREATE ROLE "${blocked}"`);
    const entries = [...ids, blocked].map((id, i) => ({
      id,
      tier: i % 2 === 0 ? 'pro' : 'free',
      where: `line ${i + 1}`,
    }));
    const progress: number[] = [];
    const first = await createTenants(fx.deps, entries, {
      actor: 'test',
      concurrency: 3,
      onProgress: (p) => progress.push(p.done),
    });
    expect(first.onboarded.map((t) => t.id)).toEqual(ids);
    expect(first.onboarded.every((t) => t.status === 'active' && t.changed && t.apiKey)).toBe(true);
    expect(new Set(first.onboarded.map((t) => t.cellId))).toEqual(new Set(['cell-1', 'cell-2']));
    expect(first.failed).toEqual([
      {
        id: blocked,
        tier: entries[6]!.tier,
        error: `role '${blocked}' already exists and was not created by onboarding: drop or rename it, then run create again`,
      },
    ]);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7]);

    // Each shown key is the one stored (by hash) for its tenant, and active.
    const { rows } = await fx.pool.query<{ tenant_id: string; hash: string }>(
      'SELECT tenant_id, hash FROM control.api_keys WHERE tenant_id = ANY($1) AND revoked_at IS NULL',
      [ids],
    );
    expect(new Map(rows.map((r) => [r.tenant_id, r.hash]))).toEqual(
      new Map(first.onboarded.map((t) => [t.id, hashApiKey(t.apiKey!.key)])),
    );
    const text = formatBulkResult(first);
    expect(text).toContain('onboarded 6 of 7 tenants');
    expect(text).toContain(first.onboarded[0]!.apiKey!.key);
    expect(text).toContain(`  ${blocked}: role '${blocked}' already exists`);

    await fx.cell.pool.query(`DROP ROLE "${blocked}"`);
    const dry = await createTenants(fx.deps, entries, { actor: 'test', dryRun: true });
    expect(dry.onboarded.filter((t) => (t.planned ?? []).length > 0).map((t) => t.id)).toEqual([blocked]);

    const rerun = await createTenants(fx.deps, entries, { actor: 'test', concurrency: 3 });
    expect(rerun.failed).toEqual([]);
    expect(rerun.onboarded.filter((t) => t.changed).map((t) => t.id)).toEqual([blocked]);
    // Keys are issued once: only the tenant created by this run gets one.
    expect(rerun.onboarded.filter((t) => t.apiKey).map((t) => t.id)).toEqual([blocked]);
  });

  test('an unreachable catalog ends the run in one error instead of one failure per tenant', async () => {
    const down = new pg.Pool({ connectionString: 'postgresql://postgres@127.0.0.1:1/none' });
    try {
      const entries = [0, 1, 2].map((i) => ({ id: `bulkdown${i}`, tier: 'free', where: `line ${i + 1}` }));
      await expect(
        createTenants({ ...fx.deps, pool: down }, entries, { actor: 'test', concurrency: 2 }),
      ).rejects.toThrow(/^PostgreSQL unreachable at 127\.0\.0\.1:1/);
    } finally {
      await down.end();
    }
  });
});
