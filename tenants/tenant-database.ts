import pg from 'pg';
import { CELL_SCHEMA, cellGroupRole } from './cells.ts';
import { latestVersion, migrationSql, shippedMigrations } from './migrations/files.ts';
import { TENANT_SCHEMA_VERSION, TENANT_TABLES, tenantSchemaStatements } from './tenant-schema.ts';
import type { Tier } from './tiers.ts';

/**
 * RDS's role for IAM database authentication: tenants log in with an IAM token through RDS Proxy, never a
 * password (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.DBAccounts.html).
 * It exists only on RDS; elsewhere (trust auth locally) it is not granted.
 */
export const RDS_IAM_ROLE = 'rds_iam';

/** Role attributes a tenant role must never hold, as pg_roles names them and ALTER ROLE clears them. */
const ELEVATED_ATTRIBUTES = {
  rolsuper: 'NOSUPERUSER',
  rolcreatedb: 'NOCREATEDB',
  rolcreaterole: 'NOCREATEROLE',
  rolbypassrls: 'NOBYPASSRLS',
  rolreplication: 'NOREPLICATION',
} as const;
type ElevatedAttribute = keyof typeof ELEVATED_ATTRIBUTES;

/** A role of a tenant's name exists but onboarding did not create it; it is never adopted. */
export class TenantRoleConflictError extends Error {
  override readonly name = 'TenantRoleConflictError';
  constructor(readonly tenantId: string) {
    super(
      `role '${tenantId}' already exists and was not created by onboarding: drop or rename it, then run create again`,
    );
  }
}

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

/** What exists in PostgreSQL for one tenant. */
export interface TenantDatabaseState {
  readonly roleExists: boolean;
  /** True when the role is the one onboarding created (its oid is recorded in control.tenant_roles). */
  readonly roleIsOurs: boolean;
  /** The role's oid on the cell's server; null when it does not exist. */
  readonly roleOid: number | null;
  readonly canLogin: boolean;
  readonly connectionLimit: number | null;
  /** Attributes the role holds that a tenant must not, e.g. `NOBYPASSRLS` for rolbypassrls. */
  readonly elevated: string[];
  /** Global role settings, parsed from rolconfig. */
  readonly settings: Record<string, string>;
  /** The database inspected (the tenant's cell). */
  readonly database: string;
  /** The cell's group role (CONNECT on the cell only). */
  readonly group: string;
  /** Settings of the role in this database only (ALTER ROLE … IN DATABASE), which win over the global ones. */
  readonly databaseSettings: string[];
  readonly inGroup: boolean;
  /** Roles this role is a member of, other than its cell's group and rds_iam. */
  readonly foreignMemberships: string[];
  /** Roles that are members of this role (they could act as the tenant). */
  readonly members: string[];
  /** Whether the server has rds_iam (RDS), and whether the role holds it. */
  readonly iamRoleExists: boolean;
  readonly hasIamRole: boolean;
  readonly schemaExists: boolean;
  readonly schemaOwnedByRole: boolean;
  /** The schema's ACL, e.g. `{acme=UC/acme}`. */
  readonly schemaAcl: string[];
  readonly tables: string[];
  /** The schema's version as the cell recorded it (cell.tenant_schemas); null when not recorded. */
  readonly cellVersion: number | null;
}

/**
 * One round trip to the tenant's cell: the role, its attributes, settings and memberships, the schema, its
 * ACL, its tables and its recorded version. `recordedRoleOid` is the catalog's control.tenant_roles entry.
 */
export async function inspectTenantDatabase(
  cell: pg.ClientBase | pg.Pool,
  tenantId: string,
  recordedRoleOid: number | null,
): Promise<TenantDatabaseState> {
  const { rows } = await cell.query<
    {
      database: string;
      role_oid: number | null;
      rolcanlogin: boolean | null;
      rolconnlimit: number | null;
      config: string[];
      database_config: string[];
      member_of: string[];
      members: string[];
      iam_role_exists: boolean;
      schema_exists: boolean;
      schema_owned: boolean | null;
      schema_acl: string[] | null;
      tables: string[];
      cell_version: number | null;
    } & Record<ElevatedAttribute, boolean | null>
  >({
    // Named: the statement is parsed and planned once per connection, not once per tenant.
    name: 'tenant-database-inspect',
    text: `SELECT current_database() AS database, r.oid::int8 AS role_oid,
            (SELECT t.version FROM ${CELL_SCHEMA}.tenant_schemas t WHERE t.tenant_id = x.id) AS cell_version,
            r.rolcanlogin, r.rolconnlimit, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolbypassrls,
            r.rolreplication,
            coalesce(r.rolconfig, '{}') AS config,
            coalesce((SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                       WHERE s.setrole = r.oid AND d.datname = current_database()), '{}') AS database_config,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = r.oid ORDER BY g.rolname) AS member_of,
            ARRAY(SELECT u.rolname::text FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
                   WHERE m.roleid = r.oid ORDER BY u.rolname) AS members,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3) AS iam_role_exists,
            n.oid IS NOT NULL AS schema_exists,
            n.nspowner = r.oid AS schema_owned,
            n.nspacl::text[] AS schema_acl,
            ARRAY(SELECT c.relname::text FROM pg_class c
                   WHERE c.relname = ANY ($2::name[]) AND c.relnamespace = n.oid AND c.relkind = 'r'
                   ORDER BY c.relname) AS tables
       FROM (SELECT $1::name AS id) x
       LEFT JOIN pg_roles r ON r.rolname = x.id
       LEFT JOIN pg_namespace n ON n.nspname = x.id`,
    // Looked up by name so the (relname, relnamespace) index serves it: no pg_class scan per tenant.
    values: [tenantId, TENANT_TABLES, RDS_IAM_ROLE],
  });
  const row = rows[0]!;
  const group = cellGroupRole(row.database);
  const ours = new Set([group, RDS_IAM_ROLE]);
  const roleOid = row.role_oid === null ? null : Number(row.role_oid);
  return {
    database: row.database,
    group,
    roleExists: roleOid !== null,
    roleIsOurs: roleOid !== null && roleOid === recordedRoleOid,
    roleOid,
    canLogin: row.rolcanlogin === true,
    connectionLimit: row.rolconnlimit,
    elevated: (Object.keys(ELEVATED_ATTRIBUTES) as ElevatedAttribute[])
      .filter((attribute) => row[attribute] === true)
      .map((attribute) => ELEVATED_ATTRIBUTES[attribute]),
    settings: Object.fromEntries(
      row.config.map((entry) => {
        const at = entry.indexOf('=');
        return [entry.slice(0, at), entry.slice(at + 1)];
      }),
    ),
    databaseSettings: row.database_config,
    inGroup: row.member_of.includes(group),
    foreignMemberships: row.member_of.filter((name) => !ours.has(name)),
    members: row.members,
    iamRoleExists: row.iam_role_exists,
    hasIamRole: row.member_of.includes(RDS_IAM_ROLE),
    schemaExists: row.schema_exists,
    schemaOwnedByRole: row.schema_owned === true,
    schemaAcl: row.schema_acl ?? [],
    tables: row.tables,
    cellVersion: row.cell_version,
  };
}

/** Refuses a same-named role that onboarding did not create, before anything is changed. */
export function assertRoleIsOurs(state: TenantDatabaseState, tenantId: string): void {
  if (state.roleExists && !state.roleIsOurs) throw new TenantRoleConflictError(tenantId);
}

/**
 * The difference between what exists and what the tier wants, in words; empty when in sync.
 * Throws TenantRoleConflictError for a role onboarding did not create.
 */
export function databaseChanges(state: TenantDatabaseState, tenantId: string, tier: Tier): string[] {
  assertRoleIsOurs(state, tenantId);
  const changes: string[] = [];
  const wanted = roleSettings(tier);
  if (!state.roleExists) {
    changes.push(`create role ${tenantId} (LOGIN, CONNECTION LIMIT ${tier.database.connectionLimit})`);
  } else {
    if (!state.canLogin) changes.push('role: enable LOGIN');
    if (state.connectionLimit !== tier.database.connectionLimit) {
      changes.push(`role: connection limit ${state.connectionLimit} -> ${tier.database.connectionLimit}`);
    }
    if (state.elevated.length > 0) changes.push(`role: ${state.elevated.join(' ')}`);
    if (!state.inGroup) changes.push(`role: join ${state.group}`);
    if (state.iamRoleExists && !state.hasIamRole) changes.push(`role: join ${RDS_IAM_ROLE}`);
    for (const name of state.foreignMemberships) changes.push(`role: leave ${name}`);
    for (const name of state.members) changes.push(`role: remove member ${name}`);
    for (const name of Object.keys(state.settings).filter((n) => !(n in wanted)))
      changes.push(`role: reset ${name}`);
    if (state.databaseSettings.length > 0)
      changes.push(`role: reset settings in this database (${state.databaseSettings.join(', ')})`);
  }
  for (const [name, value] of Object.entries(wanted)) {
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
  if (state.schemaExists && state.cellVersion === null) changes.push('record the schema version in the cell');
  return changes;
}

/** Statements that bring an existing role of ours back to a plain tenant role: attributes, memberships, settings. */
function resetRoleStatements(role: string, state: TenantDatabaseState, tier: Tier): string[] {
  const wanted = roleSettings(tier);
  // Only drifted attributes are named: NOSUPERUSER, NOREPLICATION and NOBYPASSRLS need a real superuser even
  // when nothing changes, which the RDS master user is not.
  const attributes = state.elevated.map((a) => ` ${a}`).join('');
  return [
    `ALTER ROLE ${role} LOGIN CONNECTION LIMIT ${tier.database.connectionLimit}${attributes} PASSWORD NULL`,
    ...state.foreignMemberships.map((name) => `REVOKE ${pg.escapeIdentifier(name)} FROM ${role}`),
    ...state.members.map((name) => `REVOKE ${role} FROM ${pg.escapeIdentifier(name)}`),
    `GRANT ${pg.escapeIdentifier(state.group)} TO ${role}`,
    ...Object.keys(state.settings)
      .filter((name) => !(name in wanted))
      .map((name) => `ALTER ROLE ${role} RESET ${pg.escapeIdentifier(name)}`),
    ...(state.databaseSettings.length > 0
      ? [`ALTER ROLE ${role} IN DATABASE ${pg.escapeIdentifier(state.database)} RESET ALL`]
      : []),
  ];
}

/** What the catalog records once the cell's transaction has done its work. */
export interface CellRecord {
  /** The tenant role's oid on the cell's server (control.tenant_roles). */
  readonly roleOid: number;
  /** The tenant schema's version (control.tenants.schema_version). */
  readonly version: number;
}

/**
 * Brings role, settings, schema and tables to the tier in ONE transaction on the cell, sent as one round
 * trip. Before it commits, `record` writes the role's oid and the schema version to the catalog: a crash
 * after that leaves the catalog naming a role the cell rolled back, and the rerun creates it again and
 * records the new oid; the reverse order would leave a role the catalog does not know as ours.
 * An existing role is reset to a plain tenant role on every run. The role has no password: on RDS it logs in
 * with IAM (rds_iam), locally with trust auth, so no secret ever reaches the server or its log.
 * The tables are created as the tenant role, so it owns them and their sequences.
 */
export async function applyTenantDatabase(
  cell: pg.ClientBase,
  tenantId: string,
  tier: Tier,
  state: TenantDatabaseState,
  options: {
    /** The version the catalog knows for an existing schema. @default 1 */
    readonly knownVersion?: number;
    readonly record: (record: CellRecord) => Promise<void>;
  },
): Promise<void> {
  assertRoleIsOurs(state, tenantId);
  const role = pg.escapeIdentifier(tenantId);
  const id = pg.escapeLiteral(tenantId);
  const version = state.schemaExists
    ? Math.max(options.knownVersion ?? TENANT_SCHEMA_VERSION, state.cellVersion ?? 0, TENANT_SCHEMA_VERSION)
    : latestVersion(shippedMigrations());
  const statements = [
    'BEGIN',
    ...(state.roleExists
      ? resetRoleStatements(role, state, tier)
      : [
          `CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION
             CONNECTION LIMIT ${tier.database.connectionLimit} IN ROLE ${pg.escapeIdentifier(state.group)}`,
        ]),
    ...(state.iamRoleExists && !state.hasIamRole
      ? [`GRANT ${pg.escapeIdentifier(RDS_IAM_ROLE)} TO ${role}`]
      : []),
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
    `INSERT INTO ${CELL_SCHEMA}.tenant_schemas (tenant_id, version) VALUES (${id}, ${version})
       ON CONFLICT (tenant_id) DO UPDATE SET version = GREATEST(${CELL_SCHEMA}.tenant_schemas.version, EXCLUDED.version),
         updated_at = now()`,
    `SELECT (SELECT oid::int8 FROM pg_roles WHERE rolname = ${id}) AS role_oid,
            (SELECT version FROM ${CELL_SCHEMA}.tenant_schemas WHERE tenant_id = ${id}) AS version`,
  ];
  try {
    const results = (await cell.query(statements.join(';\n'))) as unknown as pg.QueryResult[];
    const row = results[results.length - 1]!.rows[0] as { role_oid: string; version: number };
    await options.record({ roleOid: Number(row.role_oid), version: row.version });
    await cell.query('COMMIT');
  } catch (error) {
    await cell.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** The catalog side of applyTenantDatabase: the role's oid and the schema version. */
export function recordInCatalog(catalog: pg.ClientBase, tenantId: string) {
  return async ({ roleOid, version }: CellRecord) => {
    await catalog.query({
      name: 'tenant-database-record-in-catalog',
      text: `WITH role AS (
         INSERT INTO control.tenant_roles (tenant_id, role_oid) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET role_oid = EXCLUDED.role_oid, created_at = now()
           WHERE control.tenant_roles.role_oid IS DISTINCT FROM EXCLUDED.role_oid)
       UPDATE control.tenants SET schema_version = GREATEST(schema_version, $3), updated_at = now() WHERE id = $1`,
      values: [tenantId, roleOid, version],
    });
  };
}
