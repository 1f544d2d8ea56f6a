import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCatalogDatabase, insertCatalogTenants, type TestDatabase } from '../testing/pg.ts';
import { meteredCostUsd } from '../tiers.ts';
import { projectMonthEndUsd } from './projection.ts';
import { type ProjectionTrend, projectionTrendSvg, projectionTrends } from './trend.ts';

let db: TestDatabase;
let pool: pg.Pool;
const RUN_AT = new Date('2026-12-04T06:00:00Z');

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('cost_trend', 2));
  await insertCatalogTenants(pool, ['trend-a', 'trend-b']);
  // trend-a: 100 minutes reported on the 1st, nothing on the 2nd, on the 3rd 50 reported and 300 leased in
  // the same hour (the larger bills); November and the run's own day must not be read from the catalog.
  await pool.query(
    `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls) VALUES
       ('trend-a', '2026-11-30T10:00:00Z', 5000, 0), ('trend-a', '2026-12-01T10:00:00Z', 100, 1000),
       ('trend-a', '2026-12-03T10:00:00Z', 50, 0), ('trend-a', '2026-12-04T01:00:00Z', 9999, 0)`,
  );
  await pool.query(
    `INSERT INTO control.lease_minutes (tenant_id, hour, task_id, lease_started_at, minutes) VALUES
       ('trend-a', '2026-12-03T10:00:00Z', 'job-1', '2026-12-03T09:00:00Z', 60),
       ('trend-a', '2026-12-03T10:00:00Z', 'job-2', '2026-12-03T09:00:00Z', 60),
       ('trend-a', '2026-12-03T10:00:00Z', 'job-3', '2026-12-03T09:00:00Z', 60),
       ('trend-a', '2026-12-03T10:00:00Z', 'job-4', '2026-12-03T09:00:00Z', 60),
       ('trend-a', '2026-12-03T10:00:00Z', 'job-5', '2026-12-03T09:00:00Z', 60)`,
  );
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('projection trend', () => {
  test('one point per day from the billable hours, the last one the run figure, each projected by projection.ts', async () => {
    const [a, b] = await projectionTrends(pool, RUN_AT, [
      { tenantId: 'trend-a', meteredUsd: 7.5, budgetUsd: 20 },
      { tenantId: 'trend-b', meteredUsd: 0, budgetUsd: 20 },
    ]);
    const spent = [
      meteredCostUsd({ agentMinutes: 100, apiCalls: 1000 }),
      meteredCostUsd({ agentMinutes: 100, apiCalls: 1000 }),
      meteredCostUsd({ agentMinutes: 400, apiCalls: 1000 }),
    ];
    const r2 = (n: number) => Math.round(n * 100) / 100;
    expect(a!.points).toEqual([
      ...['2026-12-01', '2026-12-02', '2026-12-03'].map((day, i) => ({
        day,
        spentUsd: r2(spent[i]!),
        projectedUsd: r2(
          projectMonthEndUsd(spent[i]!, new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000)),
        ),
      })),
      { day: '2026-12-04', spentUsd: 7.5, projectedUsd: r2(projectMonthEndUsd(7.5, RUN_AT)) },
    ]);
    // $7.50 in 3.25 days runs past $20 before the month ends.
    expect(a!.limitReachedOn).toBe('2026-12-09');
    expect(b!.points.map((p) => p.projectedUsd)).toEqual([0, 0, 0, 0]);
    expect(b!.limitReachedOn).toBeNull();
  });

  test("on the month's first day the run's own figure is the only point", async () => {
    const [a] = await projectionTrends(pool, new Date('2026-12-01T05:00:00Z'), [
      { tenantId: 'trend-a', meteredUsd: 1, budgetUsd: 20 },
    ]);
    expect(a!.points).toEqual([{ day: '2026-12-01', spentUsd: 1, projectedUsd: 1 }]);
  });

  const trend = (projected: number[]): ProjectionTrend => ({
    tenantId: 'acme<&>',
    budgetUsd: 20,
    limitReachedOn: null,
    points: projected.map((p, i) => ({ day: `2026-12-0${i + 1}`, spentUsd: p / 10, projectedUsd: p })),
  });

  test('the chart draws every point against the dashed budget line, and turns red over budget', () => {
    const under = projectionTrendSvg(trend([5, 10, 15]));
    expect(under.match(/<circle /g)).toHaveLength(3);
    expect(under).toContain('stroke-dasharray="3,3"');
    expect(under).toContain('stroke="#1565c0"');
    expect(under).toContain(
      'aria-label="projected month-end cost of acme&#60;&#38;&#62; by day: $15.00 on 2026-12-03, budget $20.00"',
    );
    expect(under).not.toContain('acme<');
    const over = projectionTrendSvg(trend([5, 25]));
    expect(over).toContain('stroke="#c62828"');
    // The higher projection sits higher: SVG y grows downwards.
    const ys = [...over.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(ys[1]!).toBeLessThan(ys[0]!);
  });
});
