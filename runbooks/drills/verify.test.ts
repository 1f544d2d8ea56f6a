import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import { writeMarker } from './prober.ts';
import { type SeedSpec, seedTenantDatabase } from './testing/seed.ts';
import {
  collectInventory,
  collectRestoredInventory,
  compareInventories,
  listVerifiedSchemas,
  restoredDatabaseUrl,
  withClient,
} from './verify.ts';

const SPEC: SeedSpec = {
  'acme-corp': { agents: 3, runs: 12 },
  globex: { agents: 1, runs: 0, invoices: 4 },
};

async function verify(sourceUrl: string, restoredUrl: string, tolerance = 0) {
  const { schemas, inventory } = await withClient(sourceUrl, 5000, async (c) => {
    const list = await listVerifiedSchemas(c);
    return { schemas: list, inventory: await collectInventory(c, list) };
  });
  const restored = await withClient(restoredUrl, 5000, (c) => collectRestoredInventory(c, schemas));
  return { schemas, problems: compareInventories(inventory, restored, tolerance) };
}

async function sql(url: string, text: string) {
  await withClient(url, 5000, (c) => c.query(text));
}

describe('restore verification against real databases', () => {
  let source: TestDatabase;
  let restored: TestDatabase;
  beforeAll(async () => {
    [source, restored] = await Promise.all([
      createTestDatabase('drill_src'),
      createTestDatabase('drill_restored'),
    ]);
    await Promise.all([seedTenantDatabase(source.url, SPEC), seedTenantDatabase(restored.url, SPEC)]);
    // the prober's schema differs between source and copy by design and is never compared
    await withClient(source.url, 5000, (c) => writeMarker(c, 'r20261124t0000-bbbb', 1));
  });
  afterAll(async () => {
    await Promise.all([source?.drop(), restored?.drop()]);
  });

  it('takes tenant schemas from control.tenants, plus the catalog', async () => {
    await sql(source.url, 'CREATE SCHEMA not_a_tenant; CREATE TABLE not_a_tenant.t (id int)');
    const { schemas, problems } = await verify(source.url, restored.url);
    expect(schemas).toEqual(['control', 'acme-corp', 'globex']);
    expect(problems).toEqual([]);
  });

  it('detects a missing table and a row-count mismatch', async () => {
    await sql(restored.url, 'DROP TABLE globex.invoices; DELETE FROM "acme-corp".runs WHERE id <= 2');
    const { problems } = await verify(source.url, restored.url);
    expect(problems).toEqual([
      expect.objectContaining({
        schema: 'acme-corp',
        table: 'runs',
        kind: 'row-count',
        detail: "'acme-corp.runs' has 10 rows, source had 12",
      }),
      expect.objectContaining({ schema: 'globex', table: 'invoices', kind: 'missing-table' }),
    ]);
  });

  it('accepts a difference inside the tolerance and nothing beyond it', async () => {
    expect((await verify(source.url, restored.url, 20)).problems.map((p) => p.kind)).toEqual([
      'missing-table',
    ]);
    expect((await verify(source.url, restored.url, 10)).problems.map((p) => p.kind)).toEqual([
      'row-count',
      'missing-table',
    ]);
  });

  it('detects a tenant schema missing from the restore', async () => {
    await sql(
      source.url,
      `INSERT INTO control.tenants (id) VALUES ('initech'); CREATE SCHEMA initech; CREATE TABLE initech.a (id int)`,
    );
    const { problems } = await verify(source.url, restored.url);
    expect(problems).toContainEqual(expect.objectContaining({ schema: 'initech', kind: 'missing-schema' }));
  });
});

describe('restoredDatabaseUrl', () => {
  it('keeps user, password and database and swaps the endpoint', () => {
    expect(
      restoredDatabaseUrl('postgresql://admin:s3cret@prod.example:5432/platform?sslmode=require', {
        address: 'drill.abc.us-east-1.rds.amazonaws.com',
        port: 5433,
      }),
    ).toBe('postgresql://admin:s3cret@drill.abc.us-east-1.rds.amazonaws.com:5433/platform?sslmode=require');
  });
});

describe('listVerifiedSchemas', () => {
  it('fails clearly on a database without a catalog', async () => {
    const empty = await createTestDatabase('drill_empty');
    try {
      await expect(withClient(empty.url, 5000, (c: pg.Client) => listVerifiedSchemas(c))).rejects.toThrow(
        /control\.tenants/,
      );
    } finally {
      await empty.drop();
    }
  });
});
