import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { latestVersion, migrationSql, shippedMigrations } from './migrations/files.ts';
import { TENANT_SCHEMA_VERSION, TENANT_TABLES, tenantSchemaStatements } from './tenant-schema.ts';
import type { Tier } from './tiers.ts';

/** Group role holding CONNECT on the database; every tenant role is a member (see the migration). */
export const TENANT_GROUP_ROLE = 'agent_platform_tenants';

/** Role-level settings a tier implies, as PostgreSQL stores them in pg_db_role_setting. */
export function roleSettings(tier: Tier): Record<string, string> {
  return {
    statement_timeout: String(tier.database.statementTimeoutMs),
    idle_in_transaction_session_timeout: String(tier.database.idleInTransactionTimeoutMs),
    temp_file_limit: String(tier.database.tempFileLimitKb),
  };
}

const TIME_UNITS: readonly (readonly [string, number])[] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['min', 60_000],
  ['s', 1_000],
  ['ms', 1],
];
const MEMORY_UNITS: readonly (readonly [string, number])[] = [
  ['TB', 1024 ** 3],
  ['GB', 1024 ** 2],
  ['MB', 1024],
  ['kB', 1],
];

/** An integer setting as SHOW and current_setting() print it: in the largest unit that divides it exactly. */
function shown(value: number, units: readonly (readonly [string, number])[]): string {
  if (value <= 0) return String(value);
  const [unit, factor] = units.find(([, f]) => value % f === 0)!;
  return `${value / factor}${unit}`;
}

/**
 * The same settings as a tenant session reports them through current_setting(), which reads the session's
 * value directly; the pg_settings view would build every setting of the server first.
 */
export function sessionSettings(tier: Tier): Record<string, string> {
  return {
    statement_timeout: shown(tier.database.statementTimeoutMs, TIME_UNITS),
    idle_in_transaction_session_timeout: shown(tier.database.idleInTransactionTimeoutMs, TIME_UNITS),
    temp_file_limit: shown(tier.database.tempFileLimitKb, MEMORY_UNITS),
  };
}

/** A fresh password for a tenant role: 32 random bytes, base64url. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

/** What exists in PostgreSQL for one tenant. */
export interface TenantDatabaseState {
  readonly roleExists: boolean;
  readonly canLogin: boolean;
  readonly connectionLimit: number | null;
  /** Global role settings, parsed from rolconfig. */
  readonly settings: Record<string, string>;
  readonly inGroup: boolean;
  readonly schemaExists: boolean;
  readonly schemaOwnedByRole: boolean;
  /** The schema's ACL, e.g. `{acme=UC/acme}`. */
  readonly schemaAcl: string[];
  readonly tables: string[];
}

/** One round trip: the role, its settings and membership, the schema, its ACL and its tables. */
export async function inspectTenantDatabase(
  db: pg.ClientBase | pg.Pool,
  tenantId: string,
): Promise<TenantDatabaseState> {
  const { rows } = await db.query<{
    role_exists: boolean;
    rolcanlogin: boolean | null;
    rolconnlimit: number | null;
    config: string[];
    in_group: boolean;
    schema_exists: boolean;
    schema_owned: boolean | null;
    schema_acl: string[] | null;
    tables: string[];
  }>(
    `SELECT r.oid IS NOT NULL AS role_exists, r.rolcanlogin, r.rolconnlimit,
            coalesce(r.rolconfig, '{}') AS config,
            EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                     WHERE m.member = r.oid AND g.rolname = $2) AS in_group,
            n.oid IS NOT NULL AS schema_exists,
            n.nspowner = r.oid AS schema_owned,
            n.nspacl::text[] AS schema_acl,
            ARRAY(SELECT c.relname::text FROM pg_class c
                   WHERE c.relname = ANY ($3::name[]) AND c.relnamespace = n.oid AND c.relkind = 'r'
                   ORDER BY c.relname) AS tables
       FROM (SELECT $1::name AS id) x
       LEFT JOIN pg_roles r ON r.rolname = x.id
       LEFT JOIN pg_namespace n ON n.nspname = x.id`,
    // Looked up by name so the (relname, relnamespace) index serves it: no pg_class scan per tenant.
    [tenantId, TENANT_GROUP_ROLE, TENANT_TABLES],
  );
  const row = rows[0]!;
  return {
    roleExists: row.role_exists,
    canLogin: row.rolcanlogin === true,
    connectionLimit: row.rolconnlimit,
    settings: Object.fromEntries(
      row.config.map((entry) => {
        const at = entry.indexOf('=');
        return [entry.slice(0, at), entry.slice(at + 1)];
      }),
    ),
    inGroup: row.in_group,
    schemaExists: row.schema_exists,
    schemaOwnedByRole: row.schema_owned === true,
    schemaAcl: row.schema_acl ?? [],
    tables: row.tables,
  };
}

/** The difference between what exists and what the tier wants, in words; empty when in sync. */
export function databaseChanges(state: TenantDatabaseState, tenantId: string, tier: Tier): string[] {
  const changes: string[] = [];
  if (!state.roleExists) {
    changes.push(`create role ${tenantId} (LOGIN, CONNECTION LIMIT ${tier.database.connectionLimit})`);
  } else {
    if (!state.canLogin) changes.push('role: enable LOGIN');
    if (state.connectionLimit !== tier.database.connectionLimit) {
      changes.push(`role: connection limit ${state.connectionLimit} -> ${tier.database.connectionLimit}`);
    }
    if (!state.inGroup) changes.push(`role: join ${TENANT_GROUP_ROLE}`);
  }
  for (const [name, value] of Object.entries(roleSettings(tier))) {
    if (state.settings[name] !== value)
      changes.push(`role: ${name} ${state.settings[name] ?? 'unset'} -> ${value}`);
  }
  if (!state.schemaExists) changes.push(`create schema ${tenantId} owned by ${tenantId}`);
  else {
    if (!state.schemaOwnedByRole) changes.push(`schema: owner -> ${tenantId}`);
    if (state.schemaAcl.some((entry) => entry.startsWith('='))) changes.push('schema: revoke from PUBLIC');
  }
  const missing = TENANT_TABLES.filter((t) => !state.tables.includes(t));
  if (missing.length > 0) changes.push(`create tables ${missing.join(', ')}`);
  return changes;
}

/**
 * Brings role, settings, schema and tables to the tier in ONE transaction, sent as one round trip.
 * The tables are created as the tenant role, so it owns them and their sequences.
 * `password` is set when given (new role or a freshly created secret).
 */
export async function applyTenantDatabase(
  client: pg.ClientBase,
  tenantId: string,
  tier: Tier,
  state: TenantDatabaseState,
  password: string | undefined,
): Promise<void> {
  const role = pg.escapeIdentifier(tenantId);
  const limit = tier.database.connectionLimit;
  const pw = password === undefined ? '' : ` PASSWORD ${pg.escapeLiteral(password)}`;
  const statements = [
    'BEGIN',
    ...(state.roleExists
      ? [
          `ALTER ROLE ${role} LOGIN CONNECTION LIMIT ${limit}${pw}`,
          `GRANT ${pg.escapeIdentifier(TENANT_GROUP_ROLE)} TO ${role}`,
        ]
      : [
          `CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT ${limit}${pw}
             IN ROLE ${pg.escapeIdentifier(TENANT_GROUP_ROLE)}`,
        ]),
    ...Object.entries(roleSettings(tier)).map(([name, value]) => `ALTER ROLE ${role} SET ${name} = ${value}`),
    state.schemaExists
      ? `ALTER SCHEMA ${role} OWNER TO ${role}`
      : `CREATE SCHEMA ${role} AUTHORIZATION ${role}`,
    // A new schema grants PUBLIC nothing already; the explicit REVOKE writes that into its ACL.
    `REVOKE ALL ON SCHEMA ${role} FROM PUBLIC`,
    `SET LOCAL ROLE ${role}`,
    ...tenantSchemaStatements(tenantId),
    // A new schema starts at the latest version; an existing one is brought forward by `tenant migrate`.
    ...(state.schemaExists ? [] : shippedMigrations().map((m) => migrationSql(m, tenantId))),
    'RESET ROLE',
    `UPDATE control.tenants SET schema_version = GREATEST(schema_version, ${state.schemaExists ? TENANT_SCHEMA_VERSION : latestVersion(shippedMigrations())}), updated_at = now()
      WHERE id = ${pg.escapeLiteral(tenantId)}`,
    'COMMIT',
  ];
  try {
    await client.query(statements.join(';\n'));
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
