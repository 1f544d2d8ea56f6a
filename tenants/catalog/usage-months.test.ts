import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createMetrics } from '../../control-plane/metrics.ts';
import { UsageBatcher } from '../../control-plane/usage-batcher.ts';
import {
  createCatalogDatabase,
  insertCatalogTenants,
  type TestDatabase,
  uniqueTenantId,
} from '../testing/pg.ts';

let db: TestDatabase;
let pool: pg.Pool;
const a = uniqueTenantId('rollup-a');
const b = uniqueTenantId('rollup-b');

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('usage_months', 4));
  await insertCatalogTenants(pool, [a, b]);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

/** The rollup next to the sum it stands for, per tenant and month. */
async function rollupAndSums() {
  const sql = (from: string) =>
    `SELECT to_char(month, 'YYYY-MM') AS month, tenant_id, agent_minutes::float8 AS minutes, api_calls::int AS calls
       FROM ${from} ORDER BY month, tenant_id`;
  const [rollup, sums] = await Promise.all([
    pool.query(sql('control.usage_months WHERE agent_minutes <> 0 OR api_calls <> 0')),
    pool.query(
      sql(`(SELECT date_trunc('month', day)::date AS month, tenant_id, sum(agent_minutes) AS agent_minutes,
                   sum(api_calls) AS api_calls FROM control.usage GROUP BY 1, 2) s`),
    ),
  ]);
  return { rollup: rollup.rows, sums: sums.rows };
}

describe('control.usage_months follows control.usage', () => {
  test('through the ingest: fresh days insert, repeated days add, and a month boundary splits', async () => {
    const batcher = new UsageBatcher(pool, {
      maxReports: 1_000,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    const report = (tenantId: string, day: string, agentMinutes: number, apiCalls: number) =>
      batcher.record({
        tenantId,
        idempotencyKey: null,
        day,
        hour: `${day}T10:00:00.000Z`,
        agentMinutes,
        apiCalls,
      });
    await Promise.all([
      report(a, '2026-11-30', 10, 100),
      report(a, '2026-12-01', 1.5, 7),
      report(b, '2026-12-01', 2, 3),
    ]);
    // Same days again: ON CONFLICT updates the daily rows, and the rollup adds only the difference.
    await Promise.all([report(a, '2026-12-01', 0.25, 1), report(b, '2026-12-02', 4, 5)]);
    const { rollup, sums } = await rollupAndSums();
    expect(rollup).toEqual(sums);
    expect(rollup).toEqual([
      { month: '2026-11', tenant_id: a, minutes: 10, calls: 100 },
      { month: '2026-12', tenant_id: a, minutes: 1.75, calls: 8 },
      { month: '2026-12', tenant_id: b, minutes: 6, calls: 8 },
    ]);
  });

  test('an update that moves usage between days or tenants, and a delete, keep it equal to the sums', async () => {
    await pool.query(
      `UPDATE control.usage SET day = '2026-12-15', agent_minutes = agent_minutes * 2 WHERE tenant_id = $1 AND day = '2026-11-30'`,
      [a],
    );
    await pool.query(`UPDATE control.usage SET tenant_id = $1 WHERE tenant_id = $2 AND day = '2026-12-02'`, [
      a,
      b,
    ]);
    await pool.query(`DELETE FROM control.usage WHERE tenant_id = $1 AND day = '2026-12-01'`, [b]);
    const { rollup, sums } = await rollupAndSums();
    expect(rollup).toEqual(sums);
    expect(rollup).toEqual([{ month: '2026-12', tenant_id: a, minutes: 25.75, calls: 113 }]);
  });

  test('concurrent writers of the same tenant-months neither deadlock nor lose an addition', async () => {
    const days = ['2027-01-01', '2027-01-02', '2027-01-03'];
    const writes = Array.from({ length: 40 }, (_, i) =>
      pool.query(
        `INSERT INTO control.usage AS u (tenant_id, day, agent_minutes, api_calls)
         SELECT * FROM unnest($1::text[], $2::date[], $3::numeric[], $4::bigint[])
         ON CONFLICT (tenant_id, day) DO UPDATE
           SET agent_minutes = u.agent_minutes + EXCLUDED.agent_minutes, api_calls = u.api_calls + EXCLUDED.api_calls`,
        // Each writer lists the tenants in another order.
        i % 2 === 0
          ? [
              [a, b],
              [days[i % 3], days[(i + 1) % 3]],
              [1, 1],
              [1, 1],
            ]
          : [
              [b, a],
              [days[i % 3], days[i % 3]],
              [1, 1],
              [1, 1],
            ],
      ),
    );
    await Promise.all(writes);
    const { rows } = await pool.query(
      `SELECT tenant_id, agent_minutes::float8 AS minutes, api_calls::int AS calls FROM control.usage_months
        WHERE month = '2027-01-01' ORDER BY tenant_id`,
    );
    expect(rows).toEqual([
      { tenant_id: a, minutes: 40, calls: 40 },
      { tenant_id: b, minutes: 40, calls: 40 },
    ]);
    const { rollup, sums } = await rollupAndSums();
    expect(rollup).toEqual(sums);
  });
});
