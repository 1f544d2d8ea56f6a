import type pg from 'pg';
import { getTier, UNIT_COSTS } from '../tiers.ts';

/** Agent-minutes whose metered cost is `fraction` of the tier's budget (tests and the benchmark). */
export function minutesForBudgetFraction(tier: string, fraction: number): number {
  return Math.round((getTier(tier).monthlyCostBudgetUsd * fraction) / UNIT_COSTS.agentMinuteUsd);
}

/** USD that is `fraction` of the tier's budget, as Cost Explorer writes amounts. */
export function usdForBudgetFraction(tier: string, fraction: number): string {
  return (getTier(tier).monthlyCostBudgetUsd * fraction).toFixed(10);
}

export interface CePageOptions {
  /** First day of the page's results. @default '2026-11-01' */
  readonly start?: string;
  /** Exclusive end day of the page's results. @default '2026-11-25' */
  readonly end?: string;
  /** The day that carries the groups' cost; the other days carry none. @default - the last day */
  readonly costDay?: string;
  /** As Cost Explorer marks the open month. @default true */
  readonly estimated?: boolean;
  readonly nextPageToken?: string;
}

const addDay = (day: string) =>
  new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString().slice(0, 10);

/**
 * One DAILY GetCostAndUsage page grouped by the tenant tag: one result per day, the groups' cost on
 * `costDay`; `null` as the id is the untagged bucket.
 */
export function cePage(groups: ReadonlyArray<readonly [string | null, string]>, options: CePageOptions = {}) {
  const end = options.end ?? '2026-11-25';
  const days: string[] = [];
  for (let day = options.start ?? '2026-11-01'; day < end; day = addDay(day)) days.push(day);
  const costDay = options.costDay ?? days.at(-1);
  return {
    GroupDefinitions: [{ Type: 'TAG', Key: 'tenant' }],
    ResultsByTime: days.map((day) => ({
      TimePeriod: { Start: day, End: addDay(day) },
      Estimated: options.estimated ?? true,
      Total: {},
      Groups:
        day === costDay
          ? groups.map(([id, usd]) => ({
              Keys: [`tenant$${id ?? ''}`],
              Metrics: { UnblendedCost: { Amount: usd, Unit: 'USD' } },
            }))
          : [],
    })),
    ...(options.nextPageToken ? { NextPageToken: options.nextPageToken } : {}),
  };
}

/** Records a day of reported usage for a tenant, daily and (as the day's first hour) hourly. */
export async function recordUsage(
  db: pg.Pool,
  tenantId: string,
  day: string,
  agentMinutes: number,
  apiCalls = 0,
): Promise<void> {
  await db.query(
    `WITH daily AS (
       INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, day) DO UPDATE SET agent_minutes = EXCLUDED.agent_minutes, api_calls = EXCLUDED.api_calls
       RETURNING 1)
     INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls)
     VALUES ($1, $2::date::timestamp AT TIME ZONE 'UTC', $3, $4)
     ON CONFLICT (tenant_id, hour) DO UPDATE SET agent_minutes = EXCLUDED.agent_minutes, api_calls = EXCLUDED.api_calls`,
    [tenantId, day, agentMinutes, apiCalls],
  );
}
