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
  readonly start?: string;
  readonly end?: string;
  readonly estimated?: boolean;
  readonly nextPageToken?: string;
}

/** One GetCostAndUsage page grouped by the tenant tag; `null` as the id is the untagged bucket. */
export function cePage(groups: ReadonlyArray<readonly [string | null, string]>, options: CePageOptions = {}) {
  return {
    GroupDefinitions: [{ Type: 'TAG', Key: 'tenant' }],
    ResultsByTime: [
      {
        TimePeriod: { Start: options.start ?? '2026-11-01', End: options.end ?? '2026-11-25' },
        Estimated: options.estimated ?? false,
        Total: {},
        Groups: groups.map(([id, usd]) => ({
          Keys: [`tenant$${id ?? ''}`],
          Metrics: { UnblendedCost: { Amount: usd, Unit: 'USD' } },
        })),
      },
    ],
    ...(options.nextPageToken ? { NextPageToken: options.nextPageToken } : {}),
  };
}

/** Records a day of metered usage for a tenant. */
export async function recordUsage(
  db: pg.Pool,
  tenantId: string,
  day: string,
  agentMinutes: number,
  apiCalls = 0,
): Promise<void> {
  await db.query(
    `INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, day) DO UPDATE SET agent_minutes = EXCLUDED.agent_minutes, api_calls = EXCLUDED.api_calls`,
    [tenantId, day, agentMinutes, apiCalls],
  );
}
