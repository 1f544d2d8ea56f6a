import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { type CellDirectory, cellGroupRole } from '../cells.ts';
import { createTenant } from '../provisioner.ts';
import { tenantSchemaStatements } from '../tenant-schema.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from '../testing/pg.ts';
import { migrateTenants } from './fan-out.ts';
import { latestVersion, loadTenantMigrations, MigrationFileError, shippedMigrations } from './files.ts';

let db: TestDatabase;
let pool: pg.Pool;
let cells: CellDirectory;
let manifestsDir: string;
const roles: string[] = [];

beforeAll(async () => {
  ({ db, pool, cells } = await createCatalogDatabase('migrations', 6));
  manifestsDir = await mkdtemp(path.join(tmpdir(), 'migrate-manifests-'));
}, 30_000);

afterAll(async () => {
  await pool?.end();
  await db?.drop();
  await dropRoles(roles);
  await rm(manifestsDir, { recursive: true, force: true });
});

const cell = () => cells.cell('cell-1');

/** A session on cell-1 logged in as the tenant role. */
function asTenant(id: string): pg.Client {
  const { host, port, database } = cell().connection;
  return new pg.Client({ host, port, database, user: id });
}

/** A tenant as onboarding made it before any migration existed: version 1. */
async function versionOneTenant(stem: string): Promise<string> {
  const id = uniqueTenantId(stem);
  roles.push(id);
  const s = pg.escapeIdentifier(id);
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id, schema_version) VALUES ($1, 'free', 'active', 'cell-1', 1)`,
    [id],
  );
  await cell().pool.query(
    [
      'BEGIN',
      `CREATE ROLE ${s} LOGIN IN ROLE ${pg.escapeIdentifier(cellGroupRole(cell().connection.database))}`,
      `CREATE SCHEMA ${s} AUTHORIZATION ${s}`,
      `SET LOCAL ROLE ${s}`,
      ...tenantSchemaStatements(id),
      'COMMIT',
    ].join(';\n'),
  );
  return id;
}

/** A migration directory of its own per test, so each test states the files it runs. */
async function migrationsDir(files: Record<string, string>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenant-migrations-'));
  for (const [name, sql] of Object.entries(files)) await writeFile(path.join(dir, name), sql);
  return loadTenantMigrations(dir);
}

const ADD_LABELS = 'ALTER TABLE :"schema".agents ADD COLUMN labels text[] NOT NULL DEFAULT \'{}\';';
const ADD_NOTES =
  'CREATE TABLE :"schema".notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);';

async function versions(ids: readonly string[]): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ id: string; schema_version: number }>(
    'SELECT id, schema_version FROM control.tenants WHERE id = ANY($1)',
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.schema_version]));
}

async function tableOwner(schema: string, table: string): Promise<string | undefined> {
  const { rows } = await cell().pool.query<{ owner: string }>(
    'SELECT tableowner AS owner FROM pg_tables WHERE schemaname = $1 AND tablename = $2',
    [schema, table],
  );
  return rows[0]?.owner;
}

/** Leaves the catalog with every live tenant at `version`, so a test starts from a known fleet. */
async function settle(migrations: Awaited<ReturnType<typeof migrationsDir>>) {
  await migrateTenants({ catalog: pool, cells }, { migrations });
}

describe('tenant migrate', () => {
  test('applies the files in order as the tenant role, and moves each version in the catalog', async () => {
    const ids = [
      await versionOneTenant('mig-a'),
      await versionOneTenant('mig-b'),
      await versionOneTenant('mig-c'),
    ];
    const migrations = await migrationsDir({
      '0002_agent-labels.sql': ADD_LABELS,
      '0003_notes.sql': ADD_NOTES,
    });
    const progress: number[] = [];
    const result = await migrateTenants(
      { catalog: pool, cells },
      { migrations, concurrency: 2, onProgress: (p) => progress.push(p.done) },
    );
    expect(result.failed).toEqual([]);
    expect(result.migrated).toBeGreaterThanOrEqual(3);
    expect(result.files).toEqual(['0002_agent-labels.sql', '0003_notes.sql']);
    expect(await versions(ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 3])));
    for (const id of ids) expect(await tableOwner(id, 'notes')).toBe(id);
    expect(progress.at(-1)).toBe(result.migrated);

    const again = await migrateTenants({ catalog: pool, cells }, { migrations });
    expect(again).toMatchObject({ migrated: 0, failed: [], behindByVersion: {} });
  });

  test('nothing to do costs one catalog query, whatever the tenant count', async () => {
    const migrations = await migrationsDir({ '0002_agent-labels.sql': ADD_LABELS });
    await versionOneTenant('mig-n');
    await settle(migrations);
    const counted = new pg.Pool({ connectionString: db.url, max: 2 });
    let queries = 0;
    let connects = 0;
    const query = counted.query.bind(counted);
    counted.query = ((...args: Parameters<typeof query>) => {
      queries++;
      return query(...args);
    }) as typeof counted.query;
    const connect = counted.connect.bind(counted) as (...args: unknown[]) => unknown;
    // pool.query checks out a client through connect(callback); only direct checkouts are counted.
    counted.connect = ((...args: unknown[]) => {
      if (args.length === 0) connects++;
      return connect(...args);
    }) as typeof counted.connect;
    try {
      const result = await migrateTenants({ catalog: counted, cells }, { migrations });
      expect(result.migrated).toBe(0);
      expect({ queries, connects }).toEqual({ queries: 1, connects: 0 });
    } finally {
      await counted.end();
    }
  });

  test('--to stops at the given version, and a later run goes on from there', async () => {
    const migrations = await migrationsDir({
      '0002_agent-labels.sql': ADD_LABELS,
      '0003_notes.sql': ADD_NOTES,
    });
    const id = await versionOneTenant('mig-to');
    await migrateTenants({ catalog: pool, cells }, { migrations, to: 2 });
    expect((await versions([id]))[id]).toBe(2);
    expect(await tableOwner(id, 'notes')).toBeUndefined();
    await migrateTenants({ catalog: pool, cells }, { migrations });
    expect((await versions([id]))[id]).toBe(3);
    await expect(migrateTenants({ catalog: pool, cells }, { migrations, to: 4 })).rejects.toThrow(
      /--to 4 is past the latest migration \(version 3\)/,
    );
  });

  test('a failing tenant keeps its version and is reported, the others go on, and a rerun resumes it', async () => {
    const migrations = await migrationsDir({
      '0002_agent-labels.sql': ADD_LABELS,
      '0003_notes.sql': ADD_NOTES,
    });
    await settle(migrations);
    const ok = await versionOneTenant('mig-ok');
    const bad = await versionOneTenant('mig-bad');
    // The tenant made a table of that name itself: 0003 cannot create it.
    const tenant = asTenant(bad);
    await tenant.connect();
    await tenant.query(`CREATE TABLE ${pg.escapeIdentifier(bad)}.notes (x int)`);

    const result = await migrateTenants({ catalog: pool, cells }, { migrations, concurrency: 2 });
    expect(result.failed).toEqual([
      { tenantId: bad, cellId: 'cell-1', version: 1, error: 'relation "notes" already exists' },
    ]);
    expect(await versions([ok, bad])).toEqual({ [ok]: 3, [bad]: 1 });
    // All or nothing per tenant: 0002 rolled back with 0003.
    const labels = await cell().pool.query(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'agents' AND column_name = 'labels'",
      [bad],
    );
    expect(labels.rowCount).toBe(0);
    const recorded = await pool.query(
      'SELECT to_version, error FROM control.tenant_migration_failures WHERE tenant_id = $1',
      [bad],
    );
    expect(recorded.rows).toEqual([{ to_version: 3, error: 'relation "notes" already exists' }]);

    await tenant.query(`DROP TABLE ${pg.escapeIdentifier(bad)}.notes`);
    await tenant.end();
    const resumed = await migrateTenants({ catalog: pool, cells }, { migrations });
    expect(resumed).toMatchObject({ migrated: 1, failed: [], behindByVersion: { 1: 1 } });
    expect(await versions([bad])).toEqual({ [bad]: 3 });
    const cleared = await pool.query('SELECT 1 FROM control.tenant_migration_failures WHERE tenant_id = $1', [
      bad,
    ]);
    expect(cleared.rowCount).toBe(0);
  });

  test('a file with a syntax error is caught before any tenant is touched', async () => {
    const migrations = await migrationsDir({ '0002_agent-labels.sql': ADD_LABELS });
    await settle(migrations);
    const id = await versionOneTenant('mig-syntax');
    const broken = await migrationsDir({
      '0002_agent-labels.sql': ADD_LABELS,
      '0003_notes.sql': 'CREATE TABEL :"schema".notes (id int);',
    });
    await expect(migrateTenants({ catalog: pool, cells }, { migrations: broken })).rejects.toThrow(
      MigrationFileError,
    );
    await expect(migrateTenants({ catalog: pool, cells }, { migrations: broken })).rejects.toThrow(
      /^migration 0003_notes.sql does not apply: syntax error at or near "TABEL" \(character \d+\); no tenant was changed$/,
    );
    expect((await versions([id]))[id]).toBe(1);
    const labels = await cell().pool.query(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'labels'",
      [id],
    );
    expect(labels.rowCount).toBe(0);
    const scratch = await cell().pool.query(
      "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'migration_check_%'",
    );
    expect(scratch.rowCount).toBe(0);
  });

  test('a dry run checks the files and lists who is behind, and changes nothing', async () => {
    const migrations = await migrationsDir({ '0002_agent-labels.sql': ADD_LABELS });
    await settle(migrations);
    const id = await versionOneTenant('mig-dry');
    const plan = await migrateTenants({ catalog: pool, cells }, { migrations, dryRun: true });
    expect(plan).toMatchObject({
      dryRun: true,
      migrated: 0,
      behindByVersion: { 1: 1 },
      files: ['0002_agent-labels.sql'],
    });
    expect((await versions([id]))[id]).toBe(1);
  });

  test('a crash after the cell committed and before the catalog did: the rerun only moves the catalog', async () => {
    const migrations = await migrationsDir({
      '0002_agent-labels.sql': ADD_LABELS,
      '0003_notes.sql': ADD_NOTES,
    });
    await settle(migrations);
    const id = await versionOneTenant('mig-half');
    await migrateTenants({ catalog: pool, cells }, { migrations });
    // As if the process died between the cell's commit and the catalog's: the catalog still says 1.
    await pool.query('UPDATE control.tenants SET schema_version = 1 WHERE id = $1', [id]);
    const rerun = await migrateTenants({ catalog: pool, cells }, { migrations });
    // Running 0003 again would fail (notes exists): the cell's own record says it is done.
    expect(rerun).toMatchObject({ migrated: 1, failed: [] });
    expect(await versions([id])).toEqual({ [id]: 3 });
    const { rows } = await cell().pool.query('SELECT version FROM cell.tenant_schemas WHERE tenant_id = $1', [
      id,
    ]);
    expect(rows).toEqual([{ version: 3 }]);
  });

  test.each([
    ['0002-labels.sql', /must be named NNNN_what-it-does.sql/],
    ['0003_labels.sql', /has version 3, expected 2/],
  ])('a migration directory with %s is refused', async (name, why) => {
    await expect(migrationsDir({ [name]: ADD_LABELS })).rejects.toThrow(why);
  });

  test('a file that never names the tenant schema is refused', async () => {
    await expect(
      migrationsDir({ '0002_labels.sql': 'ALTER TABLE agents ADD COLUMN x int;' }),
    ).rejects.toThrow(/never names the tenant schema as :"schema"/);
  });

  test('a new tenant is created at the latest shipped version, with what the shipped files make', async () => {
    const id = uniqueTenantId('mig-new');
    roles.push(id);
    const result = await createTenant(
      { pool, cells, env: loadEnvironmentConfig('dev'), manifestsDir, aws: { enabled: false } },
      { id, tier: 'free', actor: 'test' },
    );
    expect(result.tenant?.schemaVersion).toBe(latestVersion(shippedMigrations()));
    expect(latestVersion(shippedMigrations())).toBeGreaterThan(1);
    const index = await cell().pool.query(
      "SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'events_at_idx'",
      [id],
    );
    expect(index.rowCount).toBe(1);
  });
});
