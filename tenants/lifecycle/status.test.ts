import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCatalogDatabase, type TestDatabase } from '../testing/pg.ts';
import { canTransition, statusesLeadingTo, TENANT_STATUSES, TRANSITIONS } from './status.ts';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('status', 1));
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

describe('tenant statuses', () => {
  test('are the SQL enum control.tenant_status, in its order', async () => {
    const { rows } = await pool.query<{ s: string }>(
      'SELECT unnest(enum_range(NULL::control.tenant_status))::text AS s',
    );
    expect(rows.map((r) => r.s)).toEqual([...TENANT_STATUSES]);
  });

  test('the transition table names only known statuses, and every status but provisioning is reachable', () => {
    for (const [from, targets] of Object.entries(TRANSITIONS)) {
      expect(TENANT_STATUSES).toContain(from);
      for (const to of targets) expect(TENANT_STATUSES).toContain(to);
    }
    for (const status of TENANT_STATUSES.filter((s) => s !== 'provisioning')) {
      expect(statusesLeadingTo(status).length).toBeGreaterThan(0);
    }
  });

  test.each([
    ['provisioning', 'active', true],
    ['active', 'suspended', true],
    ['suspended', 'limited', false],
    ['archived', 'active', false],
    ['provisioning', 'offboarding', false],
    ['offboarding', 'active', false],
  ] as const)('%s -> %s allowed: %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });
});
