import { describe, expect, test } from 'vitest';
import { getTier } from '../tiers.ts';
import {
  burnRateWarning,
  limitReachedOn,
  projectMonthEndUsd,
  shortDay,
  usageStanding,
} from './projection.ts';

// December has 31 days: on the 10th at 00:00, 9 days have passed.
const DEC_10 = new Date('2026-12-10T00:00:00Z');

describe('projection', () => {
  test('month-end spend follows the rate so far', () => {
    expect(projectMonthEndUsd(9, DEC_10)).toBeCloseTo(31, 9);
    expect(projectMonthEndUsd(2, new Date('2026-12-01T03:00:00Z'))).toBe(2);
  });

  test('the day the budget is reached at this rate', () => {
    expect(limitReachedOn(9, 18, DEC_10)).toBe('2026-12-19');
    expect(limitReachedOn(1, 18, DEC_10)).toBeNull();
    expect(limitReachedOn(20, 18, DEC_10)).toBe('2026-12-10');
    expect(shortDay('2026-12-19')).toBe('19 Dec');
  });

  test.each([
    ['crossing 100% with 21 days left warns', 9, 18, DEC_10, true],
    ['staying under the budget does not', 5, 18, DEC_10, false],
    ['already over the budget is the guard’s, not a forecast', 19, 18, DEC_10, false],
    ['fewer than three days left does not', 26, 27, new Date('2026-12-29T12:00:00Z'), false],
  ])('%s', (_name, spent, budget, now, warns) => {
    expect(burnRateWarning(spent, budget, now)).toBe(warns);
  });

  test('usage standing counts the larger of reported and leased minutes', () => {
    const pro = getTier('pro');
    const standing = usageStanding(
      pro,
      { reportedAgentMinutes: 100, leasedAgentMinutes: 250, apiCalls: 0 },
      DEC_10,
    );
    expect(standing.agentMinutes).toEqual({
      used: 250,
      reported: 100,
      leased: 250,
      billed: 0,
      quota: pro.agentMinutesPerMonth,
    });
    expect(standing.cost.meteredUsd).toBeCloseTo(0.25, 9);
    expect(standing.cost.projectedMonthEndUsd).toBeCloseTo((0.25 * 31) / 9, 5);
  });

  test('usage standing counts the billed figure when hourly metering puts it above both month counters', () => {
    // Reported 100 in one hour and leased 250 in others: billing charges the hourly maxima, 320.
    const standing = usageStanding(
      getTier('pro'),
      { reportedAgentMinutes: 100, leasedAgentMinutes: 250, billedAgentMinutes: 320, apiCalls: 0 },
      DEC_10,
    );
    expect(standing.agentMinutes).toMatchObject({ used: 320, billed: 320 });
    expect(standing.cost.meteredUsd).toBeCloseTo(0.32, 9);
  });
});
