import pg from 'pg';
import { PROBE_SCHEMA } from './prober.ts';

/** Table name -> exact row count, for one schema. */
export type SchemaInventory = Map<string, number>;
/** Schema name -> its tables and row counts. */
export type DatabaseInventory = Map<string, SchemaInventory>;

/** One difference between the source and the restored database. */
export interface VerificationProblem {
  readonly schema: string;
  readonly table?: string;
  readonly kind: 'missing-schema' | 'missing-table' | 'row-count';
  readonly detail: string;
}

/** Tenant schemas from the catalog (control.tenants) that exist on this server, plus the catalog itself. */
export async function listVerifiedSchemas(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT t.id FROM control.tenants t
       JOIN pg_namespace n ON n.nspname = t.id
      ORDER BY t.id`,
  );
  return ['control', ...rows.map((r) => r.id)];
}

/** Exact row counts of every ordinary table in the given schemas (count(*), not estimates). */
export async function collectInventory(
  client: pg.ClientBase,
  schemas: readonly string[],
): Promise<DatabaseInventory> {
  const inventory: DatabaseInventory = new Map();
  for (const schema of schemas) inventory.set(schema, new Map());
  if (schemas.length === 0) return inventory;
  const { rows } = await client.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS table
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) AND n.nspname <> $2
      ORDER BY 1, 2`,
    [schemas, PROBE_SCHEMA],
  );
  for (const { schema, table } of rows) {
    const qualified = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;
    const count = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified}`);
    inventory.get(schema)!.set(table, Number(count.rows[0]!.n));
  }
  return inventory;
}

/** Lists the schemas the source has and the restored copy lacks, tables it lacks, and counts that differ. */
export function compareInventories(
  source: DatabaseInventory,
  restored: DatabaseInventory,
  tolerancePercent = 0,
): VerificationProblem[] {
  const problems: VerificationProblem[] = [];
  for (const [schema, tables] of source) {
    const copy = restored.get(schema);
    if (!copy) {
      problems.push({
        schema,
        kind: 'missing-schema',
        detail: `schema '${schema}' is missing from the restore`,
      });
      continue;
    }
    for (const [table, expected] of tables) {
      const actual = copy.get(table);
      if (actual === undefined) {
        problems.push({
          schema,
          table,
          kind: 'missing-table',
          detail: `table '${schema}.${table}' is missing`,
        });
        continue;
      }
      const allowed = Math.floor((expected * tolerancePercent) / 100);
      if (Math.abs(actual - expected) > allowed) {
        problems.push({
          schema,
          table,
          kind: 'row-count',
          detail: `'${schema}.${table}' has ${actual} rows, source had ${expected}${allowed ? ` (±${allowed} allowed)` : ''}`,
        });
      }
    }
  }
  return problems;
}

/** Reads the inventory the restored database has for the same schemas (missing schemas simply stay absent). */
export async function collectRestoredInventory(
  client: pg.ClientBase,
  schemas: readonly string[],
): Promise<DatabaseInventory> {
  const { rows } = await client.query<{ nspname: string }>(
    'SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])',
    [schemas],
  );
  return collectInventory(
    client,
    rows.map((r) => r.nspname),
  );
}

export interface VerificationResult {
  readonly schemas: number;
  readonly tables: number;
  readonly rows: number;
  readonly problems: readonly VerificationProblem[];
}

export function summarizeVerification(
  source: DatabaseInventory,
  problems: readonly VerificationProblem[],
): VerificationResult {
  let tables = 0;
  let rows = 0;
  for (const schema of source.values()) {
    tables += schema.size;
    for (const n of schema.values()) rows += n;
  }
  return { schemas: source.size, tables, rows, problems };
}

/** Connects to a URL, runs fn, and always disconnects. */
export async function withClient<T>(
  url: string,
  timeoutMs: number,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The source URL with its host and port swapped for the restored instance's endpoint (same user, password, db). */
export function restoredDatabaseUrl(sourceUrl: string, endpoint: { address: string; port: number }): string {
  const url = new URL(sourceUrl);
  url.hostname = endpoint.address;
  url.port = String(endpoint.port);
  return url.toString();
}
