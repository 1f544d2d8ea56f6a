import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { hourOf } from '../tenants/metering/hours.ts';
import {
  createCatalogDatabase,
  insertCatalogTenants,
  type TestDatabase,
  uniqueTenantId,
} from '../tenants/testing/pg.ts';
import { createMetrics } from './metrics.ts';
import { UsageBatcher } from './usage-batcher.ts';

let db: TestDatabase;
let pool: pg.Pool;
const good = uniqueTenantId('good');
const poisoned = uniqueTenantId('poisoned');

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('usage_batcher', 2));
  await insertCatalogTenants(pool, [good, poisoned]);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const usageOf = async (id: string) =>
  (
    await pool.query<{ agent_minutes: string; api_calls: string }>(
      'SELECT agent_minutes, api_calls FROM control.usage WHERE tenant_id = $1',
      [id],
    )
  ).rows;

const hourlyOf = async (id: string) =>
  (
    await pool.query<{ hour: Date; agent_minutes: string; api_calls: string }>(
      'SELECT hour, agent_minutes, api_calls FROM control.usage_hourly WHERE tenant_id = $1 ORDER BY hour',
      [id],
    )
  ).rows;

test('a report PostgreSQL refuses fails only its tenant, and the other tenants are still metered', async () => {
  const batcher = new UsageBatcher(pool, {
    maxReports: 1_000,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  const day = new Date().toISOString().slice(0, 10);
  const hour = hourOf(Date.now());
  const accepted = batcher.record({
    tenantId: good,
    idempotencyKey: 'g-1',
    day,
    hour,
    agentMinutes: 2.5,
    apiCalls: 7,
  });
  // Past numeric(14, 3): every retry of a batch holding it would fail.
  const refused = batcher.record({
    tenantId: poisoned,
    idempotencyKey: 'p-1',
    day,
    hour,
    agentMinutes: 1e12,
    apiCalls: 1,
  });
  const repeat = batcher.record({
    tenantId: good,
    idempotencyKey: 'g-1',
    day,
    hour,
    agentMinutes: 2.5,
    apiCalls: 7,
  });
  await expect(accepted).resolves.toBe(true);
  await expect(repeat).resolves.toBe(false);
  await expect(refused).rejects.toMatchObject({ statusCode: 422 });
  await batcher.close();

  expect(batcher.pendingCount).toBe(0);
  expect(await usageOf(good)).toEqual([{ agent_minutes: '2.500', api_calls: '7' }]);
  expect(await usageOf(poisoned)).toEqual([]);
  const kept = await pool.query('SELECT tenant_id FROM control.usage_reports ORDER BY tenant_id');
  expect(kept.rows).toEqual([{ tenant_id: good }]);
});

test('record resolves only after the report is committed, and a second record of its key is a duplicate', async () => {
  const batcher = new UsageBatcher(pool, {
    maxReports: 10,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  const tenantId = uniqueTenantId('durable');
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, 'pro', 'active', 'cell-1')`,
    [tenantId],
  );
  const day = new Date().toISOString().slice(0, 10);
  const hour = hourOf(Date.now());
  expect(
    await batcher.record({ tenantId, idempotencyKey: 'd-1', day, hour, agentMinutes: 1, apiCalls: 3 }),
  ).toBe(true);
  // No flush in between: the answer above already means the row is there.
  expect(await usageOf(tenantId)).toEqual([{ agent_minutes: '1.000', api_calls: '3' }]);
  expect(
    await batcher.record({ tenantId, idempotencyKey: 'd-1', day, hour, agentMinutes: 1, apiCalls: 3 }),
  ).toBe(false);
  expect(await usageOf(tenantId)).toEqual([{ agent_minutes: '1.000', api_calls: '3' }]);
  expect(await hourlyOf(tenantId)).toEqual([
    { hour: new Date(hour), agent_minutes: '1.000', api_calls: '3' },
  ]);
});

test('each report is counted in its UTC hour as well as its day, and a duplicate in neither', async () => {
  const batcher = new UsageBatcher(pool, {
    maxReports: 10,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  const tenantId = uniqueTenantId('hourly');
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, 'pro', 'active', 'cell-1')`,
    [tenantId],
  );
  const day = '2026-12-01';
  const at = (time: string, key: string, agentMinutes: number, apiCalls: number) =>
    batcher.record({
      tenantId,
      idempotencyKey: key,
      day,
      hour: hourOf(Date.parse(`${day}T${time}Z`)),
      agentMinutes,
      apiCalls,
    });
  const answers = await Promise.all([
    at('09:59:59.999', 'h-1', 1.5, 10),
    at('10:00:00.000', 'h-2', 2, 20),
    at('10:30:00.000', 'h-3', 0.25, 5),
    at('10:31:00.000', 'h-2', 2, 20),
  ]);
  expect(answers).toEqual([true, true, true, false]);
  expect(await usageOf(tenantId)).toEqual([{ agent_minutes: '3.750', api_calls: '35' }]);
  expect(await hourlyOf(tenantId)).toEqual([
    { hour: new Date('2026-12-01T09:00:00Z'), agent_minutes: '1.500', api_calls: '10' },
    { hour: new Date('2026-12-01T10:00:00Z'), agent_minutes: '2.250', api_calls: '25' },
  ]);
});

test('reports recorded in one turn of the event loop share one write, the first one included', async () => {
  const metrics = createMetrics();
  const batcher = new UsageBatcher(pool, { maxReports: 1_000, logger: pino({ level: 'silent' }), metrics });
  const tenantId = uniqueTenantId('coalesce');
  await insertCatalogTenants(pool, [tenantId]);
  const day = new Date().toISOString().slice(0, 10);
  const hour = hourOf(Date.now());
  // As a burst of requests arrives: one report each, all recorded before the first write could start.
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      batcher.record({ tenantId, idempotencyKey: `c-${i}`, day, hour, agentMinutes: 0.5, apiCalls: 1 }),
    ),
  );
  expect(answers).toEqual(Array(20).fill(true));
  const written = await metrics.usageFlushReports.get();
  expect(written.values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(1);
  expect(await usageOf(tenantId)).toEqual([{ agent_minutes: '10.000', api_calls: '20' }]);
});
