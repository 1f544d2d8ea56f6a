import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateCatalog } from '../catalog/migrate.ts';

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
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
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

/** A fresh database (see createTestDatabase) with the catalog migrated, and a pool on it. */
export async function createCatalogDatabase(
  label: string,
  max = 4,
): Promise<{ db: TestDatabase; pool: pg.Pool }> {
  const db = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: db.url, max });
  // DROP DATABASE ... WITH (FORCE) at teardown may end a client that is still closing.
  pool.on('error', () => {});
  const client = await pool.connect();
  try {
    await migrateCatalog(client);
  } finally {
    client.release();
  }
  return { db, pool };
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
