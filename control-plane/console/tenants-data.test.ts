import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { usageStanding } from '../../tenants/cost-guard/projection.ts';
import { GUARD_STATES } from '../../tenants/cost-guard/rules.ts';
import { createCatalogDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import { getTier, TIER_NAMES } from '../../tenants/tiers.ts';
import { MemoryLeaseStore } from '../lease-store.ts';
import { type TenantQuery, tenantPage, tenantQuerySchema } from './tenants-data.ts';

let db: TestDatabase;
let pool: pg.Pool;
const NOW = new Date('2026-12-20T12:00:00Z');
const TENANTS = 57;
let clock = NOW.getTime();
const leases = new MemoryLeaseStore({ ttlMs: 3 * 3_600_000, clock: () => clock });

interface Seeded {
  id: string;
  tier: string;
  status: string;
  guard: string;
  minutes: number;
  calls: number;
}
const seeded: Seeded[] = [];

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('console_tenants_data', 2));
  for (let i = 0; i < TENANTS; i++) {
    const t: Seeded = {
      id: `ctd-${String(i).padStart(3, '0')}`,
      tier: TIER_NAMES[i % TIER_NAMES.length]!,
      status: i % 5 === 0 ? 'limited' : 'active',
      guard: GUARD_STATES[(i * 7) % GUARD_STATES.length]!,
      // Ties on purpose, so the id tie-break is exercised from both ends.
      minutes: (i % 6) * 10,
      calls: (i % 4) * 100,
    };
    seeded.push(t);
    await pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, $2, $3, 'cell-1')`,
      [t.id, t.tier, t.status],
    );
    if (t.guard !== 'ok') {
      await pool.query(
        `INSERT INTO control.quota_state (tenant_id, guard_state, period) VALUES ($1, $2, '2026-12')`,
        [t.id, t.guard],
      );
    }
    // Split over two days of December, plus a November day that must not count.
    await pool.query(
      `INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls)
       VALUES ($1, '2026-12-01', $2, $3), ($1, '2026-12-19', $2, $3), ($1, '2026-11-30', 999, 999)`,
      [t.id, t.minutes / 2, t.calls / 2],
    );
  }
  await pool.query(
    `INSERT INTO control.cost_guard_runs (period, mode, inputs, started_at)
     VALUES ('2026-12', 'dry-run', '{"costs":{"byTenant":{"ctd-001":1.25}}}', '2026-12-19T00:00:00Z'),
            ('2026-12', 'dry-run', '{"costs":{"byTenant":{"ctd-001":2.5,"ctd-002":0.75}}}', '2026-12-20T00:00:00Z')`,
  );
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const query = (q: Record<string, unknown>): TenantQuery => tenantQuerySchema.parse(q);

/** Every page of a view, concatenated. */
async function allPages(q: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const result = await tenantPage(pool, leases, query({ ...q, page, size: 10 }), NOW);
    expect(result.total).toBe(TENANTS);
    ids.push(...result.rows.map((r) => r.id));
    if (page * 10 >= result.total) return ids;
  }
}

const ratio = (t: Seeded, key: 'minutes' | 'calls') =>
  key === 'minutes'
    ? t.minutes / getTier(t.tier).agentMinutesPerMonth
    : t.calls / getTier(t.tier).apiCallsPerMonth;
/** The sort key each view orders by; ties are broken by id, ascending in both directions. */
const KEYS: Record<string, (t: Seeded) => number | string> = {
  guard: (t) => GUARD_STATES.indexOf(t.guard as (typeof GUARD_STATES)[number]),
  'agent-minutes': (t) => ratio(t, 'minutes'),
  'api-calls': (t) => ratio(t, 'calls'),
  id: (t) => t.id,
};

function expectedOrder(sort: string, order: string): string[] {
  const key = KEYS[sort]!;
  const sign = order === 'asc' ? 1 : -1;
  return [...seeded]
    .sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      if (x !== y) return (x < y ? -1 : 1) * sign;
      return a.id < b.id ? -1 : 1;
    })
    .map((t) => t.id);
}

describe('the tenants page query', () => {
  test.each(
    Object.keys(KEYS).flatMap((sort) => [
      [sort, 'asc'],
      [sort, 'desc'],
    ]),
  )(
    'sorted by %s %s, every page in order, the deep pages read from the other end included',
    async (sort, order) => {
      const expected = expectedOrder(sort, order);
      expect(await allPages({ sort, order })).toEqual(expected);
    },
  );

  test('a row shows the month from the rollup, the quota figure of the usage route and the latest billed cost', async () => {
    const taskStart = NOW.getTime() - 90 * 60_000;
    clock = taskStart;
    await leases.grant('ctd-001', '2026-12', 'task-1', {
      concurrentTasks: 5,
      agentMinutesPerMonth: 1e9,
      apiCallsPerMonth: 1e9,
      reportedAgentMinutes: 0,
      reportedApiCalls: 0,
    });
    clock = NOW.getTime();
    await leases.heartbeat('ctd-001', '2026-12', 'task-1');
    const { rows } = await tenantPage(pool, leases, query({ sort: 'id', size: 10 }), NOW);
    const [first, second, third] = rows;
    // 10 reported minutes, 90 leased: the quota counts the larger, exactly as GET /v1/tenants/:id/usage.
    expect(second).toMatchObject({ id: 'ctd-001', billedUsd: 2.5, guardState: seeded[1]!.guard });
    expect(second!.standing).toEqual(
      usageStanding(
        getTier('starter'),
        { reportedAgentMinutes: 10, leasedAgentMinutes: 90, apiCalls: 100 },
        NOW,
      ),
    );
    expect(second!.standing.agentMinutes.used).toBe(90);
    expect(first).toMatchObject({ id: 'ctd-000', billedUsd: null, guardState: 'ok' });
    expect(first!.standing.agentMinutes.used).toBe(0);
    expect(third).toMatchObject({ id: 'ctd-002', billedUsd: 0.75 });
    expect(third!.standing.apiCalls.used).toBe(200);
  });

  test("a row counts the catalog's billable minutes when they exceed the reported ones, as the quota does", async () => {
    await pool.query(
      `INSERT INTO control.lease_minutes (tenant_id, hour, task_id, lease_started_at, minutes)
       VALUES ('ctd-002', '2026-12-19T10:00:00Z', 'batch', '2026-12-19T10:00:00Z', 45)`,
    );
    const { rows } = await tenantPage(pool, leases, query({ sort: 'id', size: 10 }), NOW);
    expect(rows[2]!.standing.agentMinutes).toMatchObject({ reported: 20, billed: 45, used: 45 });
  });

  test('filters count and page only the matching tenants', async () => {
    const result = await tenantPage(
      pool,
      leases,
      query({ status: 'limited', tier: ['free', 'pro'], size: 10 }),
      NOW,
    );
    const expected = seeded
      .filter((t) => t.status === 'limited' && ['free', 'pro'].includes(t.tier))
      .map((t) => t.id);
    expect(result.total).toBe(expected.length);
    expect(result.rows.map((r) => r.id)).toEqual(expected.slice(0, 10));
  });
});
