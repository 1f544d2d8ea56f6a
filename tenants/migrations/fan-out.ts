import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { CELL_SCHEMA, type CellDirectory } from '../cells.ts';
import { type FleetProgress, forEachConcurrently } from '../lifecycle/fleet.ts';
import { inClientTransaction, TENANT_LOCK_CLASS, withConnection } from '../lifecycle/session.ts';
import { tenantSchemaStatements } from '../tenant-schema.ts';
import {
  latestVersion,
  loadTenantMigrations,
  MigrationFileError,
  migrationSql,
  type TenantMigration,
} from './files.ts';

/** The run was refused before any tenant was touched; one line. */
export class MigrationRunError extends Error {
  override readonly name = 'MigrationRunError';
}

export const DEFAULT_CONCURRENCY = 4;
/** How long one tenant's migration waits for a lock held by the tenant's own work. */
export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;

const optionsSchema = z.object({
  to: z.number().int().positive().optional(),
  concurrency: z.number().int().min(1).max(64).default(DEFAULT_CONCURRENCY),
  dryRun: z.boolean().default(false),
  lockTimeoutMs: z.number().int().positive().default(DEFAULT_LOCK_TIMEOUT_MS),
});

export interface MigrateOptions {
  /** Target version. @default - the latest migration file */
  readonly to?: number;
  /** Tenants migrated at once, spread across cells. @default 4 */
  readonly concurrency?: number;
  /** Check the files and list what would run; change nothing. @default false */
  readonly dryRun?: boolean;
  /** lock_timeout of each tenant's transaction. @default 5000 */
  readonly lockTimeoutMs?: number;
  /** @default - the shipped files in tenants/migrations/tenant */
  readonly migrations?: readonly TenantMigration[];
  /** Called after each tenant, done or failed. @default - none */
  readonly onProgress?: (progress: MigrationProgress) => void;
}

export type MigrationProgress = FleetProgress;

export interface MigrationFailure {
  readonly tenantId: string;
  readonly cellId: string;
  /** The version the tenant stays at. */
  readonly version: number;
  readonly error: string;
}

export interface MigrationResult {
  readonly target: number;
  readonly dryRun: boolean;
  /** Tenants behind the target when the run started, by their version. */
  readonly behindByVersion: Record<string, number>;
  /** Files the run applies (or would apply), in order. */
  readonly files: string[];
  readonly migrated: number;
  /** Tenants another run or an offboarding had already dealt with when their turn came. */
  readonly skipped: number;
  readonly failed: MigrationFailure[];
  readonly ms: number;
}

export interface MigrateDeps {
  /** The catalog database (control schema). */
  readonly catalog: pg.Pool;
  /** The cells holding the tenant schemas. */
  readonly cells: CellDirectory;
}

interface Behind {
  readonly id: string;
  readonly cell_id: string;
  readonly schema_version: number;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

/**
 * Applies every pending file to a scratch schema built like a version-1 tenant, in a transaction that is
 * always rolled back: a broken file fails here, before any tenant is touched.
 */
async function checkFiles(pool: pg.Pool, pending: readonly TenantMigration[]): Promise<void> {
  const scratch = `migration_check_${randomBytes(6).toString('hex')}`;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`CREATE SCHEMA ${pg.escapeIdentifier(scratch)}`);
    for (const statement of tenantSchemaStatements(scratch)) await client.query(statement);
    for (const migration of pending) {
      try {
        await client.query(migrationSql(migration, scratch));
      } catch (error) {
        const position = (error as { position?: string }).position;
        throw new MigrationFileError(
          `migration ${migration.name} does not apply: ${message(error)}${position ? ` (character ${position})` : ''}; no tenant was changed`,
        );
      }
    }
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

/** Round-robin over cells, so that concurrent workers spread across them instead of draining one. */
function interleaveByCell(tenants: readonly Behind[]): Behind[] {
  const byCell = new Map<string, Behind[]>();
  for (const t of tenants) byCell.set(t.cell_id, [...(byCell.get(t.cell_id) ?? []), t]);
  const queues = [...byCell.values()];
  const order: Behind[] = [];
  for (let i = 0; order.length < tenants.length; i++) {
    for (const q of queues) if (q[i]) order.push(q[i]!);
  }
  return order;
}

type Outcome = 'migrated' | 'skipped';

/**
 * One tenant: under its lock and row in the catalog, the files from its version to the target run in one
 * transaction on its cell, as the tenant role (it owns what they create), and the cell records the new
 * version in the same commit (cell.tenant_schemas). The catalog's version moves only after the cell
 * committed; a crash between the two leaves the catalog behind, and the rerun finds the cell already at the
 * target and only moves the catalog. Any error in the cell rolls all of the tenant's files back.
 */
async function migrateOne(
  catalog: pg.Pool,
  cells: CellDirectory,
  tenant: Behind,
  migrations: readonly TenantMigration[],
  target: number,
  lockTimeoutMs: number,
): Promise<Outcome> {
  return withConnection(catalog, (client, spoil) =>
    inClientTransaction(
      client,
      async () => {
        await client.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
        // Waits for a provisioning, offboarding, move or another migrate of this tenant to finish.
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [TENANT_LOCK_CLASS, tenant.id]);
        const { rows } = await client.query<{ schema_version: number; status: string; cell_id: string }>(
          'SELECT schema_version, status::text AS status, cell_id FROM control.tenants WHERE id = $1 FOR UPDATE',
          [tenant.id],
        );
        const now = rows[0];
        if (!now || now.status === 'archived' || now.schema_version >= target || now.schema_version < 1) {
          return 'skipped';
        }
        const cell = cells.cell(now.cell_id);
        await withConnection(cell.pool, (cellClient, spoilCell) =>
          inClientTransaction(
            cellClient,
            async () => {
              await cellClient.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
              const recorded = await cellClient.query<{ version: number }>(
                `SELECT version FROM ${CELL_SCHEMA}.tenant_schemas WHERE tenant_id = $1 FOR UPDATE`,
                [tenant.id],
              );
              const from = recorded.rows[0]?.version ?? now.schema_version;
              if (from >= target) return;
              const pending = migrations.filter((m) => m.version > from && m.version <= target);
              await cellClient.query(
                [
                  `SET LOCAL ROLE ${pg.escapeIdentifier(tenant.id)}`,
                  ...pending.map((m) => migrationSql(m, tenant.id)),
                  'RESET ROLE',
                  `INSERT INTO ${CELL_SCHEMA}.tenant_schemas (tenant_id, version) VALUES (${pg.escapeLiteral(tenant.id)}, ${target})
                     ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now()`,
                ].join(';\n'),
              );
            },
            spoilCell,
          ),
        );
        await client.query(
          'UPDATE control.tenants SET schema_version = $2, updated_at = now() WHERE id = $1',
          [tenant.id, target],
        );
        await client.query('DELETE FROM control.tenant_migration_failures WHERE tenant_id = $1', [tenant.id]);
        return 'migrated';
      },
      spoil,
    ),
  );
}

/**
 * Brings every tenant schema up to `to` (the latest file by default), `concurrency` tenants at a time.
 * With nothing to do it costs one catalog query. Resumable: each tenant's version moves with its own
 * commit, so a rerun takes up whoever is still behind. A failing tenant keeps its version and is reported.
 */
export async function migrateTenants(
  deps: MigrateDeps,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const started = performance.now();
  const parsed = optionsSchema.parse({
    to: options.to,
    concurrency: options.concurrency,
    dryRun: options.dryRun,
    lockTimeoutMs: options.lockTimeoutMs,
  });
  const migrations = options.migrations ?? loadTenantMigrations();
  const latest = latestVersion(migrations);
  const target = parsed.to ?? latest;
  if (target > latest) {
    throw new MigrationRunError(`--to ${target} is past the latest migration (version ${latest})`);
  }
  const { rows: behind } = await deps.catalog.query<Behind>(
    `SELECT id, cell_id, schema_version FROM control.tenants
      WHERE status <> 'archived' AND schema_version BETWEEN 1 AND $1 - 1 ORDER BY id`,
    [target],
  );
  const behindByVersion: Record<string, number> = {};
  for (const t of behind) behindByVersion[t.schema_version] = (behindByVersion[t.schema_version] ?? 0) + 1;
  const oldest = Math.min(...behind.map((t) => t.schema_version));
  const pending = migrations.filter((m) => m.version > oldest && m.version <= target);
  const result = (migrated: number, skipped: number, failed: MigrationFailure[]): MigrationResult => ({
    target,
    dryRun: parsed.dryRun,
    behindByVersion,
    files: pending.map((m) => m.name),
    migrated,
    skipped,
    failed,
    ms: Number((performance.now() - started).toFixed(1)),
  });
  if (behind.length === 0) return result(0, 0, []);

  const { cells } = deps;
  const cellIds = [...new Set(behind.map((t) => t.cell_id))];
  for (const id of cellIds) await checkFiles(cells.cell(id).pool, pending);
  if (parsed.dryRun) return result(0, 0, []);

  const queue = interleaveByCell(behind);
  const failed: MigrationFailure[] = [];
  let migrated = 0;
  let skipped = 0;
  const report = () =>
    options.onProgress?.({
      done: migrated + skipped + failed.length,
      failed: failed.length,
      total: queue.length,
    });
  await forEachConcurrently(queue, parsed.concurrency, async (tenant) => {
    try {
      const outcome = await migrateOne(deps.catalog, cells, tenant, migrations, target, parsed.lockTimeoutMs);
      if (outcome === 'migrated') migrated++;
      else skipped++;
    } catch (error) {
      const failure = {
        tenantId: tenant.id,
        cellId: tenant.cell_id,
        version: tenant.schema_version,
        error: message(error),
      };
      failed.push(failure);
      await deps.catalog.query(
        `INSERT INTO control.tenant_migration_failures (tenant_id, from_version, to_version, error)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET from_version = EXCLUDED.from_version,
           to_version = EXCLUDED.to_version, error = EXCLUDED.error, failed_at = now()`,
        [failure.tenantId, failure.version, target, failure.error],
      );
    }
    report();
  });
  failed.sort((a, b) => a.tenantId.localeCompare(b.tenantId));
  return result(migrated, skipped, failed);
}
