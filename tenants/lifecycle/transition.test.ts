import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditTrail } from '../audit.ts';
import { createCatalogDatabase, type TestDatabase, uniqueTenantId } from '../testing/pg.ts';
import { inTransaction } from './session.ts';
import { TenantStateError } from './status.ts';
import { LIFECYCLE_CHANNEL, transition } from './transition.ts';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('transition', 3));
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

async function tenantIn(status: string): Promise<string> {
  const id = uniqueTenantId('tr');
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id) SELECT $1, 'free', $2, id FROM control.cells LIMIT 1`,
    [id, status],
  );
  return id;
}

const statusOf = async (id: string) =>
  (await pool.query('SELECT status::text AS s FROM control.tenants WHERE id = $1', [id])).rows[0].s;

describe('transition', () => {
  test('changes the status, writes the audit row and notifies listeners on commit, together', async () => {
    const id = await tenantIn('active');
    const listener = await pool.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query(`LISTEN ${LIFECYCLE_CHANNEL}`);
    await inTransaction(pool, (client) =>
      transition(client, {
        tenantId: id,
        from: 'active',
        to: 'suspended',
        actor: 'sre',
        reason: 'r',
        evidence: { n: 1 },
      }),
    );
    await listener.query('SELECT 1');
    await listener.query(`UNLISTEN ${LIFECYCLE_CHANNEL}`);
    listener.release();
    expect(await statusOf(id)).toBe('suspended');
    expect(payloads.map((p) => JSON.parse(p))).toEqual([
      { tenantId: id, status: 'suspended', action: 'tenant.suspended' },
    ]);
    expect((await auditTrail(pool, id)).at(-1)).toMatchObject({
      action: 'tenant.suspended',
      fromStatus: 'active',
      toStatus: 'suspended',
      actor: 'sre',
      reason: 'r',
      evidence: { n: 1 },
    });
  });

  test('a move the table does not allow is refused before anything is written', async () => {
    const id = await tenantIn('archived');
    await expect(
      inTransaction(pool, (client) =>
        transition(client, { tenantId: id, from: 'archived', to: 'active', actor: 'sre' }),
      ),
    ).rejects.toThrow(new TenantStateError(`tenant '${id}' cannot go from archived to active`));
    expect(await auditTrail(pool, id)).toEqual([]);
  });

  test('a tenant no longer in the expected status is refused, with no audit row and no notification', async () => {
    const id = await tenantIn('limited');
    await expect(
      inTransaction(pool, (client) =>
        transition(client, { tenantId: id, from: 'active', to: 'suspended', actor: 'sre' }),
      ),
    ).rejects.toThrow(`tenant '${id}' is no longer active; nothing changed`);
    expect(await statusOf(id)).toBe('limited');
    expect(await auditTrail(pool, id)).toEqual([]);
  });
});
