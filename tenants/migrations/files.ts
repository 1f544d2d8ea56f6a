import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TENANT_SCHEMA_VERSION } from '../tenant-schema.ts';

/** Where the tenant-schema migrations live: `NNNN_what-it-does.sql`, versions from 2 up with no gap. */
export const TENANT_MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tenant');

/** The placeholder a migration writes where the tenant's schema goes; replaced by the quoted identifier. */
export const SCHEMA_PLACEHOLDER = ':"schema"';

const FILE_NAME = /^(\d{4})_([a-z0-9][a-z0-9-]*)\.sql$/;

/** A migration directory or file that cannot be used; one line naming the file. */
export class MigrationFileError extends Error {
  override readonly name = 'MigrationFileError';
}

export interface TenantMigration {
  readonly version: number;
  /** The file name, e.g. `0002_events-at-index.sql`. */
  readonly name: string;
  readonly sql: string;
}

/** The migrations in `dir`, ordered, checked for names, gaps and the schema placeholder. */
export function loadTenantMigrations(dir: string = TENANT_MIGRATIONS_DIR): TenantMigration[] {
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.sql'))
    .sort();
  const migrations = names.map((name, i) => {
    const match = FILE_NAME.exec(name);
    if (!match) throw new MigrationFileError(`migration file '${name}' must be named NNNN_what-it-does.sql`);
    const version = Number(match[1]);
    const expected = TENANT_SCHEMA_VERSION + 1 + i;
    if (version !== expected) {
      throw new MigrationFileError(`migration file '${name}' has version ${version}, expected ${expected}`);
    }
    const sql = readFileSync(path.join(dir, name), 'utf8');
    if (!sql.includes(SCHEMA_PLACEHOLDER)) {
      throw new MigrationFileError(
        `migration file '${name}' never names the tenant schema as ${SCHEMA_PLACEHOLDER}`,
      );
    }
    return { version, name, sql };
  });
  return migrations;
}

/** The version a schema has once every migration in the list is applied. */
export function latestVersion(migrations: readonly TenantMigration[]): number {
  return migrations.at(-1)?.version ?? TENANT_SCHEMA_VERSION;
}

/** The SQL of one migration for one schema. */
export function migrationSql(migration: TenantMigration, schema: string): string {
  return migration.sql.replaceAll(SCHEMA_PLACEHOLDER, pg.escapeIdentifier(schema));
}

let shipped: TenantMigration[] | undefined;

/** The migrations shipped with the project, read once per process. */
export function shippedMigrations(): readonly TenantMigration[] {
  shipped ??= loadTenantMigrations();
  return shipped;
}
