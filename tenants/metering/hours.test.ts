import { expect, test } from 'vitest';
import { hourOf, hourStart, minutesByHour } from './hours.ts';

const at = (iso: string) => Date.parse(iso);

test('an instant belongs to the UTC hour that holds it', () => {
  expect(hourOf(at('2026-12-02T13:59:59.999Z'))).toBe('2026-12-02T13:00:00.000Z');
  expect(hourOf(at('2026-12-02T14:00:00.000Z'))).toBe('2026-12-02T14:00:00.000Z');
  expect(hourStart(at('2026-12-02T14:00:00.000Z'))).toBe(at('2026-12-02T14:00:00.000Z'));
});

test.each([
  ['within one hour', '2026-12-02T13:10:00Z', '2026-12-02T13:40:00Z', [['2026-12-02T13:00:00.000Z', 30]]],
  [
    'across two hours',
    '2026-12-02T13:45:00Z',
    '2026-12-02T14:15:30Z',
    [
      ['2026-12-02T13:00:00.000Z', 15],
      ['2026-12-02T14:00:00.000Z', 15.5],
    ],
  ],
  [
    'across a month end',
    '2026-11-30T23:30:00Z',
    '2026-12-01T01:00:00Z',
    [
      ['2026-11-30T23:00:00.000Z', 30],
      ['2026-12-01T00:00:00.000Z', 60],
    ],
  ],
  ['nothing when it did not run', '2026-12-02T13:10:00Z', '2026-12-02T13:10:00Z', []],
])('a run splits into minutes per UTC hour: %s', (_name, from, to, expected) => {
  expect(minutesByHour(at(from), at(to))).toEqual(expected.map(([hour, minutes]) => ({ hour, minutes })));
});
