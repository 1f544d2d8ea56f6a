import { describe, expect, test } from 'vitest';
import {
  actionCap,
  actionsFor,
  applyConfirmations,
  applyHysteresis,
  applyOverride,
  costDataProblem,
  hardLineConfirmed,
  holdingRatio,
  isCappedAction,
  levelAt,
  NO_PENDING,
  needsHuman,
  DEFAULT_POLICY as P,
  periodOf,
  stateForPeriod,
  targetState,
} from './rules.ts';

describe('levelAt', () => {
  test.each([
    [0, 'ok'],
    [0.89, 'ok'],
    [0.9, 'warning'],
    [0.99, 'warning'],
    [1, 'limited'],
    [1.99, 'limited'],
    [2, 'suspended'],
  ] as const)('%s of budget is %s', (ratio, state) => {
    expect(levelAt(ratio, P)).toBe(state);
  });
});

describe('hardLineConfirmed', () => {
  test('metering and billing both across the line', () => {
    expect(hardLineConfirmed(1, 1.01, 1.0, P)).toBe(true);
  });
  test('billing alone is not enough', () => {
    expect(hardLineConfirmed(1, 0.5, 3, P)).toBe(false);
  });
  test('metering alone needs the 10% margin', () => {
    expect(hardLineConfirmed(1, 1.09, 0, P)).toBe(false);
    expect(hardLineConfirmed(1, 1.1, 0, P)).toBe(true);
  });
});

describe('targetState', () => {
  test.each([
    [0.5, 0.5, 'ok'],
    [0.95, 0.95, 'warning'],
    [1.5, 1.5, 'limited'],
    [2.5, 2.5, 'suspended'],
    [0.5, 0.95, 'warning'],
    [0.5, 2.5, 'warning'],
    [2.5, 0.5, 'suspended'],
    [2.1, 1.5, 'limited'],
  ] as const)('metering %s and billing %s give %s', (meter, bill, state) => {
    expect(targetState(meter, bill, P)).toBe(state);
  });
});

describe('needsHuman', () => {
  test('a billing-only spike asks for a human', () => {
    expect(needsHuman(0.5, 2.5, P)).toBe(true);
  });
  test('agreeing sources do not', () => {
    expect(needsHuman(2.5, 2.5, P)).toBe(false);
    expect(needsHuman(0.5, 0.95, P)).toBe(false);
  });
});

describe('applyHysteresis', () => {
  test('escalation is immediate', () => {
    expect(applyHysteresis('ok', 'limited', 1.2, P)).toBe('limited');
  });
  test('a state is kept until the ratio is 10 points below its line', () => {
    expect(applyHysteresis('limited', 'warning', 0.95, P)).toBe('limited');
    expect(applyHysteresis('limited', 'warning', 0.89, P)).toBe('warning');
    expect(applyHysteresis('warning', 'ok', 0.85, P)).toBe('warning');
    expect(applyHysteresis('warning', 'ok', 0.79, P)).toBe('ok');
  });
  test('de-escalation stops at the highest state whose lower line is still reached', () => {
    expect(applyHysteresis('suspended', 'ok', 0.95, P)).toBe('limited');
  });
});

describe('applyConfirmations', () => {
  test('suspension needs two consecutive runs; the first holds at limited', () => {
    const first = applyConfirmations('ok', 'suspended', NO_PENDING, P);
    expect(first).toEqual({ state: 'limited', pending: { state: 'suspended', runs: 1 } });
    const second = applyConfirmations('limited', 'suspended', first.pending, P);
    expect(second).toEqual({ state: 'suspended', pending: NO_PENDING });
  });
  test('a run below the line breaks the streak', () => {
    const broken = applyConfirmations('limited', 'limited', { state: 'suspended', runs: 1 }, P);
    expect(broken).toEqual({ state: 'limited', pending: NO_PENDING });
  });
  test('limited and warning need one run', () => {
    expect(applyConfirmations('ok', 'limited', NO_PENDING, P).state).toBe('limited');
    expect(applyConfirmations('ok', 'warning', NO_PENDING, P).state).toBe('warning');
  });
});

describe('stateForPeriod and periodOf', () => {
  test('the state resets with a new UTC month', () => {
    expect(stateForPeriod('suspended', '2026-10', '2026-11')).toBe('ok');
    expect(stateForPeriod('suspended', '2026-11', '2026-11')).toBe('suspended');
  });
  test('the month boundary is UTC', () => {
    expect(periodOf(new Date('2026-11-30T23:59:59Z'))).toBe('2026-11');
    expect(periodOf(new Date('2026-12-01T00:00:00Z'))).toBe('2026-12');
    expect(periodOf(new Date('2026-12-01T01:00:00+02:00'))).toBe('2026-11');
  });
});

describe('costDataProblem', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  const fresh = { problem: null, dataTime: '2026-11-24T00:00:00.000Z' };
  test('fresh data is usable, Estimated or not', () => {
    expect(costDataProblem(fresh, now, 36)).toBeNull();
    const estimated = { ...fresh, estimated: true };
    expect(costDataProblem(estimated, now, 36)).toBeNull();
  });
  test.each([
    [{ ...fresh, problem: 'throttled' }, /throttled/],
    [{ ...fresh, dataTime: null }, /no day carrying cost yet/],
    [{ ...fresh, dataTime: '2026-11-22T00:00:00.000Z' }, /60\.0 h old \(max 36 h\)/],
  ])('%j is unknown', (facts, why) => {
    expect(costDataProblem(facts, now, 36)).toMatch(why);
  });
});

describe('targetState with Estimated or missing billing', () => {
  test.each([
    ['Estimated billing confirms metering just across the line', 1.02, 1.05, 'limited'],
    ['metering alone past its margin acts', 1.15, null, 'limited'],
    ['metering alone inside its margin only warns', 1.05, null, 'warning'],
    ['billing alone never enters a hard state', 0.5, 2.5, 'warning'],
    ['no Cost Explorer line and low metering is ok', 0.2, null, 'ok'],
  ] as const)('%s', (_name, meter, bill, state) => {
    expect(targetState(meter, bill, P)).toBe(state);
  });
  test('billing with no line never asks for a human', () => {
    expect(needsHuman(0.2, null, P)).toBe(false);
    expect(needsHuman(0.2, 1.5, P)).toBe(true);
  });
});

describe('holdingRatio', () => {
  test('Estimated billing never holds a state metering no longer supports', () => {
    expect(holdingRatio(0.3, 1.5, true)).toBe(0.3);
    expect(applyHysteresis('limited', 'ok', holdingRatio(0.3, 1.5, true), P)).toBe('ok');
  });
  test('final billing still holds a state through hysteresis', () => {
    expect(holdingRatio(0.3, 0.95, false)).toBe(0.95);
    expect(applyHysteresis('limited', 'warning', holdingRatio(0.3, 0.95, false), P)).toBe('limited');
  });
  test('no line leaves metering alone', () => {
    expect(holdingRatio(0.4, null, false)).toBe(0.4);
  });
});

describe('applyOverride', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  test('a live override allows warning but no new hard state', () => {
    expect(applyOverride('ok', 'suspended', '2026-11-25T00:00:00.000Z', now)).toBe('warning');
    expect(applyOverride('limited', 'suspended', '2026-11-25T00:00:00.000Z', now)).toBe('limited');
  });
  test('an expired override changes nothing', () => {
    expect(applyOverride('ok', 'suspended', '2026-11-24T00:00:00.000Z', now)).toBe('suspended');
    expect(applyOverride('ok', 'limited', null, now)).toBe('limited');
  });
});

describe('actionsFor', () => {
  test.each([
    ['ok', 'ok', []],
    ['ok', 'warning', ['notify']],
    ['warning', 'limited', ['limit', 'notify']],
    ['limited', 'suspended', ['suspend', 'notify']],
    ['suspended', 'limited', ['resume', 'limit', 'notify']],
    ['limited', 'ok', ['resume', 'notify']],
    ['warning', 'ok', ['notify']],
  ] as const)('%s -> %s takes %j', (from, to, actions) => {
    expect(actionsFor(from, to)).toEqual(actions);
  });
  test('only escalations that stop work are capped', () => {
    expect(isCappedAction(['limit', 'notify'])).toBe(true);
    expect(isCappedAction(['resume', 'notify'])).toBe(false);
  });
});

describe('actionCap', () => {
  test('the smaller of the count and the percentage (rounded up) wins', () => {
    expect(actionCap(4, 50, 50)).toBe(2);
    expect(actionCap(1000, 10, 5)).toBe(10);
    expect(actionCap(3, 10, 5)).toBe(1);
    expect(actionCap(100, 0, 50)).toBe(0);
  });
});
