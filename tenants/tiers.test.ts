import { describe, expect, test } from 'vitest';
import {
  getTier,
  grossMarginAtBudget,
  isTierName,
  MIN_GROSS_MARGIN,
  meteredCostUsd,
  TIER_NAMES,
  TIERS,
  TierError,
  tierSchema,
  UNIT_COSTS,
} from './tiers.ts';

/** The business plan's ceiling on what a free tenant may cost us per month. */
const FREE_TIER_MAX_BUDGET_USD = 0.6;

const paid = TIERS.filter((t) => t.priceUsdMonthly > 0);
const free = TIERS.filter((t) => t.priceUsdMonthly === 0);

describe('economics', () => {
  test('there are paid tiers and exactly one free tier', () => {
    expect(paid.length).toBeGreaterThan(0);
    expect(free.map((t) => t.name)).toEqual(['free']);
  });

  test.each(paid.map((t) => [t.name, t] as const))(
    '%s keeps a gross margin >= MIN_GROSS_MARGIN at its full cost budget',
    (_name, tier) => {
      expect(grossMarginAtBudget(tier)).toBeGreaterThanOrEqual(MIN_GROSS_MARGIN);
    },
  );

  test('the free tier has no price, so its cost budget is bounded instead', () => {
    expect(getTier('free').monthlyCostBudgetUsd).toBeLessThanOrEqual(FREE_TIER_MAX_BUDGET_USD);
  });

  test.each(TIERS.map((t) => [t.name, t] as const))(
    '%s: the full quota priced by meteredCostUsd fits within the cost budget',
    (_name, tier) => {
      const full = meteredCostUsd({
        agentMinutes: tier.agentMinutesPerMonth,
        apiCalls: tier.apiCallsPerMonth,
      });
      expect(full).toBeLessThanOrEqual(tier.monthlyCostBudgetUsd);
    },
  );

  test('meteredCostUsd prices each unit from UNIT_COSTS', () => {
    expect(meteredCostUsd({ agentMinutes: 1, apiCalls: 0 })).toBe(UNIT_COSTS.agentMinuteUsd);
    expect(meteredCostUsd({ agentMinutes: 0, apiCalls: 1 })).toBe(UNIT_COSTS.apiCallUsd);
    expect(meteredCostUsd({ agentMinutes: 0, apiCalls: 0 })).toBe(0);
  });
});

describe('schema', () => {
  test.each(TIERS.map((t) => [t.name, t] as const))('%s passes the tier schema', (_name, tier) => {
    expect(tierSchema.parse(tier)).toEqual(tier);
  });

  test('tiers are in TIER_NAMES order and prices ascend', () => {
    expect(TIERS.map((t) => t.name)).toEqual([...TIER_NAMES]);
    for (let i = 1; i < TIERS.length; i++) {
      expect(TIERS[i]!.priceUsdMonthly).toBeGreaterThan(TIERS[i - 1]!.priceUsdMonthly);
      expect(TIERS[i]!.database.connectionLimit).toBeGreaterThanOrEqual(
        TIERS[i - 1]!.database.connectionLimit,
      );
      expect(TIERS[i]!.kubernetes.pods).toBeGreaterThanOrEqual(TIERS[i - 1]!.kubernetes.pods);
    }
  });

  test.each([
    ['a non-quantity cpu', { kubernetes: { ...getTier('pro').kubernetes, limitsCpu: 'lots' } }],
    ['a negative budget', { monthlyCostBudgetUsd: -1 }],
    ['a fractional pod count', { kubernetes: { ...getTier('pro').kubernetes, pods: 1.5 } }],
    ['an unknown name', { name: 'gold' }],
  ])('the schema rejects %s', (_label, patch) => {
    expect(tierSchema.safeParse({ ...getTier('pro'), ...patch }).success).toBe(false);
  });

  test('getTier names the bad value and the valid ones', () => {
    expect(() => getTier('gold')).toThrow(TierError);
    expect(() => getTier('gold')).toThrow(
      "unknown tier 'gold': expected one of free, starter, pro, enterprise",
    );
    expect(isTierName('pro')).toBe(true);
    expect(isTierName('Pro')).toBe(false);
  });
});
