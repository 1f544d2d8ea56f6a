import pg from 'pg';

/** Tenant-like data for verification tests: per tenant, table name -> row count. */
export type SeedSpec = Record<string, Record<string, number>>;

/**
 * Writes a minimal catalog (control.tenants with the ids) and one schema per tenant with tables and
 * rows, directly in SQL: the verification only reads control.tenants and the schemas.
 */
export async function seedTenantDatabase(url: string, spec: SeedSpec): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS control;
      CREATE TABLE IF NOT EXISTS control.tenants (id text PRIMARY KEY, tier text NOT NULL DEFAULT 'pro')`);
    for (const [tenant, tables] of Object.entries(spec)) {
      await client.query('INSERT INTO control.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING', [tenant]);
      const schema = pg.escapeIdentifier(tenant);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      for (const [table, rows] of Object.entries(tables)) {
        const qualified = `${schema}.${pg.escapeIdentifier(table)}`;
        await client.query(`CREATE TABLE IF NOT EXISTS ${qualified} (id serial PRIMARY KEY, body text)`);
        await client.query(
          `INSERT INTO ${qualified} (body) SELECT 'row ' || g FROM generate_series(1, $1::int) g`,
          [rows],
        );
      }
    }
  } finally {
    await client.end();
  }
}
