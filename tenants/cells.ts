import pg from 'pg';
import type { EnvironmentConfig } from '../config/environments.ts';
import { type ConnectionSettings, clientConfig } from './lifecycle/session.ts';

/**
 * A cell: a PostgreSQL database holding tenant schemas, one per tenant. The catalog (control schema, the
 * tenant locks, the lifecycle NOTIFY channel) lives in a database of its own, which tenant roles cannot
 * connect to: advisory locks and NOTIFY are open to every role that can connect to a database.
 */
export interface Cell {
  readonly id: string;
  /** The platform's own (admin) user on the cell database. */
  readonly pool: pg.Pool;
  readonly connection: ConnectionSettings;
}

/** Finds the cell a tenant lives in, by the catalog's cell id. */
export interface CellDirectory {
  /** Cell ids in config order. */
  readonly ids: readonly string[];
  /** Throws UnknownCellError for an id the env config does not list. */
  cell(id: string): Cell;
}

/** A cell id the env config does not list; one line. */
export class UnknownCellError extends Error {
  override readonly name = 'UnknownCellError';
  constructor(
    readonly cellId: string,
    known: readonly string[],
  ) {
    super(`unknown cell '${cellId}': the env config lists ${known.join(', ') || 'no cell'}`);
  }
}

/** A cell setting outside the env config (CELL_DATABASE_URLS) is malformed; one line. */
export class CellConfigError extends Error {
  override readonly name = 'CellConfigError';
}

/**
 * The group role holding CONNECT on one cell database; a tenant role is a member of its own cell's group
 * only. Named after the database, because roles are global to a server and two cells may share one.
 */
export function cellGroupRole(database: string): string {
  return `${database}${CELL_GROUP_SUFFIX}`;
}

/** What cellGroupRole appends to the database name, for SQL that names the group from current_database(). */
export const CELL_GROUP_SUFFIX = '_tenants';

/** Schema of the platform's own records in a cell database (tenant schema versions); tenants have no rights on it. */
export const CELL_SCHEMA = 'cell';

/** Longest database name whose group role name still fits PostgreSQL's 63 bytes. */
const MAX_CELL_DATABASE = 63 - CELL_GROUP_SUFFIX.length;

/**
 * A cell's database when the config names none: the catalog's name and the cell id, so the cells of two
 * catalogs on one server (two environments, two test runs) never share a database or a group role.
 */
export function defaultCellDatabase(catalogDatabase: string, cellId: string): string {
  const name = `${catalogDatabase}_${cellId.replaceAll('-', '_')}`;
  if (name.length > MAX_CELL_DATABASE)
    throw new CellConfigError(
      `cell '${cellId}': database name '${name}' is longer than ${MAX_CELL_DATABASE} characters; name the cell's database in the env config`,
    );
  return name;
}

export interface CellSpec {
  readonly id: string;
  readonly capacity: number;
  readonly connection: ConnectionSettings;
}

/**
 * `CELL_DATABASE_URLS` (`cell-1=postgresql://…,cell-2=postgresql://…`): per-cell connection URLs that
 * replace the env config's host, port and database, for local runs and tests.
 */
export function parseCellUrls(value: string | undefined): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const entry of (value ?? '').split(',').filter((e) => e.trim() !== '')) {
    const at = entry.indexOf('=');
    const id = entry.slice(0, at).trim();
    const url = entry.slice(at + 1).trim();
    if (at < 1 || !/^postgres(ql)?:\/\/.+/.test(url))
      throw new CellConfigError(`CELL_DATABASE_URLS entry '${entry.trim()}' is not <cell>=postgresql://…`);
    urls[id] = url;
  }
  return urls;
}

function settingsFromUrl(url: string): ConnectionSettings {
  const u = new URL(url);
  return {
    host: decodeURIComponent(u.hostname) || 'localhost',
    port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(u.username) || 'postgres',
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/**
 * The env config's cells, each on the catalog's server and credentials unless the config names a host and
 * port; `urls` (from CELL_DATABASE_URLS) replace a cell's connection entirely.
 */
export function cellSpecs(
  env: Pick<EnvironmentConfig, 'cells'>,
  catalog: ConnectionSettings,
  urls: Record<string, string> = {},
): CellSpec[] {
  const ids = env.cells.map((c) => c.id);
  for (const id of Object.keys(urls)) if (!ids.includes(id)) throw new UnknownCellError(id, ids);
  return env.cells.map((c) => {
    const url = urls[c.id];
    return {
      id: c.id,
      capacity: c.capacity,
      connection: url
        ? settingsFromUrl(url)
        : {
            ...catalog,
            host: c.host ?? catalog.host,
            port: c.port ?? catalog.port,
            database: c.database ?? defaultCellDatabase(catalog.database, c.id),
          },
    };
  });
}

const TUPLE_CONCURRENTLY_UPDATED = 'XX000';

/** Creates the cell database when it does not exist yet, through the server's maintenance database. */
async function ensureDatabase(c: ConnectionSettings): Promise<void> {
  const probe = new pg.Client(clientConfig(c));
  try {
    await probe.connect();
    return;
  } catch (error) {
    if (!(error instanceof pg.DatabaseError && error.code === '3D000')) throw error;
  } finally {
    await probe.end().catch(() => {});
  }
  const admin = new pg.Client(clientConfig({ ...c, database: 'postgres' }));
  await admin.connect();
  try {
    await admin
      .query(`CREATE DATABASE ${pg.escapeIdentifier(c.database)} TEMPLATE template0`)
      .catch((error) => {
        if (!(error instanceof pg.DatabaseError && error.code === '42P04')) throw error;
      });
  } finally {
    await admin.end();
  }
}

/**
 * Hardens one cell database and its server, idempotently: the cell's group role; CONNECT revoked from
 * PUBLIC on the cell and on `postgres` and `template1` and granted to the group only; no CREATE on
 * `public`; no large objects (they live outside every schema, so a per-schema dump would miss them); and
 * the platform's own `cell` schema. Grants on a database row are only written when they differ, since two
 * writers of one pg_database row fail with "tuple concurrently updated".
 */
export async function prepareCell(cell: Cell): Promise<void> {
  const group = cellGroupRole(cell.connection.database);
  const g = pg.escapeIdentifier(group);
  const d = pg.escapeIdentifier(cell.connection.database);
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await cell.pool.query<{ group_exists: boolean; open: string[]; granted: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS group_exists,
                ARRAY(SELECT datname::text FROM pg_database
                       WHERE datname IN (current_database(), 'postgres', 'template1')
                         AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a
                                                         WHERE a.grantee = 0))) AS open,
                CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                     THEN has_database_privilege($1, current_database(), 'CONNECT') ELSE false END AS granted`,
        [group],
      );
      const state = rows[0]!;
      const statements: string[] = [];
      if (!state.group_exists) {
        statements.push(`DO $$ BEGIN CREATE ROLE ${g} NOLOGIN;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`);
      }
      for (const name of state.open) {
        statements.push(`REVOKE ALL ON DATABASE ${pg.escapeIdentifier(name)} FROM PUBLIC`);
      }
      if (!state.granted) statements.push(`GRANT CONNECT ON DATABASE ${d} TO ${g}`);
      statements.push(
        'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
        `REVOKE EXECUTE ON FUNCTION pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
           pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC`,
        `CREATE SCHEMA IF NOT EXISTS ${CELL_SCHEMA}`,
        `REVOKE ALL ON SCHEMA ${CELL_SCHEMA} FROM PUBLIC`,
        // The version of each tenant schema, written in the same transaction as the schema change itself.
        `CREATE TABLE IF NOT EXISTS ${CELL_SCHEMA}.tenant_schemas (
           tenant_id text PRIMARY KEY,
           version integer NOT NULL CHECK (version >= 0),
           updated_at timestamptz NOT NULL DEFAULT now())`,
      );
      await cell.pool.query(statements.join(';\n'));
      return;
    } catch (error) {
      const concurrent = error instanceof pg.DatabaseError && error.code === TUPLE_CONCURRENTLY_UPDATED;
      const raced =
        error instanceof pg.DatabaseError && ['23505', '42P06', '42P07'].includes(error.code ?? '');
      if (!(concurrent || raced) || attempt >= 5) throw error;
    }
  }
}

/** Records the cells and their capacity in control.cells, which placement reads. */
export async function registerCells(catalog: pg.Pool | pg.ClientBase, specs: readonly CellSpec[]) {
  await catalog.query(
    `INSERT INTO control.cells (id, capacity)
     SELECT * FROM unnest($1::text[], $2::int[])
     ON CONFLICT (id) DO UPDATE SET capacity = EXCLUDED.capacity
       WHERE control.cells.capacity IS DISTINCT FROM EXCLUDED.capacity`,
    [specs.map((s) => s.id), specs.map((s) => s.capacity)],
  );
}

export interface OpenCells extends CellDirectory {
  close(): Promise<void>;
}

/** A directory over already-open cells; closing it is the caller's business. */
export function cellDirectory(cells: readonly Cell[]): CellDirectory {
  const byId = new Map(cells.map((c) => [c.id, c]));
  const ids = cells.map((c) => c.id);
  return {
    ids,
    cell(id) {
      const found = byId.get(id);
      if (!found) throw new UnknownCellError(id, ids);
      return found;
    },
  };
}

/**
 * Opens a pool per cell, creating and hardening each cell database on first use, and records the cells in
 * the catalog. `max` is the pool size of each cell.
 */
export async function openCells(
  catalog: pg.Pool,
  specs: readonly CellSpec[],
  options: { readonly max?: number } = {},
): Promise<OpenCells> {
  const cells: Cell[] = [];
  try {
    for (const spec of specs) {
      await ensureDatabase(spec.connection);
      const pool = new pg.Pool({ ...clientConfig(spec.connection), max: options.max ?? 10 });
      // An idle client's connection error must not crash the process; the next query reports it.
      pool.on('error', () => {});
      const cell = { id: spec.id, pool, connection: spec.connection };
      cells.push(cell);
      await prepareCell(cell);
    }
    await registerCells(catalog, specs);
  } catch (error) {
    await Promise.all(cells.map((c) => c.pool.end()));
    throw error;
  }
  return {
    ...cellDirectory(cells),
    async close() {
      await Promise.all(cells.map((c) => c.pool.end()));
    },
  };
}
