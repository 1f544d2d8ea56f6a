import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type pg from 'pg';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * Brings the `control` schema up to date. node-pg-migrate takes an advisory lock,
 * so concurrent callers wait and the second one finds nothing to do.
 */
export async function migrateCatalog(client: pg.ClientBase, options: { log?: (msg: string) => void } = {}) {
  await client.query('CREATE SCHEMA IF NOT EXISTS control');
  return runner({
    dbClient: client,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsSchema: 'control',
    migrationsTable: 'catalog_migrations',
    schema: 'control',
    checkOrder: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
}
