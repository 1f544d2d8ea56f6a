import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createCatalogDatabase,
  insertCatalogTenants,
  type TestDatabase,
  uniqueTenantId,
} from '../testing/pg.ts';
import { billableUsageByHour, billableUsageByTenant, monthWindow } from './billable-usage.ts';
import { recordLeaseRuns } from './lease-minutes.ts';

let db: TestDatabase;
let pool: pg.Pool;
const acme = uniqueTenantId('bill-acme');
const globex = uniqueTenantId('bill-globex');
const at = (iso: string) => Date.parse(iso);
const december = monthWindow('2026-12');

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('metering', 6));
  await insertCatalogTenants(pool, [acme, globex]);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function report(tenantId: string, hour: string, agentMinutes: number, apiCalls: number) {
  await pool.query(
    `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls) VALUES ($1, $2, $3, $4)`,
    [tenantId, hour, agentMinutes, apiCalls],
  );
}

test('each hour bills the larger of reported and leased agent-minutes, and reported API calls', async () => {
  await report(acme, '2026-12-02T09:00:00Z', 50, 100);
  await report(acme, '2026-12-02T10:00:00Z', 5, 40);
  // One lease from 09:30 to 10:45: 30 minutes in the 09:00 hour, 45 in the 10:00 hour.
  await recordLeaseRuns(pool, [
    {
      tenantId: acme,
      taskId: 'job-1',
      startedAt: at('2026-12-02T09:30:00Z'),
      until: at('2026-12-02T10:45:00Z'),
    },
  ]);
  // Another lease in the 11:00 hour, with nothing reported.
  await recordLeaseRuns(pool, [
    {
      tenantId: acme,
      taskId: 'job-2',
      startedAt: at('2026-12-02T11:00:00Z'),
      until: at('2026-12-02T11:12:00Z'),
    },
  ]);
  expect(await billableUsageByHour(pool, { ...december, tenantIds: [acme] })).toEqual([
    {
      tenantId: acme,
      hour: '2026-12-02T09:00:00.000Z',
      agentMinutes: 50,
      reportedAgentMinutes: 50,
      leasedAgentMinutes: 30,
      apiCalls: 100,
    },
    {
      tenantId: acme,
      hour: '2026-12-02T10:00:00.000Z',
      agentMinutes: 45,
      reportedAgentMinutes: 5,
      leasedAgentMinutes: 45,
      apiCalls: 40,
    },
    {
      tenantId: acme,
      hour: '2026-12-02T11:00:00.000Z',
      agentMinutes: 12,
      reportedAgentMinutes: 0,
      leasedAgentMinutes: 12,
      apiCalls: 0,
    },
  ]);
  // The month's total is the sum of the hourly maxima, not the larger of the two month totals (55 vs 87).
  expect((await billableUsageByTenant(pool, december)).get(acme)).toEqual({
    agentMinutes: 107,
    reportedAgentMinutes: 55,
    leasedAgentMinutes: 87,
    apiCalls: 140,
  });
});

test('a lease written again, older, or from two writers at once counts once', async () => {
  const run = { tenantId: globex, taskId: 'job-9', startedAt: at('2026-12-03T08:50:00Z') };
  await recordLeaseRuns(pool, [{ ...run, until: at('2026-12-03T09:20:00Z') }]);
  // A stale heartbeat arriving late, the same end written by two replicas, and a retry in one batch.
  const other = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    await Promise.all([
      recordLeaseRuns(pool, [{ ...run, until: at('2026-12-03T09:05:00Z') }]),
      recordLeaseRuns(pool, [{ ...run, until: at('2026-12-03T09:30:00Z') }]),
      recordLeaseRuns(other, [{ ...run, until: at('2026-12-03T09:30:00Z') }]),
      recordLeaseRuns(other, [
        { ...run, until: at('2026-12-03T09:30:00Z') },
        { ...run, until: at('2026-12-03T09:10:00Z') },
      ]),
    ]);
  } finally {
    await other.end();
  }
  const hours = await billableUsageByHour(pool, { ...december, tenantIds: [globex] });
  expect(hours.map((h) => [h.hour, h.leasedAgentMinutes])).toEqual([
    ['2026-12-03T08:00:00.000Z', 10],
    ['2026-12-03T09:00:00.000Z', 30],
  ]);
});

test('the window selects hours by their start, and other tenants are left out', async () => {
  const hours = await billableUsageByHour(pool, {
    from: new Date('2026-12-02T10:00:00Z'),
    to: new Date('2026-12-02T11:00:00Z'),
  });
  expect(hours.map((h) => [h.tenantId, h.hour])).toEqual([[acme, '2026-12-02T10:00:00.000Z']]);
  expect(await billableUsageByHour(pool, { ...monthWindow('2026-11'), tenantIds: [acme] })).toEqual([]);
});

test('a window that ends before it starts, or a bad tenant id, is refused in one line', async () => {
  await expect(billableUsageByHour(pool, { from: december.to, to: december.from })).rejects.toThrow(
    /'from' must be before 'to'/,
  );
  await expect(billableUsageByHour(pool, { ...december, tenantIds: ["x'; --"] })).rejects.toThrow(
    /invalid tenant id/,
  );
});
