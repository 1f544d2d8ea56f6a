import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCatalogDatabase, type TestDatabase } from '../testing/pg.ts';
import { meteredCostUsd } from '../tiers.ts';
import { projectMonthEndUsd } from './projection.ts';
import { type ProjectionTrend, projectionTrendSvg, projectionTrends } from './trend.ts';

let db: TestDatabase;
let pool: pg.Pool;
const RUN_AT = new Date('2026-12-04T06:00:00Z');

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('cost_trend', 2));
  for (const id of ['trend-a', 'trend-b']) {
    await pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, 'pro', 'active', 'cell-1')`,
      [id],
    );
  }
  // trend-a: 100 minutes on the 1st, nothing on the 2nd, 300 on the 3rd; November and the run's own day
  // must not be read from the daily rows.
  await pool.query(
    `INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls) VALUES
       ('trend-a', '2026-11-30', 5000, 0), ('trend-a', '2026-12-01', 100, 1000),
       ('trend-a', '2026-12-03', 300, 0), ('trend-a', '2026-12-04', 9999, 0)`,
  );
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('projection trend', () => {
  test('one point per day from the daily usage, the last one the run figure, each projected by projection.ts', async () => {
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
