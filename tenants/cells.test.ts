import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { migrateCatalog } from './catalog/migrate.ts';
import { TENANT_LOCK_CLASS } from './lifecycle/session.ts';
import { LIFECYCLE_CHANNEL } from './lifecycle/transition.ts';
import { createTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { resumeTenant, suspendTenant } from './suspension.ts';

// The attacks below were found against the layout where tenant schemas lived in the catalog's database.
// Every session here is logged in as the tenant role itself (trust auth), never SET ROLE from a superuser.

/** node-pg-migrate's advisory lock (PG_MIGRATE_LOCK_ID); held elsewhere, the catalog migration refuses to run. */
const MIGRATION_LIBRARY_LOCK = '7241865325823964';
const INSUFFICIENT_PRIVILEGE = '42501';

let fx: ProvisioningFixture;
let attacker: string;
let victim: string;
let databases: Record<string, string>;
const sessions: pg.Client[] = [];

function session(user: string, database: string): pg.Client {
  const { host, port } = fx.cell.connection;
  const client = new pg.Client({ host, port, database, user });
  client.on('error', () => {});
  sessions.push(client);
  return client;
}

/** The attacker's sessions on every database of the server it manages to connect to. */
async function reachable(): Promise<pg.Client[]> {
  const connected: pg.Client[] = [];
  for (const database of Object.values(databases)) {
    const client = session(attacker, database);
    if (
      await client.connect().then(
        () => true,
        () => false,
      )
    )
      connected.push(client);
  }
  return connected;
}

const within = <T>(ms: number, work: Promise<T>, what: string) =>
  Promise.race([
    work,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms),
    ),
  ]);

beforeAll(async () => {
  fx = await createProvisioningFixture('cells', 6, { cells: 2 });
  attacker = fx.tenantId('cel-attacker');
  victim = fx.tenantId('cel-victim');
  await createTenant(fx.deps, { id: attacker, tier: 'pro', actor: 'test' });
  await createTenant(fx.deps, { id: victim, tier: 'pro', actor: 'test' });
  databases = {
    catalog: fx.database.name,
    'own cell': fx.cells.cell('cell-1').connection.database,
    'other cell': fx.cells.cell('cell-2').connection.database,
    postgres: 'postgres',
    template1: 'template1',
  };
}, 30_000);

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => {})));
  await fx?.close();
});

describe('a tenant role reaches its own cell and nothing else', () => {
  test('the tenants were placed in different cells', async () => {
    const { rows } = await fx.pool.query(
      'SELECT id, cell_id FROM control.tenants WHERE id = ANY($1) ORDER BY id',
      [[attacker, victim]],
    );
    expect(Object.fromEntries(rows.map((r) => [r.id, r.cell_id]))).toEqual({
      [attacker]: 'cell-1',
      [victim]: 'cell-2',
    });
  });

  test('it connects to its own cell, and is refused the catalog, the other cell, postgres and template1', async () => {
    const outcomes: Record<string, string> = {};
    for (const [name, database] of Object.entries(databases)) {
      outcomes[name] = await session(attacker, database)
        .connect()
        .then(
          () => 'connected',
          (error: pg.DatabaseError) => error.code ?? error.message,
        );
    }
    expect(outcomes).toEqual({
      catalog: INSUFFICIENT_PRIVILEGE,
      'own cell': 'connected',
      'other cell': INSUFFICIENT_PRIVILEGE,
      postgres: INSUFFICIENT_PRIVILEGE,
      template1: INSUFFICIENT_PRIVILEGE,
    });
  });
});

describe("a tenant cannot reach the platform's locks or its NOTIFY channel", () => {
  test("holding another tenant's advisory lock wherever it can connect does not hang that tenant's suspension", async () => {
    const held = await reachable();
    expect(held.length).toBeGreaterThan(0);
    for (const client of held) {
      await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [TENANT_LOCK_CLASS, victim]);
    }
    const by = { actor: 'test', reason: 'attack test' };
    const suspended = await within(5_000, suspendTenant(fx.deps, victim, by), 'suspension');
    expect(suspended).toMatchObject({ changed: true, toStatus: 'suspended' });
    await within(5_000, resumeTenant(fx.deps, victim, by), 'resume');
    for (const client of held) await client.end();
  });

  test("holding the migration library's lock wherever it can connect does not stop the catalog from migrating", async () => {
    const held = await reachable();
    for (const client of held) await client.query(`SELECT pg_advisory_lock(${MIGRATION_LIBRARY_LOCK})`);
    const catalog = await fx.pool.connect();
    try {
      await expect(migrateCatalog(catalog)).resolves.toBeDefined();
    } finally {
      catalog.release();
      for (const client of held) await client.end();
    }
  });

  test('a forged tenant_lifecycle NOTIFY never reaches a listener on the catalog; a real transition does', async () => {
    const listener = session('postgres', databases.catalog!);
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query(`LISTEN ${LIFECYCLE_CHANNEL}`);

    const forged = JSON.stringify({ tenantId: victim, status: 'active', action: 'tenant.resumed' });
    for (const client of await reachable()) {
      await client.query('SELECT pg_notify($1, $2)', [LIFECYCLE_CHANNEL, forged]);
      await client.end();
    }
    await suspendTenant(fx.deps, victim, { actor: 'test', reason: 'real transition' });
    for (let i = 0; i < 100 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(heard.map((p) => JSON.parse(p))).toEqual([
      { tenantId: victim, status: 'suspended', action: 'tenant.suspended' },
    ]);
  });
});
