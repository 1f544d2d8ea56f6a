import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { loadEnvironmentConfig } from '../config/environments.ts';
import type { Cell, CellDirectory } from './cells.ts';
import type { ProvisionerDeps } from './provisioner.ts';
import {
  type CatalogDatabaseOptions,
  createCatalogDatabase,
  dropRoles,
  type TestDatabase,
  uniqueTenantId,
} from './testing/pg.ts';

/**
 * A migrated throwaway catalog and its cell databases for one test file, which drops the roles its tenants
 * created.
 */
export interface ProvisioningFixture {
  /** The catalog database. */
  readonly database: TestDatabase;
  /** Pool on the catalog. */
  readonly pool: pg.Pool;
  readonly cells: CellDirectory;
  /** `cell-1`, where tenants go while it has room. */
  readonly cell: Cell;
  /** URL of `cell-1`, for sessions logged in as a tenant role. */
  readonly cellUrl: string;
  readonly manifestsDir: string;
  readonly deps: ProvisionerDeps;
  /** A unique tenant id, remembered so its role is dropped at the end. */
  tenantId(stem: string): string;
  close(): Promise<void>;
}

export async function createProvisioningFixture(
  label: string,
  poolSize = 10,
  options: CatalogDatabaseOptions = {},
): Promise<ProvisioningFixture> {
  const { db: database, pool, cells } = await createCatalogDatabase(label, poolSize, options);
  const cell = cells.cell('cell-1');
  const cellUrl = new URL(database.url);
  cellUrl.pathname = `/${cell.connection.database}`;
  const manifestsDir = await mkdtemp(path.join(tmpdir(), `manifests-${label}-`));
  const ids: string[] = [];
  return {
    database,
    pool,
    cells,
    cell,
    cellUrl: cellUrl.toString(),
    manifestsDir,
    deps: { pool, cells, env: loadEnvironmentConfig('dev'), manifestsDir, aws: { enabled: false } },
    tenantId(stem) {
      const id = uniqueTenantId(stem);
      ids.push(id);
      return id;
    },
    async close() {
      await pool.end();
      await database.drop();
      await dropRoles(ids);
      await rm(manifestsDir, { recursive: true, force: true });
    },
  };
}

/**
 * What a failed run must leave unchanged: catalog rows, the cell's schemas, and roles named by
 * the attempted ids (pg_roles is server-wide and other test files add roles concurrently).
 */
export async function footprint(pool: pg.Pool, attemptedIds: readonly string[], cell: Cell) {
  const { rows: schemas } = await cell.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_namespace',
  );
  const { rows } = await pool.query<{
    tenants: number;
    roles: number;
    keys: number;
    audit: number;
  }>(
    `SELECT (SELECT count(*)::int FROM control.tenants) AS tenants,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = ANY($1)) AS roles,
            (SELECT count(*)::int FROM control.api_keys) AS keys,
            (SELECT count(*)::int FROM control.audit_events) AS audit`,
    [attemptedIds],
  );
  return { ...rows[0]!, schemas: schemas[0]!.n };
}
