import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { roleSettings } from './tenant-database.ts';
import { TENANT_TABLES } from './tenant-schema.ts';
import { getTier } from './tiers.ts';

let fx: ProvisioningFixture;
let a: string;
let b: string;
let asA: pg.Client;
let asB: pg.Client;

/** Every attempt tenant A makes against tenant B or the platform; each must be refused. */
const attempts: { name: string; outcome: 'refused' | 'ALLOWED'; error?: string }[] = [];

/** insufficient_privilege: the refusal must come from the privilege system, not from a typo or a missing object. */
const INSUFFICIENT_PRIVILEGE = '42501';

function connectAs(role: string): pg.Client {
  const url = new URL(fx.cellUrl);
  url.username = role;
  return new pg.Client({ connectionString: url.toString() });
}

async function attempt(name: string, sql: string, client: pg.Client = asA): Promise<void> {
  try {
    await client.query(sql);
    attempts.push({ name, outcome: 'ALLOWED' });
  } catch (error) {
    const code = (error as pg.DatabaseError).code;
    attempts.push({ name, outcome: code === INSUFFICIENT_PRIVILEGE ? 'refused' : 'ALLOWED', error: code });
  }
}

beforeAll(async () => {
  fx = await createProvisioningFixture('isolation');
  a = fx.tenantId('iso-a');
  b = fx.tenantId('iso-b');
  await Promise.all([
    createTenant(fx.deps, { id: a, tier: 'pro', actor: 'test' }),
    createTenant(fx.deps, { id: b, tier: 'pro', actor: 'test' }),
  ]);
  // B has data, so a refused read is not mistaken for an empty one.
  await fx.cell.pool.query(
    `INSERT INTO ${pg.escapeIdentifier(b)}.agents (name, model) VALUES ('secret-agent', 'm')`,
  );
  asA = connectAs(a);
  asB = connectAs(b);
  await Promise.all([asA.connect(), asB.connect()]);
});

afterAll(async () => {
  await asA?.end().catch(() => {});
  await asB?.end().catch(() => {});
  await fx?.close();
});

describe('tenant A acting against tenant B and the platform', () => {
  test('A is really logged in as its own role and can use its own schema', async () => {
    const s = pg.escapeIdentifier(a);
    const { rows } = await asA.query('SELECT current_user AS who');
    expect(rows[0].who).toBe(a);
    await asA.query(`INSERT INTO ${s}.agents (name, model) VALUES ('mine', 'm')`);
    expect((await asA.query(`SELECT count(*)::int AS n FROM ${s}.agents`)).rows[0].n).toBe(1);
  });

  test('every attempt is refused', async () => {
    const sb = pg.escapeIdentifier(b);
    for (const table of TENANT_TABLES) {
      const t = `${sb}.${table}`;
      await attempt(`select ${table}`, `SELECT * FROM ${t}`);
      await attempt(`insert ${table}`, `INSERT INTO ${t} DEFAULT VALUES`);
      await attempt(`update ${table}`, `UPDATE ${t} SET id = id`);
      await attempt(`delete ${table}`, `DELETE FROM ${t}`);
      await attempt(`truncate ${table}`, `TRUNCATE ${t} CASCADE`);
      await attempt(`alter ${table}`, `ALTER TABLE ${t} ADD COLUMN stolen text`);
      await attempt(`drop ${table}`, `DROP TABLE ${t} CASCADE`);
      await attempt(`grant on ${table}`, `GRANT SELECT ON ${t} TO ${pg.escapeIdentifier(a)}`);
    }
    await attempt('create table in B schema', `CREATE TABLE ${sb}.planted (id int)`);
    await attempt(
      'create function in B schema',
      `CREATE FUNCTION ${sb}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
    );
    await attempt('drop B schema', `DROP SCHEMA ${sb} CASCADE`);
    await attempt('alter B schema owner', `ALTER SCHEMA ${sb} OWNER TO ${pg.escapeIdentifier(a)}`);
    await attempt('create table in public', 'CREATE TABLE public.planted (id int)');
    await attempt('create schema', 'CREATE SCHEMA planted');
    await attempt('create temp table', 'CREATE TEMP TABLE planted (id int)');
    // The catalog is another database (tenants/cells.test.ts); in the cell, the platform keeps its own records.
    await attempt('read cell.tenant_schemas', 'SELECT * FROM cell.tenant_schemas');
    await attempt('write cell.tenant_schemas', `UPDATE cell.tenant_schemas SET version = 0`);
    await attempt('SET ROLE to B', `SET ROLE ${pg.escapeIdentifier(b)}`);
    await attempt('SET SESSION AUTHORIZATION to B', `SET SESSION AUTHORIZATION ${pg.escapeIdentifier(b)}`);
    await attempt('alter role B', `ALTER ROLE ${pg.escapeIdentifier(b)} CONNECTION LIMIT -1`);
    await attempt('raise own connection limit', `ALTER ROLE ${pg.escapeIdentifier(a)} CONNECTION LIMIT -1`);
    await attempt('read pg_authid (password hashes)', 'SELECT rolname, rolpassword FROM pg_authid');
    await attempt('create role', 'CREATE ROLE planted');
    await attempt('create database', 'CREATE DATABASE planted');
    await attempt('pg_read_file', "SELECT pg_read_file('/etc/passwd')");
    await attempt('pg_read_binary_file', "SELECT pg_read_binary_file('/etc/passwd')");
    await attempt('pg_ls_dir', "SELECT pg_ls_dir('.')");
    await attempt('lo_import', "SELECT lo_import('/etc/passwd')");
    await attempt('COPY FROM file', `COPY ${pg.escapeIdentifier(a)}.agents (name) FROM '/etc/hostname'`);
    await attempt('COPY TO PROGRAM', "COPY (SELECT 1) TO PROGRAM 'true'");
    await attempt('ALTER SYSTEM', "ALTER SYSTEM SET log_statement = 'none'");
    await attempt('create extension', 'CREATE EXTENSION IF NOT EXISTS dblink');
    const pid = (await asB.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await attempt("pg_terminate_backend of B's backend", `SELECT pg_terminate_backend(${pid})`);
    await attempt("pg_cancel_backend of B's backend", `SELECT pg_cancel_backend(${pid})`);
    const terminated = (await asA.query('SELECT pg_terminate_backend($1) AS done', [pid]).catch(() => null))
      ?.rows[0]?.done;
    expect(terminated).toBeUndefined();
    // B's session survived every attempt.
    expect((await asB.query('SELECT 1 AS alive')).rows[0].alive).toBe(1);
    // B's data is intact.
    const { rows } = await fx.cell.pool.query(`SELECT count(*)::int AS n FROM ${sb}.agents`);
    expect(rows[0].n).toBe(1);

    const allowed = attempts.filter((x) => x.outcome === 'ALLOWED');
    console.log(
      `isolation: ${attempts.length} attempts by tenant A, ${attempts.length - allowed.length} refused`,
    );
    expect(allowed.map((x) => `${x.name} (${x.error ?? 'succeeded'})`)).toEqual([]);
    expect(attempts.length).toBeGreaterThanOrEqual(58);
  });

  test('role settings are readable by design in PostgreSQL, so they hold limits only, never secrets', async () => {
    // pg_roles.rolconfig and pg_db_role_setting are world-readable; pg_authid (passwords) is not.
    const { rows } = await asA.query(
      'SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1',
      [b],
    );
    const expected = Object.entries(roleSettings(getTier('pro'))).map(([k, v]) => `${k}=${v}`);
    expect(rows.flatMap((r) => r.setconfig).sort()).toEqual(expected.sort());
  });
});

describe('a pooled connection carries no role or search_path from one tenant to the next', () => {
  let pool: pg.Pool;

  beforeAll(() => {
    // One shared server connection, as behind PgBouncer or RDS Proxy in transaction mode.
    pool = new pg.Pool({ connectionString: fx.cellUrl, max: 1 });
  });

  afterAll(async () => {
    await pool.end();
  });

  const identity = async (client: pg.PoolClient) =>
    (await client.query("SELECT current_user AS who, current_setting('search_path') AS path")).rows[0];

  test('SET LOCAL inside a transaction ends with the transaction', async () => {
    const first = await pool.connect();
    const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await first.query('BEGIN');
    await first.query(`SET LOCAL ROLE ${pg.escapeIdentifier(a)}`);
    await first.query(`SET LOCAL search_path = ${pg.escapeIdentifier(a)}`);
    expect(await identity(first)).toEqual({ who: a, path: `"${a}"` });
    await first.query('COMMIT');
    first.release();

    const second = await pool.connect();
    expect((await second.query('SELECT pg_backend_pid() AS pid')).rows[0].pid).toBe(pid);
    expect(await identity(second)).toEqual({ who: 'postgres', path: '"$user", public' });
    await second.query('BEGIN');
    await second.query(`SET LOCAL ROLE ${pg.escapeIdentifier(b)}`);
    await expect(second.query(`SELECT * FROM ${pg.escapeIdentifier(a)}.agents`)).rejects.toThrow(
      /permission denied/,
    );
    await second.query('ROLLBACK');
    second.release();
  });

  test('a session-level SET does leak into the next client, and DISCARD ALL clears it', async () => {
    const first = await pool.connect();
    await first.query(`SET ROLE ${pg.escapeIdentifier(a)}`);
    await first.query(`SET search_path = ${pg.escapeIdentifier(a)}`);
    first.release();

    const second = await pool.connect();
    expect(await identity(second)).toEqual({ who: a, path: `"${a}"` });
    // RESET ROLE alone leaves the search_path behind; DISCARD ALL (PgBouncer's server_reset_query) clears both.
    await second.query('RESET ROLE');
    expect(await identity(second)).toEqual({ who: 'postgres', path: `"${a}"` });
    await second.query(`SET ROLE ${pg.escapeIdentifier(a)}`);
    await second.query('DISCARD ALL');
    expect(await identity(second)).toEqual({ who: 'postgres', path: '"$user", public' });
    second.release();
  });
});
