import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateCatalog } from '../catalog/migrate.ts';
import { type CellDirectory, cellGroupRole, cellSpecs, openCells } from '../cells.ts';
import { poolConnection } from '../lifecycle/session.ts';

export const ADMIN_URL =
  process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database on the local server for one test file, so files can run in parallel.
 * Roles are server-wide: tests must use unique tenant ids (see uniqueTenantId) and drop their roles.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `test_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    /** Drops the database, and the cell databases and group roles opened next to it (`<name>_cell_1`, …). */
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        const { rows } = await client.query<{ datname: string }>(
          "SELECT datname FROM pg_database WHERE left(datname, length($1) + 1) = $1 || '_'",
          [name],
        );
        for (const database of [name, ...rows.map((r) => r.datname)])
          await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
        const groups = await client.query<{ rolname: string }>(
          'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
          [rows.map((r) => cellGroupRole(r.datname))],
        );
        if (groups.rows.length > 0)
          await client.query(
            `DROP ROLE ${groups.rows.map((g) => pg.escapeIdentifier(g.rolname)).join(', ')}`,
          );
      } finally {
        await client.end();
      }
    },
  };
}

/** A valid tenant id that no other test run uses, since roles are shared by every database on the server. */
export function uniqueTenantId(stem: string): string {
  return `${stem}-${randomBytes(4).toString('hex')}`;
}

export interface CatalogDatabase {
  /** The catalog database; drop() also drops its cells and their group roles. */
  readonly db: TestDatabase;
  /** Pool on the catalog. */
  readonly pool: pg.Pool;
  /** The cells (`cell-1`, `cell-2`, …), each a database of its own on the same server. */
  readonly cells: CellDirectory;
}

export interface CatalogDatabaseOptions {
  /** Cell databases next to the catalog. @default 1 */
  readonly cells?: number;
  /** Capacity of each cell in control.cells. @default 5000 */
  readonly capacity?: number;
}

/**
 * A fresh catalog database (see createTestDatabase), migrated, with its cells: separate databases on the
 * same server, hardened as the platform hardens them (tenant roles connect only to their own cell).
 */
export async function createCatalogDatabase(
  label: string,
  max = 4,
  options: CatalogDatabaseOptions = {},
): Promise<CatalogDatabase> {
  const catalog = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: catalog.url, max });
  // DROP DATABASE ... WITH (FORCE) at teardown may end a client that is still closing.
  pool.on('error', () => {});
  const client = await pool.connect();
  try {
    await migrateCatalog(client);
  } finally {
    client.release();
  }
  const count = options.cells ?? 1;
  // The same databases the CLIs open for this catalog from the env config's cells (cell-1, cell-2, …).
  const specs = cellSpecs(
    {
      cells: Array.from({ length: count }, (_, i) => ({
        id: `cell-${i + 1}`,
        capacity: options.capacity ?? 5000,
      })),
    },
    poolConnection(pool),
  );
  const cells = await openCells(pool, specs, { max });
  const db: TestDatabase = {
    ...catalog,
    async drop() {
      await cells.close();
      await catalog.drop();
    },
  };
  return { db, pool, cells };
}

/** Drops the given roles where they exist; roles are server-wide, so tests drop the ones they made. */
export async function dropRoles(roles: readonly string[]): Promise<void> {
  if (roles.length === 0) return;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
      [roles],
    );
    for (let i = 0; i < rows.length; i += 500) {
      const batch = rows.slice(i, i + 500).map((r) => pg.escapeIdentifier(r.rolname));
      await admin.query(`DROP ROLE IF EXISTS ${batch.join(', ')}`);
    }
  } finally {
    await admin.end();
  }
}

/** Catalog rows only (no schema or role): active pro tenants in cell-1, for tests of metering and reports. */
export async function insertCatalogTenants(pool: pg.Pool, ids: readonly string[]): Promise<void> {
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id) SELECT unnest($1::text[]), 'pro', 'active', 'cell-1'`,
    [ids],
  );
}
