import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { loadEnvironmentConfig } from '../config/environments.ts';
import type { ProvisionerDeps } from './provisioner.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from './testing/pg.ts';

/** A migrated throwaway catalog for one test file, which drops the roles its tenants created. */
export interface ProvisioningFixture {
  readonly database: TestDatabase;
  readonly pool: pg.Pool;
  readonly manifestsDir: string;
  readonly deps: ProvisionerDeps;
  /** A unique tenant id, remembered so its role is dropped at the end. */
  tenantId(stem: string): string;
  close(): Promise<void>;
}

export async function createProvisioningFixture(label: string, poolSize = 10): Promise<ProvisioningFixture> {
  const { db: database, pool } = await createCatalogDatabase(label, poolSize);
  const manifestsDir = await mkdtemp(path.join(tmpdir(), `manifests-${label}-`));
  const ids: string[] = [];
  return {
    database,
    pool,
    manifestsDir,
    deps: { pool, env: loadEnvironmentConfig('dev'), manifestsDir, aws: { enabled: false } },
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
 * What a failed run must leave unchanged: catalog rows, this database's schemas, and roles named by
 * the attempted ids (pg_roles is server-wide and other test files add roles concurrently).
 */
export async function footprint(pool: pg.Pool, attemptedIds: readonly string[]) {
  const { rows } = await pool.query<{
    tenants: number;
    schemas: number;
    roles: number;
    keys: number;
    audit: number;
  }>(
    `SELECT (SELECT count(*)::int FROM control.tenants) AS tenants,
            (SELECT count(*)::int FROM pg_namespace) AS schemas,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = ANY($1)) AS roles,
            (SELECT count(*)::int FROM control.api_keys) AS keys,
            (SELECT count(*)::int FROM control.audit_events) AS audit`,
    [attemptedIds],
  );
  return rows[0]!;
}
