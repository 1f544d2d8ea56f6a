import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { BenchFigure } from '../../bench/figure.ts';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import type { CellDirectory } from '../cells.ts';
import { offboardTenant } from '../offboarding.ts';
import { createTenant, type ProvisionerDeps } from '../provisioner.ts';
import { applyTenantDatabase, inspectTenantDatabase, recordInCatalog } from '../tenant-database.ts';
import { createCatalogDatabase, dropRoles } from '../testing/pg.ts';
import { getTier } from '../tiers.ts';
import { migrateTenants } from './fan-out.ts';
import { loadTenantMigrations, shippedMigrations, TENANT_MIGRATIONS_DIR } from './files.ts';

const FLEET = Number(process.env.BENCH_FLEET_TENANTS ?? 1000);
const STREAMS = 4;
/** Two cells on the local server: the fan-out interleaves them. */
const CELLS = 2;

const seconds = (ms: number) => Number((ms / 1000).toFixed(2));

/** The fleet: real catalog rows, roles, schemas and tables at the shipped version, as onboarding leaves them. */
async function fill(pool: pg.Pool, cells: CellDirectory, ids: readonly string[]): Promise<void> {
  const tier = getTier('free');
  let next = 0;
  await Promise.all(
    Array.from({ length: STREAMS }, async (_, stream) => {
      // Each stream fills one cell, as placement spreads a fleet over the cells.
      const cellId = cells.ids[stream % cells.ids.length]!;
      const client = await pool.connect();
      const cell = await cells.cell(cellId).pool.connect();
      try {
        for (const c of [client, cell]) await c.query('SET synchronous_commit = off');
        while (next < ids.length) {
          const id = ids[next++]!;
          await client.query(
            `INSERT INTO control.tenants (id, tier, status, cell_id, hostname) VALUES ($1, $2, 'active', $3, $1 || '.bench')`,
            [id, tier.name, cellId],
          );
          await applyTenantDatabase(cell, id, tier, await inspectTenantDatabase(cell, id, null), {
            record: recordInCatalog(client, id),
          });
        }
      } finally {
        client.release();
        cell.release();
      }
    }),
  );
}

/** The shipped files plus one that adds a table, as a release would. */
async function withOneTableMigration() {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-migrations-'));
  for (const m of shippedMigrations())
    await copyFile(path.join(TENANT_MIGRATIONS_DIR, m.name), path.join(dir, m.name));
  const version = String(shippedMigrations().length + 2).padStart(4, '0');
  await writeFile(
    path.join(dir, `${version}_task-notes.sql`),
    `CREATE TABLE :"schema".task_notes (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       task_id bigint NOT NULL REFERENCES :"schema".tasks (id) ON DELETE CASCADE,
       body text NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now());
     CREATE INDEX task_notes_task_idx ON :"schema".task_notes (task_id);`,
  );
  return { dir, migrations: loadTenantMigrations(dir) };
}

export default async function fleetBench(): Promise<BenchFigure[]> {
  const run = Math.random().toString(36).slice(2, 7);
  const ids = Array.from({ length: FLEET }, (_, i) => `f${run}-t${i}`);
  const leaving = `f${run}-leaving`;
  const { db, pool, cells } = await createCatalogDatabase('bench_fleet', STREAMS * 2, { cells: CELLS });
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-fleet-'));
  const { dir, migrations } = await withOneTableMigration();
  const figures: BenchFigure[] = [];
  try {
    const filled = performance.now();
    await fill(pool, cells, ids);
    console.error(`  fleet of ${FLEET} tenants in ${seconds(performance.now() - filled)} s`);

    const load = loadavg()[0]!;
    const migrated = await migrateTenants({ catalog: pool, cells }, { migrations, concurrency: STREAMS });
    if (migrated.migrated !== FLEET || migrated.failed.length > 0) {
      throw new Error(
        `migration bench migrated ${migrated.migrated} of ${FLEET}: ${migrated.failed[0]?.error}`,
      );
    }
    figures.push({
      figure: `apply a one-table migration to ${FLEET} tenant schemas in ${CELLS} cells (${STREAMS} workers)`,
      value: seconds(migrated.ms),
      unit: 's',
      goal: '<= 20 s',
      pass: migrated.ms <= 20_000,
      detail: { perSecond: Number((FLEET / (migrated.ms / 1000)).toFixed(1)), loadAverage1m: load },
    });

    let queries = 0;
    const counted = new pg.Pool({ connectionString: db.url, max: 1 });
    const query = counted.query.bind(counted);
    counted.query = ((...args: Parameters<typeof query>) => {
      queries++;
      return query(...args);
    }) as typeof counted.query;
    await counted.query('SELECT 1');
    queries = 0;
    const idle = await migrateTenants({ catalog: counted, cells }, { migrations });
    await counted.end();
    figures.push({
      figure: `"nothing to do" over ${FLEET} tenants`,
      value: Number(idle.ms.toFixed(1)),
      unit: 'ms',
      goal: '<= 1000 ms',
      pass: idle.ms <= 1000 && queries === 1,
      detail: { catalogQueries: queries },
    });

    const deps: ProvisionerDeps = {
      pool,
      cells,
      env: loadEnvironmentConfig('dev'),
      manifestsDir: scratch,
      aws: { enabled: false },
    };
    const created = await createTenant(deps, { id: leaving, tier: 'pro', actor: 'bench' });
    // Placement picks the least-loaded cell, which depends on how the streams split the fleet.
    await cells
      .cell(created.tenant!.cellId)
      .pool.query(
        `INSERT INTO ${pg.escapeIdentifier(leaving)}.agents (name, model) SELECT 'agent-' || i, 'm' FROM generate_series(1, 1000) i`,
      );
    const started = performance.now();
    await offboardTenant(deps, leaving, {
      actor: 'bench',
      reason: 'bench',
      archiveDir: path.join(scratch, 'archives'),
    });
    const offboardMs = performance.now() - started;
    figures.push({
      figure: `offboard one tenant (archive, verify, drop) once ${FLEET} exist`,
      value: seconds(offboardMs),
      unit: 's',
      goal: '<= 5 s',
      pass: offboardMs <= 5_000,
      detail: { loadAverage1m: loadavg()[0] },
    });
  } finally {
    await pool.end();
    await db.drop();
    await dropRoles([...ids, leaving]);
    await rm(scratch, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}
