import { meteredCostUsd, type Tier } from '../tiers.ts';

const DAY_MS = 86_400_000;

/** The UTC month around an instant, and how far into it the instant is. */
export function monthProgress(now: Date): { start: Date; end: Date; elapsedDays: number; daysLeft: number } {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return {
    start,
    end,
    elapsedDays: (now.getTime() - start.getTime()) / DAY_MS,
    daysLeft: (end.getTime() - now.getTime()) / DAY_MS,
  };
}

/**
 * Month-end spend at the month's average rate so far. The first six hours are too short to
 * extrapolate from: the projection is then the spend itself.
 */
export function projectMonthEndUsd(spentUsd: number, now: Date): number {
  const { elapsedDays, daysLeft } = monthProgress(now);
  if (elapsedDays < 0.25) return spentUsd;
  return spentUsd + (spentUsd / elapsedDays) * daysLeft;
}

/** The UTC day the spend reaches the budget at the rate so far; null when it does not this month. */
export function limitReachedOn(spentUsd: number, budgetUsd: number, now: Date): string | null {
  const { start, end, elapsedDays } = monthProgress(now);
  if (spentUsd >= budgetUsd) return now.toISOString().slice(0, 10);
  if (elapsedDays < 0.25 || spentUsd <= 0) return null;
  const at = start.getTime() + (budgetUsd / spentUsd) * elapsedDays * DAY_MS;
  return at < end.getTime() ? new Date(at).toISOString().slice(0, 10) : null;
}

/** A burn-rate warning is worth sending only while there is time to act on it. */
export const BURN_RATE_MIN_DAYS_LEFT = 3;

/** Whether the month-end projection crosses the budget with at least three days left. */
export function burnRateWarning(spentUsd: number, budgetUsd: number, now: Date): boolean {
  return (
    spentUsd < budgetUsd &&
    projectMonthEndUsd(spentUsd, now) >= budgetUsd &&
    monthProgress(now).daysLeft >= BURN_RATE_MIN_DAYS_LEFT
  );
}

/** "19 Dec", as the warning says it. */
export function shortDay(isoDay: string): string {
  const d = new Date(`${isoDay}T00:00:00.000Z`);
  return `${d.getUTCDate()} ${d.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' })}`;
}

export interface UsageStanding {
  readonly period: string;
  readonly agentMinutes: {
    readonly used: number;
    readonly reported: number;
    readonly leased: number;
    /** The catalog's hourly billable figure as of the tenant's last cache load. */
    readonly billed: number;
    readonly quota: number;
  };
  readonly apiCalls: { readonly used: number; readonly quota: number };
  readonly cost: {
    readonly meteredUsd: number;
    readonly budgetUsd: number;
    readonly ratio: number;
    readonly projectedMonthEndUsd: number;
    readonly projectedRatio: number;
    /** The day the budget is reached at this rate; null when not this month. */
    readonly limitReachedOn: string | null;
  };
}

const round = (n: number, digits = 6) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * A tenant's month so far against its tier: the usage the quota counts (the largest of reported, leased
 * and billed agent-minutes), the metered cost the cost guard judges, and where the month is heading.
 */
export function usageStanding(
  tier: Tier,
  usage: {
    reportedAgentMinutes: number;
    leasedAgentMinutes: number;
    /** The catalog's billable figure (tenants/metering), which the month counters may not yet reach. */
    billedAgentMinutes?: number;
    apiCalls: number;
  },
  now: Date,
): UsageStanding {
  const agentMinutes = Math.max(
    usage.reportedAgentMinutes,
    usage.leasedAgentMinutes,
    usage.billedAgentMinutes ?? 0,
  );
  const meteredUsd = meteredCostUsd({ agentMinutes, apiCalls: usage.apiCalls });
  const projected = projectMonthEndUsd(meteredUsd, now);
  const budgetUsd = tier.monthlyCostBudgetUsd;
  return {
    period: now.toISOString().slice(0, 7),
    agentMinutes: {
      used: round(agentMinutes, 3),
      reported: round(usage.reportedAgentMinutes, 3),
      leased: round(usage.leasedAgentMinutes, 3),
      billed: round(usage.billedAgentMinutes ?? 0, 3),
      quota: tier.agentMinutesPerMonth,
    },
    apiCalls: { used: usage.apiCalls, quota: tier.apiCallsPerMonth },
    cost: {
      meteredUsd: round(meteredUsd),
      budgetUsd,
      ratio: round(meteredUsd / budgetUsd, 4),
      projectedMonthEndUsd: round(projected),
      projectedRatio: round(projected / budgetUsd, 4),
      limitReachedOn: limitReachedOn(meteredUsd, budgetUsd, now),
    },
  };
}
