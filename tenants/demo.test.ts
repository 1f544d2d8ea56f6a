import { afterAll, beforeAll, expect, test } from 'vitest';
import { formatOnboardingDemo, runOnboardingDemo } from './demo.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { dropRoles, uniqueTenantId } from './testing/pg.ts';
import { TIER_NAMES } from './tiers.ts';

let fx: ProvisioningFixture;
const prefix = uniqueTenantId('demo');

beforeAll(async () => {
  fx = await createProvisioningFixture('demo');
});

afterAll(async () => {
  await fx?.close();
  await dropRoles(TIER_NAMES.map((t) => `${prefix}-${t}`));
});

test('onboards one tenant per tier, and a rerun converges on the same tenants', async () => {
  const first = await runOnboardingDemo({ ...fx.deps, prefix });
  expect(first.map((r) => [r.tenant, r.tier, r.status, r.ready, r.apiKeyIssued])).toEqual(
    TIER_NAMES.map((t) => [`${prefix}-${t}`, t, 'active', true, true]),
  );
  expect(first[0]?.limits.dbConnections).toBe(2);
  const again = await runOnboardingDemo({ ...fx.deps, prefix });
  expect(again.map((r) => [r.status, r.apiKeyIssued])).toEqual(TIER_NAMES.map(() => ['active', false]));
  const table = formatOnboardingDemo(again);
  expect(table.split('\n')).toHaveLength(2 + TIER_NAMES.length);
  expect(table).toContain(`${prefix}-enterprise`);
});

test('an expected failure is one line in its row, not a throw', async () => {
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  });
  try {
    const rows = await runOnboardingDemo({ ...fx.deps, aws: { enabled: true }, prefix: `${prefix}x` });
    expect(rows.every((r) => r.status === 'failed')).toBe(true);
    expect(rows[0]?.error).toMatch(
      /^AWS endpoint http:\/\/127\.0\.0\.1:1 unreachable during describing budget/,
    );
    expect(formatOnboardingDemo(rows)).toContain(`${prefix}x-free: AWS endpoint`);
  } finally {
    process.env = saved;
  }
});
