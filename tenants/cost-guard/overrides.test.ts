import { describe, expect, test } from 'vitest';
import { OverrideError, parseOverrideExpiry } from './overrides.ts';

const NOW = new Date('2026-11-24T12:00:00Z');

describe('parseOverrideExpiry', () => {
  test('accepts a future date within 31 days', () => {
    expect(parseOverrideExpiry('2026-11-30', NOW).toISOString()).toBe('2026-11-30T00:00:00.000Z');
  });
  test.each([
    ['next week', /'until' \(next week\) is not an ISO date or time/],
    ['2026-11-01', /'until' \(2026-11-01\) must be in the future/],
    ['2027-01-31', /'until' \(2027-01-31\) is more than 31 days ahead/],
  ])('rejects %s with one line naming it', (text, why) => {
    expect(() => parseOverrideExpiry(text, NOW)).toThrow(OverrideError);
    expect(() => parseOverrideExpiry(text, NOW)).toThrow(why);
  });
});
