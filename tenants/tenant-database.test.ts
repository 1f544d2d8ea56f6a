import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cellDirectory } from './cells.ts';
import { backendsPastLimit, enforceDatabaseLimits, watchDatabaseLimits } from './db-limits-watchdog.ts';
import { expectedFailure } from './format.ts';
import { createTenant, getTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import {
  applyTenantDatabase,
  inspectTenantDatabase,
  roleSettings,
  TenantRoleConflictError,
} from './tenant-database.ts';
import { type MotoServer, startMoto } from './testing/moto.ts';
import { getTier } from './tiers.ts';

let fx: ProvisioningFixture;
let moto: MotoServer;
const clients: pg.Client[] = [];

const INSUFFICIENT_PRIVILEGE = '42501';
const QUERY_CANCELED = '57014';

/** A session logged in as the role itself (trust auth), never SET ROLE from a superuser session. */
async function connectAs(role: string): Promise<pg.Client> {
  const url = new URL(fx.cellUrl);
  url.username = role;
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

async function sqlState(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'allowed';
  } catch (error) {
    return (error as pg.DatabaseError).code ?? String(error);
  }
}

/** A pool on the test cell that keeps every statement text it sends. */
function capturingPool(): { pool: pg.Pool; statements: string[] } {
  const statements: string[] = [];
  const pool = new pg.Pool({ connectionString: fx.cellUrl, max: 4 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      statements.push(typeof first === 'string' ? first : String((first as { text?: string })?.text));
      return query(...args);
    };
  });
  return { pool, statements };
}

beforeAll(async () => {
  [fx, moto] = await Promise.all([createProvisioningFixture('tenant_database', 6), startMoto()]);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await moto?.stop();
  await fx?.close();
});

describe('a role of the tenant name made before onboarding', () => {
  test('with CREATEROLE, BYPASSRLS and pg_read_all_data is refused in one line and nothing is created', async () => {
    const id = fx.tenantId('squat');
    const role = pg.escapeIdentifier(id);
    await fx.pool.query(`CREATE ROLE ${role} LOGIN CREATEROLE BYPASSRLS`);
    await fx.pool.query(`GRANT pg_read_all_data TO ${role}`);

    const attempt = createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    await expect(attempt).rejects.toThrow(TenantRoleConflictError);
    const line = expectedFailure(await attempt.catch((e: unknown) => e));
    expect(line).toBe(
      `role '${id}' already exists and was not created by onboarding: drop or rename it, then run create again`,
    );
    expect(await getTenant(fx.pool, id)).toBeNull();
    const state = await inspectTenantDatabase(fx.cell.pool, id, null);
    expect(state.schemaExists).toBe(false);
    expect(state.inGroup).toBe(false);
  });
});

describe('a role onboarding created and someone changed since', () => {
  test('every run resets its attributes, memberships and settings', async () => {
    const id = fx.tenantId('drift');
    const outsider = fx.tenantId('outsider');
    const role = pg.escapeIdentifier(id);
    const tier = getTier('free');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    await fx.pool.query(
      `ALTER ROLE ${role} CREATEROLE CREATEDB BYPASSRLS REPLICATION PASSWORD 'kept-secret'`,
    );
    await fx.pool.query(`GRANT pg_read_all_data TO ${role}`);
    await fx.pool.query(`CREATE ROLE ${pg.escapeIdentifier(outsider)} LOGIN`);
    await fx.pool.query(`GRANT ${role} TO ${pg.escapeIdentifier(outsider)}`);
    // The tenant lifts its own limits on its role, globally and in this database.
    const asTenant = await connectAs(id);
    await asTenant.query(`ALTER ROLE ${role} SET statement_timeout = 0`);
    await asTenant.query(`ALTER ROLE ${role} SET idle_in_transaction_session_timeout = 0`);
    await asTenant.query(`ALTER ROLE ${role} SET work_mem = '1GB'`);
    await asTenant.query(
      `ALTER ROLE ${role} IN DATABASE ${pg.escapeIdentifier(fx.cell.connection.database)} SET statement_timeout = 0`,
    );
    expect(await sqlState(asTenant, 'SELECT count(*) FROM cell.tenant_schemas')).toBe('allowed');
    // The tier's connection limit leaves no room for this session and the readiness probe together.
    await asTenant.end();

    const rerun = await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    expect(rerun.changed).toBe(true);

    const state = await inspectTenantDatabase(fx.cell.pool, id, rerun.tenant!.roleOid);
    expect(state.roleIsOurs).toBe(true);
    expect(state.elevated).toEqual([]);
    expect(state.foreignMemberships).toEqual([]);
    expect(state.members).toEqual([]);
    expect(state.inGroup).toBe(true);
    expect(state.settings).toEqual(roleSettings(tier));
    expect(state.databaseSettings).toEqual([]);
    const { rows } = await fx.pool.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [id]);
    expect(rows[0].rolpassword).toBeNull();

    const fresh = await connectAs(id);
    expect(await sqlState(fresh, 'SELECT count(*) FROM cell.tenant_schemas')).toBe(INSUFFICIENT_PRIVILEGE);
    expect((await fresh.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('5s');
    expect((await fresh.query('SHOW work_mem')).rows[0].work_mem).not.toBe('1GB');

    const third = await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    expect(third.steps.find((s) => s.step === 'database')?.action).toBe('unchanged');
  });
});

describe('tenant roles and passwords', () => {
  test('onboarding with AWS sends no password to the server and the role has none', async () => {
    const id = fx.tenantId('nopass');
    const { pool, statements } = capturingPool();
    try {
      const result = await createTenant(
        { ...fx.deps, cells: cellDirectory([{ ...fx.cell, pool }]), aws: { enabled: true } },
        { id, tier: 'free', actor: 'test' },
      );
      expect(result.ready).toBe(true);
    } finally {
      await pool.end();
    }
    const ddl = statements.filter((s) => s.includes('CREATE ROLE'));
    expect(ddl).toHaveLength(1);
    expect(statements.filter((s) => /PASSWORD\s+'/i.test(s))).toEqual([]);
    const { rows } = await fx.pool.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].rolpassword).toBeNull();
  });

  test('a failed provisioning batch carries no password in its statement or its error', async () => {
    const id = fx.tenantId('failbatch');
    const created = await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    const { pool, statements } = capturingPool();
    const client = await pool.connect();
    try {
      const state = await inspectTenantDatabase(client, id, created.tenant!.roleOid);
      // A stale view of the database (the role looks missing) makes CREATE ROLE fail inside the batch.
      const error = await applyTenantDatabase(
        client,
        id,
        getTier('free'),
        { ...state, roleExists: false },
        { record: async () => {} },
      ).catch((e: unknown) => e as Error);
      expect((error as pg.DatabaseError).code).toBe('42710');
      expect(String((error as Error).message)).not.toMatch(/password/i);
    } finally {
      client.release();
      await pool.end();
    }
    const batch = statements.find((s) => s.includes('CREATE ROLE'));
    expect(batch).toBeDefined();
    expect(batch).not.toMatch(/PASSWORD/i);
  });
});

describe('large objects', () => {
  test.each([
    ['lo_create', 'SELECT lo_create(0)'],
    ['lo_creat', 'SELECT lo_creat(-1)'],
    ['lo_from_bytea', "SELECT lo_from_bytea(0, 'tenant data')"],
  ])('a tenant role cannot create one with %s', async (_name, sql) => {
    const id = fx.tenantId('lobj');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    const asTenant = await connectAs(id);
    expect(await sqlState(asTenant, sql)).toBe(INSUFFICIENT_PRIVILEGE);
    const { rows } = await fx.cell.pool.query(
      'SELECT count(*)::int AS n FROM pg_largeobject_metadata WHERE lomowner = (SELECT oid FROM pg_roles WHERE rolname = $1)',
      [id],
    );
    expect(rows[0].n).toBe(0);
  });
});

describe('database limits watchdog', () => {
  test('a tenant that sets statement_timeout = 0 on its role and session is cancelled past its tier limit', async () => {
    const id = fx.tenantId('sleeper');
    const role = pg.escapeIdentifier(id);
    const limitMs = getTier('free').database.statementTimeoutMs;
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    const setup = await connectAs(id);
    await setup.query(`ALTER ROLE ${role} SET statement_timeout = 0`);
    const asTenant = await connectAs(id);
    await asTenant.query('SET statement_timeout = 0');
    expect((await asTenant.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('0');

    const stop = new AbortController();
    const passes: number[] = [];
    const watching = watchDatabaseLimits(
      { catalog: fx.pool, cell: fx.cell.pool },
      {
        intervalMs: 100,
        graceMs: 200,
        signal: stop.signal,
        onPass: (actions) => passes.push(actions.filter((a) => a.tenant === id && a.signalled).length),
      },
    );
    const started = Date.now();
    const outcome = await asTenant
      .query(`SELECT pg_sleep(${(limitMs * 3) / 1000})`)
      .then(() => 'finished')
      .catch((e: pg.DatabaseError) => e.code);
    const elapsed = Date.now() - started;
    stop.abort();
    await watching;

    expect(outcome).toBe(QUERY_CANCELED);
    expect(elapsed).toBeGreaterThanOrEqual(limitMs);
    expect(elapsed).toBeLessThan(limitMs * 2);
    expect(passes.some((n) => n === 1)).toBe(true);
    // The session survives a cancel.
    expect((await asTenant.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  test('a dry run lists the backend and signals nothing', async () => {
    const id = fx.tenantId('dryrun');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    const asTenant = await connectAs(id);
    await asTenant.query('SET statement_timeout = 0');
    const sleeping = asTenant.query('SELECT pg_sleep(1.5)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A negative grace puts a 300 ms old statement past a 5 s limit without waiting 5 s.
    const limitMs = getTier('free').database.statementTimeoutMs;
    const actions = await enforceDatabaseLimits(
      { catalog: fx.pool, cell: fx.cell.pool },
      { dryRun: true, graceMs: -limitMs },
    );
    expect(actions.filter((a) => a.tenant === id)).toMatchObject([
      { tenant: id, tier: 'free', action: 'cancel', signalled: false, limitMs },
    ]);
    await expect(sleeping).resolves.toBeDefined();
  });

  test.each([
    ['active past the statement limit', 'active', 5_201, 0, 'cancel'],
    ['active within the limit and grace', 'active', 5_100, 0, undefined],
    ['idle in transaction past the idle limit', 'idle in transaction', 0, 10_201, 'terminate'],
    ['aborted transaction left idle', 'idle in transaction (aborted)', 0, 10_201, 'terminate'],
    ['idle in transaction within the limit', 'idle in transaction', 20_000, 10_000, undefined],
  ])('%s', (_name, state, queryMs, stateMs, expected) => {
    const actions = backendsPastLimit(
      [
        {
          pid: 7,
          tenant: 'acme',
          tier: 'free',
          state,
          queryMs,
          stateMs,
          queryStart: '2026-12-01 22:00:00.000001+00',
        },
      ],
      200,
    );
    expect(actions[0]?.action).toBe(expected);
  });
});
