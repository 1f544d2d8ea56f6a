import { describe, expect, test } from 'vitest';
import { tenantIdProblem } from '../../tenants/tenant-id.ts';
import { RATELIMIT_ROUNDS } from '../suites.ts';
import { newRunId, tenantIdFor } from './ids.ts';

// Every role a script passes to createTenants.
const ROLES = [
  ...Array.from({ length: 5 }, (_, i) => `t${i + 1}`),
  ...Array.from({ length: RATELIMIT_ROUNDS }, (_, i) => `hot${i + 1}`),
  'calm',
  'a',
  'b',
];

describe('tenant ids of a run', () => {
  test.each(ROLES)('role %s gives a valid tenant id', (role) => {
    for (const random of [() => 0, () => 0.999_999, Math.random]) {
      const id = tenantIdFor(newRunId(Date.now(), random), role);
      expect(tenantIdProblem(id), id).toBeUndefined();
    }
  });

  test('runs a millisecond apart get different ids', () => {
    const fixed = () => 0.5;
    expect(newRunId(1_764_000_000_000, fixed)).not.toBe(newRunId(1_764_000_000_001, fixed));
  });

  test('runs in the same millisecond differ by their random part', () => {
    expect(newRunId(1_764_000_000_000, () => 0)).not.toBe(newRunId(1_764_000_000_000, () => 0.5));
  });
});
